"""The store's command line: ``audit`` storing, ``history``, ``diff``, ``accept`` and ``tickets``.

Kept here so ``cli.py`` only registers them; ``find_scope`` is the CLI's own scope lookup, passed in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from outsidein.audit import AuditReport
from outsidein.lifecycle import annotate
from outsidein.owners import Owners
from outsidein.scope import Scope
from outsidein.store import Diff, Store, StoredFinding, StoreError, store_url

FindScope = Callable[[argparse.Namespace], Scope | None]
EXIT_OK, EXIT_FINDINGS = 0, 1


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def add_audit_flags(audit: argparse.ArgumentParser) -> None:
    audit.add_argument("--store", metavar="URL_OR_FILE",
                       help="findings history to store this audit in (default: the scope's [store], else "
                            ".outsidein/state.db next to the scope file; $OUTSIDEIN_STORE overrides the scope)")
    audit.add_argument("--no-store", action="store_true", help="do not store this audit")
    audit.add_argument("--fail-on-overdue", action="store_true",
                       help="exit 1 if any open finding in this audit is past its due date (needs the store)")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", "-c", type=Path, help="scope file whose store and owners to use (default: "
                       "./outsidein.toml or $OUTSIDEIN_CONFIG)")
        p.add_argument("--store", metavar="URL_OR_FILE", help="the store (a SQLAlchemy URL or a SQLite file)")
        p.add_argument("--demo", action="store_true", help=argparse.SUPPRESS)

    history = sub.add_parser("history", help="audits stored, with counts per audit")
    common(history)
    history.add_argument("--format", choices=("table", "json"), default="table")
    history.add_argument("--limit", type=int, default=50, help="the last N audits (default 50)")

    diff = sub.add_parser("diff", help="new, fixed, reopened and overdue findings between two stored audits")
    common(diff)
    diff.add_argument("before", type=int, nargs="?", help="audit id (default: the one before AFTER)")
    diff.add_argument("after", type=int, nargs="?", help="audit id (default: the latest)")
    diff.add_argument("--format", choices=("table", "json"), default="table")

    accept = sub.add_parser("accept", help="accept a finding's risk, with a reason, who accepts it and an expiry")
    common(accept)
    accept.add_argument("fingerprint", help="the finding's fingerprint (a unique prefix will do)")
    accept.add_argument("--reason", required=True)
    accept.add_argument("--by", required=True, help="who accepts the risk")
    accept.add_argument("--expires", required=True, type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the last day the acceptance holds; the finding is open again after it")

    tickets = sub.add_parser("tickets", help="open findings as tickets, one per check and environment")
    common(tickets)
    tickets.add_argument("--format", choices=("csv", "markdown", "json"), default="markdown",
                         help="csv is for Jira's CSV importer (Due Date as yyyy-MM-dd)")
    tickets.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    tickets.add_argument("--jira", metavar="URL", help="create or update the tickets in this Jira "
                         "(JIRA_USER and JIRA_TOKEN from the environment)")
    tickets.add_argument("--jira-project", metavar="KEY", help="the Jira project key")
    tickets.add_argument("--github", metavar="OWNER/REPO", help="create or update GitHub issues (GITHUB_TOKEN)")
    tickets.add_argument("--github-api", default="https://api.github.com", help=argparse.SUPPRESS)


def _open(args: argparse.Namespace, scope: Scope | None, required: bool = True) -> Store | None:
    explicit = getattr(args, "store", None)
    if scope is not None and not scope.store.enabled and not explicit and not os.environ.get("OUTSIDEIN_STORE"):
        if required:
            raise StoreError("the scope's [store] is disabled (enabled = false): give --store")
        return None
    url = store_url(explicit, scope.store.url if scope else None, scope.store.path if scope else None,
                    scope.source if scope else None)
    if url is None:
        if required:
            raise StoreError("no store: give --store URL_OR_FILE, or run where the scope file (outsidein.toml) is")
        return None
    return Store(url)


def owners_for(scope: Scope | None) -> Owners:
    return Owners(scope.owners, scope.store.default_owner) if scope else Owners()


def store_audit(args: argparse.Namespace, report: AuditReport,
                find_scope: FindScope) -> tuple[AuditReport, int]:
    """Store the audit unless --no-store, then fill in what the user sees of the history (first-seen, due,
    owner, state; overdue first): the report to render, and the exit code --fail-on-overdue asks for."""
    if args.no_store and args.fail_on_overdue:
        raise StoreError("--fail-on-overdue needs the store: drop --no-store")
    scope = find_scope(args)
    owners = owners_for(scope)
    store = None if args.no_store else _open(args, scope, required=args.fail_on_overdue or bool(args.store))
    if store is None:
        return annotate(report, owners), EXIT_OK
    with store:
        scope_name = str(scope.source) if scope and scope.source else ""
        stored = store.record(report, owners=owners, scope=scope_name)
        report = annotate(report, owners, store.seen_in(stored.audit_id))
        _err(f"stored as audit #{stored.audit_id} in {store.display}: {stored.new} new, {stored.reopened} reopened, "
             f"{stored.resolved} resolved, {stored.accepted} accepted, {stored.overdue} overdue")
    overdue = report.overdue()
    if overdue:
        _err(f"ESCALATED: {len(overdue)} finding(s) past their due date (listed first, marked OVERDUE):")
        for f in overdue[:20]:
            _err(f"  OVERDUE {f.severity.value:<8} due {_date(f.due)}  {f.owner or '-':<20} {f.check_id}  "
                 f"{f.resource}  ({f.fingerprint})")
        if len(overdue) > 20:
            _err(f"  … and {len(overdue) - 20} more (outsidein tickets)")
    if args.fail_on_overdue and overdue:
        _err(f"--fail-on-overdue: {len(overdue)} overdue finding(s)")
        return report, EXIT_FINDINGS
    return report, EXIT_OK


def _date(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "-"


def cmd_history(args: argparse.Namespace, *, find_scope: FindScope) -> int:
    store = _open(args, find_scope(args))
    assert store is not None
    with store:
        records = store.audits(args.limit)
    if args.format == "json":
        sys.stdout.write(json.dumps({"schema": "outsidein-history/1", "audits": [r.to_json() for r in records]},
                                    indent=2) + "\n")
        return EXIT_OK
    print(f"{'audit':>5}  {'evaluated (UTC)':<16}  {'findings':>8}  {'new':>5}  {'reopened':>8}  {'resolved':>8}  "
          f"{'accepted':>8}  {'overdue':>7}  {'n/a':>5}  source")
    for r in records:
        print(f"{r.id:>5}  {r.evaluated_at.strftime('%Y-%m-%d %H:%M'):<16}  {r.findings:>8}  {r.new:>5}  "
              f"{r.reopened:>8}  {r.resolved:>8}  {r.accepted:>8}  {r.overdue:>7}  {r.not_assessed:>5}  {r.source}")
    if not records:
        print("(no audit stored yet)")
    return EXIT_OK


def _diff_table(diff: Diff) -> str:
    before = f"audit #{diff.before.id}" if diff.before else "nothing"
    lines = [f"outsidein diff: {before} -> audit #{diff.after.id} ({diff.after.evaluated_at:%Y-%m-%d %H:%M} UTC): "
             f"{len(diff.new)} new, {len(diff.fixed)} fixed, {len(diff.reopened)} reopened, "
             f"{len(diff.overdue)} overdue"]
    now = diff.after.evaluated_at
    for title, items in (("OVERDUE", diff.overdue), ("NEW", diff.new), ("REOPENED", diff.reopened),
                         ("FIXED", diff.fixed)):
        if not items:
            continue
        lines += ["", f"{title} ({len(items)})"]
        lines += [_line(f, now) for f in items]
    return "\n".join(lines) + "\n"


def _line(f: StoredFinding, now: dt.datetime) -> str:
    mark = "OVERDUE " if f.overdue(now) else ""
    return (f"  {mark}{f.severity.value:<8} due {_date(f.due)}  {f.owner:<16} L{f.layer:02d} {f.check_id}  "
            f"{f.resource}  {f.environment or '-'}  {f.detail}  ({f.fingerprint})")


def cmd_diff(args: argparse.Namespace, *, find_scope: FindScope) -> int:
    store = _open(args, find_scope(args))
    assert store is not None
    with store:
        diff = store.diff(args.before, args.after)
    if args.format == "json":
        sys.stdout.write(json.dumps(diff.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(_diff_table(diff))
    return EXIT_OK


def cmd_accept(args: argparse.Namespace, *, find_scope: FindScope) -> int:
    store = _open(args, find_scope(args))
    assert store is not None
    with store:
        f = store.accept(args.fingerprint, reason=args.reason, by=args.by, expires=args.expires)
    _err(f"accepted {f.fingerprint} ({f.check_id} {f.resource}) until {args.expires} by {f.accepted_by}: "
         f"{f.accepted_reason}")
    return EXIT_OK


def cmd_tickets(args: argparse.Namespace, *, find_scope: FindScope) -> int:
    from outsidein.tickets import build_tickets, render_csv, render_json, render_markdown
    from outsidein.tickets.remote import GitHubTracker, JiraTracker

    store = _open(args, find_scope(args))
    assert store is not None
    now = dt.datetime.now(dt.UTC)
    with store:
        tickets = build_tickets(store.open_findings(now), now)
    if args.format == "csv":
        text = render_csv(tickets)
    elif args.format == "json":
        text = render_json(tickets, now)
    else:
        text = render_markdown(tickets, now)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        _err(f"{len(tickets)} ticket(s) written to {args.output}")
    elif not (args.jira or args.github):
        sys.stdout.write(text)
    if args.jira:
        if not args.jira_project:
            raise StoreError("--jira needs --jira-project KEY")
        jira = JiraTracker(args.jira, args.jira_project, user=os.environ.get("JIRA_USER"),
                           token=os.environ.get("JIRA_TOKEN"))
        for s in jira.sync(tickets):
            _err(f"Jira {s.remote}: {s.action} ({s.key})")
    if args.github:
        github = GitHubTracker(args.github, token=os.environ.get("GITHUB_TOKEN"), api_url=args.github_api)
        for s in github.sync(tickets):
            _err(f"GitHub #{s.remote}: {s.action} ({s.key})")
    return EXIT_OK


COMMANDS: dict[str, Callable[..., int]] = {
    "history": cmd_history, "diff": cmd_diff, "accept": cmd_accept, "tickets": cmd_tickets,
}
