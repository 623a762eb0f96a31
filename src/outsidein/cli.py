"""Command line: ``outsidein audit``, ``outsidein collect``, ``outsidein checks``, ``outsidein db``."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console

from outsidein.allocator import limit_malloc_arenas
from outsidein.audit import AuditReport, evaluate
from outsidein.aws.cli_folder import load_cli_folder
from outsidein.aws.collect import AwsCollector, CollectionError
from outsidein.baseline import BaselineEntry, BaselineError, baseline_entries_toml, load_baseline
from outsidein.checks.registry import all_checks
from outsidein.evidence import (
    CaptureEvidence,
    EvidenceError,
    HostEvidence,
    NginxEvidence,
    Snapshot,
    SourceEvidence,
    TlsEvidence,
)
from outsidein.layers import LAYERS
from outsidein.models import Severity
from outsidein.report.formats import FORMATS, render_report
from outsidein.report.progress import collection_progress
from outsidein.report.table import render_table
from outsidein.scope import AwsScope, Scope, ScopeError, load_scope
from outsidein.store import StoreError
from outsidein.store import commands as store_commands
from outsidein.tickets.remote import TrackerError

DEFAULT_SCOPE_FILE = "outsidein.toml"
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments, scope or evidence: exit 2 with the message."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outsidein",
        description="Audit a production cloud stack outside-in, twelve layers, one severity model.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def scope_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", "-c", type=Path,
                       help=f"scope file (default: ./{DEFAULT_SCOPE_FILE} or $OUTSIDEIN_CONFIG; with neither, "
                            "the bundled demo stack is audited)")
        p.add_argument("--demo", action="store_true", help="audit the bundled demo stack even if a scope exists")

    audit = sub.add_parser("audit", help="collect (or load) evidence and report findings")
    scope_args(audit)
    audit.add_argument("--from", dest="source", type=Path,
                       help="re-evaluate offline: a snapshot.json from `outsidein collect`, or a folder of AWS CLI "
                            "--output json files")
    audit.add_argument("--format", choices=FORMATS, default="table",
                       help="table (terminal), json, sarif (code scanning), junit (CI test tabs), ocsf (SIEM), "
                            "markdown (pull-request comment) or html (single file)")
    audit.add_argument("--output", "-o", type=Path, help="write the report to this file instead of stdout")
    audit.add_argument("--fail-on", type=_severity, metavar="SEVERITY",
                       help="exit 1 if any finding at or above this severity (CRITICAL, HIGH, MEDIUM, LOW, REVIEW)")
    audit.add_argument("--baseline", type=Path, help="reviewed-baseline file of false positives and accepted risks "
                       "(default: the scope's baseline key)")
    audit.add_argument("--write-baseline", type=Path, metavar="FILE",
                       help="append a [[finding]] entry for every finding to FILE, for a person to review (each "
                            "needs a real reason before it counts)")
    store_commands.add_audit_flags(audit)

    collect = sub.add_parser("collect", help="save the raw evidence as a snapshot for offline audits")
    scope_args(collect)
    collect.add_argument("--output", "-o", type=Path, required=True, help="snapshot file to write")

    db = sub.add_parser("db", help="the local OSV vulnerability database (layer 10)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    for name, text in (("update", "fetch the ecosystems' OSV exports"), ("import", "load OSV records from a file "
                       "(a zip export, a JSON record or a folder of them) for air-gapped use"),
                       ("status", "the database's ecosystems, record counts and age")):
        p = db_sub.add_parser(name, help=text)
        p.add_argument("--config", "-c", type=Path, help="scope file whose [osv] database to use")
        p.add_argument("--database", type=Path, help="database folder (default: the scope's, else "
                       "~/.cache/outsidein/osv)")
        if name == "update":
            p.add_argument("--ecosystem", action="append", dest="ecosystems", metavar="NAME",
                           help="OSV ecosystem to fetch (PyPI, npm, Go …); repeatable; default: PyPI, npm and Go")
            p.add_argument("--mirror", metavar="URL", help="base URL laid out like OSV's bucket "
                           "(<URL>/<Ecosystem>/all.zip); default: the scope's [osv] mirror, else OSV itself")
        if name == "import":
            p.add_argument("file", type=Path, help="OSV zip export, JSON record or folder")

    simulate = sub.add_parser("simulate", help="run the authorized attack-simulation scenarios (layer 12) and "
                              "report them")
    simulate.add_argument("--config", "-c", type=Path, help=f"scope file with a [simulation] block (default: "
                          f"./{DEFAULT_SCOPE_FILE} or $OUTSIDEIN_CONFIG)")
    simulate.add_argument("--format", choices=("table", "json"), default="table")
    simulate.add_argument("--output", "-o", type=Path, help="write the report to this file instead of stdout")
    simulate.add_argument("--save", type=Path, metavar="SNAPSHOT", help="also save the evidence as a snapshot "
                          "(re-evaluate with `outsidein audit --from`)")
    simulate.add_argument("--chart", type=Path, metavar="FILE.html", help="write latency over time as a "
                          "self-contained HTML file")
    simulate.add_argument("--fail-on", type=_severity, metavar="SEVERITY",
                          help="exit 1 if any finding at or above this severity")

    drill = sub.add_parser("drill", help="restore drills (layer 9): prove a backup really restores")
    drill_sub = drill.add_subparsers(dest="drill_command", required=True)
    restore = drill_sub.add_parser("restore", help="stream a backup (checksum, decrypt, gunzip) into a scratch "
                                   "PostgreSQL, count rows, and log the drill; exit 2 when it fails or is refused")
    restore.add_argument("--config", "-c", type=Path, help="scope file with [backups.drill] (default: "
                         f"./{DEFAULT_SCOPE_FILE} or $OUTSIDEIN_CONFIG)")
    restore.add_argument("--source", help="s3://bucket/key, s3://bucket/prefix/ (the newest object) or a file "
                         "(default: [backups.drill] source)")
    restore.add_argument("--target", help="scratch PostgreSQL DSN; its database must be in [backups.drill] "
                         "scratch_databases (default: [backups.drill] target)")
    restore.add_argument("--key-env", help="environment variable holding the passphrase (default: [backups.drill] "
                         "key_env)")
    restore.add_argument("--log", type=Path, help="drill log, JSON lines (default: [backups] drill_log, "
                         ".outsidein/drills.jsonl next to the scope file)")

    checks = sub.add_parser("checks", help="list every check with its layer and severity")
    checks.add_argument("--markdown", action="store_true", help="the reference table of docs/checks.md")
    store_commands.add_parsers(sub)
    return parser


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _find_scope(args: argparse.Namespace) -> Scope | None:
    """The scope to audit, or None for the demo stack."""
    if args.demo:
        return None
    if args.config is not None:
        return load_scope(args.config)
    env_path = os.environ.get("OUTSIDEIN_CONFIG")
    if env_path:
        return load_scope(Path(env_path))
    default = Path(DEFAULT_SCOPE_FILE)
    return load_scope(default) if default.is_file() else None


def _err(message: str) -> None:
    print(message, file=sys.stderr)


@contextmanager
def _demo_stack() -> Iterator[tuple[AwsScope, boto3.Session]]:
    """Start the emulator, seed the demo stack, and hand back a scope and session that reach it."""
    from outsidein.demo.emulator import DUMMY_CREDENTIALS, MotoServer
    from outsidein.demo.seed import seed_demo_stack

    with MotoServer() as server:
        _err(f"No {DEFAULT_SCOPE_FILE} found: auditing the bundled demo stack: dev, staging and prod on a local AWS "
             f"emulator at {server.endpoint_url}, two saved hosts, an NGINX configuration, two TLS endpoints on "
             "loopback, two certificate files, a packet capture and a git repository with its lockfiles and CI.")
        stack = seed_demo_stack(server.endpoint_url)
        session = boto3.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=stack.regions[0],
        )
        yield AwsScope(regions=stack.regions, endpoint_url=server.endpoint_url, max_attempts=2), session


def _collect_scope(scope: Scope) -> Snapshot:
    """Every source in scope, side by side: AWS, hosts, NGINX, TLS scans and captures each in its own thread
    (a 30-second live capture does not hold up the rest)."""
    started = datetime.now(UTC).replace(microsecond=0)
    with collection_progress() as progress, ThreadPoolExecutor(max_workers=8) as pool:
        def submit(name: str, fn: Callable[[Scope], Any], targets: int, layers: str) -> Future[Any]:
            return pool.submit(progress.track(name, fn, targets, layers=layers), scope)

        aws = pool.submit(progress.track("AWS", AwsCollector(scope.aws, backups=scope.backups).collect,
                                         len(scope.aws.regions) or 1,
                                         "region", "layers 1, 5, 6, 7, 9")) if scope.aws is not None else None
        hosts = submit("hosts", _collect_hosts, len(scope.hosts), "layer 2")
        nginx = submit("NGINX", _collect_nginx, len(scope.nginx), "layer 3")
        tls = submit("TLS", _collect_tls, len(scope.tls) + len(scope.certificates), "layer 4")
        captures = submit("captures", _collect_captures, len(scope.captures) + len(scope.postgres), "layer 8")
        repositories = submit("repositories", _collect_repositories, len(scope.repositories), "layer 5")
        components = submit("components", _collect_components,
                            len(scope.repositories) + len(scope.manifests) + len(scope.ops_tools), "layer 10")
        pipelines = submit("pipelines", _collect_pipelines, len(scope.repositories) + len(scope.pipelines),
                           "layer 11")
        aws_evidence = aws.result() if aws is not None else None
        from outsidein.backups.collect import collect_backups

        return Snapshot(collected_at=aws_evidence.collected_at if aws_evidence else started, aws=aws_evidence,
                        hosts=hosts.result(), nginx=nginx.result(), tls=tls.result(), captures=captures.result(),
                        repositories=repositories.result(), components=components.result(),
                        pipelines=pipelines.result(), backups=collect_backups(scope.backups))


def _collect_hosts(scope: Scope) -> list[HostEvidence]:
    if not scope.hosts:
        return []
    from outsidein.host.collect import collect_hosts

    return collect_hosts(scope.hosts)


def _collect_nginx(scope: Scope) -> list[NginxEvidence]:
    from outsidein.nginx.collect import collect_nginx

    return [collect_nginx(conf.name, conf.config, environment=conf.environment, url=conf.url,
                          nginx_binary=conf.nginx_binary, verify=conf.verify_tls) for conf in scope.nginx]


def _collect_tls(scope: Scope) -> list[TlsEvidence]:
    if not scope.tls and not scope.certificates:
        return []
    from outsidein.tls.collect import collect_tls

    return collect_tls(scope.tls, scope.certificates)


def _collect_captures(scope: Scope) -> list[CaptureEvidence]:
    if not scope.captures and not scope.postgres:
        return []
    from outsidein.transit.collect import collect_transit

    return collect_transit(scope.captures, scope.postgres)


def _collect_repositories(scope: Scope) -> list[SourceEvidence]:
    if not scope.repositories:
        return []
    from outsidein.secrets.collect import collect_repositories

    return collect_repositories(scope.repositories)


def _collect_components(scope: Scope) -> list[SourceEvidence]:
    if not (scope.repositories or scope.manifests or scope.ops_tools):
        return []
    from outsidein.components.collect import collect_components

    return collect_components(scope)


def _collect_pipelines(scope: Scope) -> list[SourceEvidence]:
    if not (scope.repositories or scope.pipelines):
        return []
    from outsidein.pipelines.collect import collect_pipelines

    return collect_pipelines(scope)


def _collect(args: argparse.Namespace) -> Snapshot | None:
    scope = _find_scope(args)
    if scope is None:
        from outsidein.backups.collect import collect_backups
        from outsidein.demo.local_targets import demo_backups, demo_captures, demo_hosts, demo_nginx
        from outsidein.demo.repository import demo_repository
        from outsidein.demo.tls_servers import demo_tls

        with _demo_stack() as (aws_scope, session), demo_tls() as tls, demo_repository() as repo:
            local = Scope(aws=None, hosts=demo_hosts(), nginx=demo_nginx(), tls=tls.endpoints,
                          certificates=tls.certificates, captures=demo_captures(), repositories=(repo.repository,),
                          osv=repo.osv)
            backups = demo_backups(repo.repository.path.parent.parent)
            with collection_progress() as progress, ThreadPoolExecutor(max_workers=1) as pool:
                local_snapshot = pool.submit(_collect_scope, local)
                evidence = progress.track("AWS", AwsCollector(aws_scope, session=session, backups=backups).collect,
                                          len(aws_scope.regions), "region", "layers 1, 5, 6, 7, 9")()
                snap = local_snapshot.result()
        return Snapshot(collected_at=evidence.collected_at, aws=evidence, hosts=snap.hosts, nginx=snap.nginx,
                        tls=snap.tls, captures=snap.captures, repositories=snap.repositories,
                        components=snap.components, pipelines=snap.pipelines, backups=collect_backups(backups))
    if scope.aws is None and not scope.has_targets:
        return None
    return _collect_scope(scope)


def _load(source: Path, args: argparse.Namespace) -> tuple[Snapshot | None, str]:
    if source.is_dir():
        hint: tuple[str, ...] = ()
        if args.config is not None:
            scope = load_scope(args.config)
            hint = scope.aws.regions if scope.aws else ()
        evidence, ignored = load_cli_folder(source, hint)
        for name in ignored:
            _err(f"{source / name}: not an AWS CLI output outsidein reads; ignored")
        snapshot = Snapshot(collected_at=evidence.collected_at, aws=evidence) if evidence else None
        return snapshot, f"AWS CLI folder {source}"
    if not source.exists():
        raise UsageError(f"{source}: no such snapshot file or folder")
    return Snapshot.load(source), f"snapshot {source}"


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{output}: cannot write report: {exc.strerror or exc}") from None
    _err(f"report written to {output}")


def _render(report: AuditReport, args: argparse.Namespace) -> None:
    if args.format != "table":
        _write(render_report(report, args.format), args.output)
    elif args.output is None:
        render_table(report, Console() if sys.stdout.isatty() else Console(width=160))
    else:
        buffer = io.StringIO()
        render_table(report, Console(file=buffer, width=160, no_color=True, force_terminal=False))
        _write(buffer.getvalue(), args.output)


def cmd_audit(args: argparse.Namespace) -> int:
    if args.source is not None:
        evidence, source = _load(args.source, args)
    else:
        evidence = _collect(args)
        source = "live collection" if evidence is not None else "nothing in scope"
    report = evaluate(evidence, source, _baseline(args))
    # Stored first, so the report shows each finding's first-seen, due date, owner and state (overdue first).
    report, overdue_exit = store_commands.store_audit(args, report, _find_scope)
    _render(report, args)
    if args.write_baseline is not None:
        _append_baseline(args.write_baseline, report)
    if args.fail_on is not None:
        tripped = report.at_or_above(args.fail_on)
        if tripped:
            _err(f"--fail-on {args.fail_on.value}: {len(tripped)} finding(s) at or above {args.fail_on.value}")
            return EXIT_FINDINGS
    return overdue_exit


def _baseline(args: argparse.Namespace) -> dict[str, BaselineEntry] | None:
    path = args.baseline
    if path is None and not args.demo:
        scope = _find_scope(args) if args.source is None or args.config is not None else None
        path = scope.baseline if scope is not None else None
    return load_baseline(path) if path is not None else None


def _append_baseline(path: Path, report: AuditReport) -> None:
    text = baseline_entries_toml(report.findings)
    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(existing + ("\n" if existing and not existing.endswith("\n\n") else "") + text,
                        encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write baseline: {exc.strerror or exc}") from None
    _err(f"{len(report.findings)} baseline entries appended to {path}: give each a status and a reason")


def cmd_collect(args: argparse.Namespace) -> int:
    snapshot = _collect(args) or Snapshot(collected_at=datetime.now(UTC).replace(microsecond=0))
    try:
        snapshot.save(args.output)
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write snapshot: {exc.strerror or exc}") from None
    records = list(snapshot.aws.records.values()) if snapshot.aws else []
    for host in snapshot.hosts:
        records += [*host.commands.values(), *host.files.values()]
    failed = sum(1 for r in records if not r.ok)
    _err(f"snapshot written to {args.output}: {len(records)} reads, {failed} without data, "
         f"{len(snapshot.hosts)} host(s), {len(snapshot.nginx)} nginx configuration(s)")
    return EXIT_OK


def cmd_db(args: argparse.Namespace) -> int:
    from outsidein.components import osvdb

    scope = load_scope(args.config) if args.config is not None else None
    if scope is None and Path(DEFAULT_SCOPE_FILE).is_file():
        scope = load_scope(Path(DEFAULT_SCOPE_FILE))
    osv = (scope or Scope()).osv
    database = args.database or osv.database
    if args.db_command == "update":  # an OsvError is a CollectionError: exit 2 with its message
        print(osvdb.update(database, args.ecosystems or osvdb.DEFAULT_ECOSYSTEMS, args.mirror or osv.mirror))
    elif args.db_command == "import":
        print(osvdb.import_file(database, args.file))
    else:
        print(osvdb.status(database))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """Active tests: only what the scope's [simulation] block authorizes (the guard refuses before sending)."""
    from outsidein.simulate.chart import render_chart, summary_lines
    from outsidein.simulate.collect import run_simulation
    from outsidein.simulate.guard import SimulationRefused

    args.demo = False
    scope = _find_scope(args)
    if scope is None:
        raise UsageError("no scope file: `outsidein simulate` needs -c FILE with a [simulation] block")
    try:
        evidence = run_simulation(scope.simulation, str(scope.source or "scope"))
    except SimulationRefused as exc:
        raise UsageError(f"simulation refused: {exc}") from None
    for line in summary_lines(evidence):
        _err(line)
    snapshot = Snapshot(collected_at=datetime.now(UTC).replace(microsecond=0), simulations=[evidence])
    if args.save is not None:
        try:
            snapshot.save(args.save)
        except OSError as exc:
            raise UsageError(f"{args.save}: cannot write snapshot: {exc.strerror or exc}") from None
        _err(f"snapshot written to {args.save}")
    if args.chart is not None:
        try:
            args.chart.write_text(render_chart([evidence]), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{args.chart}: cannot write chart: {exc.strerror or exc}") from None
        _err(f"chart written to {args.chart}")
    report = evaluate(snapshot, "attack simulation")
    _render(report, args)
    if args.fail_on is not None and report.at_or_above(args.fail_on):
        _err(f"--fail-on {args.fail_on.value}: {len(report.at_or_above(args.fail_on))} finding(s) at or above "
             f"{args.fail_on.value}")
        return EXIT_FINDINGS
    return EXIT_OK


def cmd_drill(args: argparse.Namespace) -> int:
    """``outsidein drill restore``: refused (no scratch target, no key, no object) or failed drills exit 2."""
    import json

    from outsidein.backups.drill import DrillRefused, append_log, open_object, run_drill

    args.demo = False
    scope = _find_scope(args)
    if scope is None or scope.backups is None:
        raise UsageError("no [backups] section: `outsidein drill restore` needs -c FILE with [backups.drill] "
                         "(scratch_databases marks the only databases a drill may write)")
    drill = scope.backups.drill
    source, target = args.source or drill.source, args.target or drill.target
    key_env = args.key_env or drill.key_env
    log = args.log or scope.backups.drill_log
    if not source:
        raise UsageError("no backup to restore: give --source or [backups.drill] source")
    try:
        from outsidein.backups.drill import check_target

        check_target(target, drill)  # the guard runs before anything is read
        passphrase = os.environ.get(key_env)
        if not passphrase:
            raise DrillRefused(f"the key variable {key_env} is not set in the environment")
        obj = open_object(source, scope.aws)
        record = run_drill(obj, str(target), drill, passphrase.encode())
    except DrillRefused as exc:
        raise UsageError(f"drill refused: {exc}") from None
    if log is not None:
        try:
            append_log(log, record)
        except OSError as exc:
            _err(f"outsidein: warning: {log}: cannot write the drill log: {exc.strerror or exc}")
    print(json.dumps(record.to_json(), indent=1, sort_keys=True))
    if record.result != "success":
        _err(f"outsidein: drill failed: {record.reason}")
        return EXIT_USAGE
    _err(f"drill succeeded: {record.source} restored into {record.target} in {record.duration_s:.1f} s "
         f"({record.mb_per_s:.1f} MB/s); logged to {log}")
    return EXIT_OK


def cmd_checks(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(checks_markdown())
        return EXIT_OK
    for check in all_checks():
        meta = check.meta
        print(f"L{meta.layer:02d}  {meta.severity.value:<8}  {meta.id:<30}  {meta.title}")
    return EXIT_OK


def checks_markdown() -> str:
    """The check reference, generated from the registry so it cannot drift from the code."""
    lines = ["# Checks", "", "Generated by `outsidein checks --markdown`. Severities are the playbook's; a few checks",
             "raise or lower one finding's severity (by port, by environment), as their detail says.", ""]
    for layer in LAYERS:
        checks = [c for c in all_checks() if c.meta.layer == layer.number]
        if not checks:
            continue
        lines += [f"## Layer {layer.number}: {layer.domain}", ""]
        for check in checks:
            meta = check.meta
            reads = ", ".join(f"`{r}`" for r in meta.requires) or "see the check"
            lines += [f"### `{meta.id}` — {meta.severity.value}", "", meta.title + ".", "",
                      f"- Reads: {reads}", f"- Fix: {meta.remediation}", "- Verify:", "",
                      "  ```sh", f"  {meta.verify}", "  ```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    limit_malloc_arenas()  # before any collector thread starts (see outsidein.allocator)
    handlers = {"audit": cmd_audit, "collect": cmd_collect, "checks": cmd_checks, "db": cmd_db,
                "simulate": cmd_simulate, "drill": cmd_drill}
    handlers.update({name: partial(run, find_scope=_find_scope) for name, run in store_commands.COMMANDS.items()})
    try:
        return handlers[args.command](args)
    except (UsageError, ScopeError, EvidenceError, CollectionError, BaselineError, StoreError, TrackerError) as exc:
        _err(f"outsidein: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("outsidein: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
