"""Benchmark outsidein against Prowler on one large seeded account, in one run.

    python bench/run_bench.py            # full scale (5,000+ SGs, 50,000 rules, 2,000 roles, 500 subnets)
    python bench/run_bench.py --small    # one tenth, a quick smoke run
    python bench/run_bench.py --outsidein-read-timeout 300   # also run outsidein with a longer read timeout

One moto server (``bench/moto_counting_server.py``: moto's own WSGI app behind a request counter) is
started with MOTO_EC2_LOAD_DEFAULT_AMIS=false and MOTO_IAM_LOAD_MANAGED_POLICIES=true and seeded by
``bench/seed_large.py`` (not timed). Then, against that same server:

a. outsidein collection + evaluation runs in a child process (this script with ``--outsidein-child``);
   the child times collection and evaluation itself, the parent takes the child's peak RSS from
   ``os.wait4`` and the number of requests the server received;
b. Prowler runs in its own virtual environment (``$PROWLER_VENV``; default /opt/prowler-venv if it exists,
   else bench/.prowler-venv, created with ``pip install prowler==5.46.0`` when missing), scoped to the
   services ec2 vpc iam s3 secretsmanager rds backup and the two regions, writing JSON-OCSF to a temp dir;
   same measurements (process wall time, peak RSS from ``os.wait4``, requests counted by the server);
c. each planted problem is looked up in both tools' failed findings (by check id and resource id/ARN).

Both tools are measured twice on the same seeded account (``--emulator both``, the default): on moto
as released, and with the counting server's EC2 tag index switched on. moto finds the tags of each EC2
resource it renders by scanning every tag of the region, so its answer to DescribeSecurityGroups grows
with groups x tags (~35 s for 4,500 groups here, whoever asks); AWS has no such cost. The index reads a
resource's own tags from moto's dictionary instead (same answer; see bench/moto_counting_server.py).

outsidein's collector waits up to ``read_timeout`` seconds (scope setting, default 120) for one response;
moto ignores MaxResults for DescribeSecurityGroups and answers a whole region in one slow response.
``--outsidein-read-timeout N`` adds a second outsidein run with that scope setting changed to N.

Prowler's account-level S3 calls go to ``<account>.127.0.0.1``; if that name does not resolve and this
script runs as root, it appends exactly that one name to /etc/hosts (and says so).

The result is printed side by side and written to bench/results/bench-<scale>-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PROWLER_VERSION = "5.46.0"
PROWLER_SERVICES = ("ec2", "vpc", "iam", "s3", "secretsmanager", "rds", "backup")
REGIONS = ("us-east-1", "eu-west-1")
DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "AKIAEMULATOREXAMPLE1", "AWS_SECRET_ACCESS_KEY": "emulator-secret-not-a-real-key",
             "AWS_DEFAULT_REGION": "us-east-1"}
# Retries per read for outsidein: the demo's setting (the emulator answers Access Analyzer with HTTP 500).
OUTSIDEIN_MAX_ATTEMPTS = 2
INDEXED = "+index"  # run-key suffix of the runs on moto with the EC2 tag index

# Planted problem kind -> (outsidein check ids, Prowler check ids) that report it.
MATCHERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sg-ssh-world": (("sg-open-ingress",), ("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22",)),
    "sg-postgres-world": (("sg-open-ingress",),
                          ("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_postgres_5432",)),
    "sg-all-world": (("sg-open-ingress",), ("ec2_securitygroup_allow_ingress_from_internet_to_all_ports",)),
    "sg-redis-world-ipv6": (("sg-open-ingress",),
                            ("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_redis_6379",)),
    "sg-rdp-world": (("sg-open-ingress",), ("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_3389",)),
    "nacl-no-deny": (("nacl-no-deny",), ("ec2_networkacl_allow_ingress_any_port",)),
    "default-sg-in-use": (("sg-default-in-use",), ("ec2_securitygroup_default_restrict_traffic",)),
    "private-subnet-igw-route": (("vpc-private-subnet-igw-route",), ()),
    "private-subnet-auto-public-ip": (("vpc-subnet-auto-public-ip",), ("vpc_subnet_no_public_ip_by_default",)),
    "vpc-no-flow-logs": (("vpc-flow-logs",), ("vpc_flow_logs_enabled",)),
    "vpc-flow-logs-short-retention": (("vpc-flow-logs-retention",),
                                      ("cloudwatch_log_group_retention_policy_specific_days_enabled",)),
    "rds-public": (("vpc-datastore-public",), ("rds_instance_no_public_access",)),
    "iam-role-admin": (("iam-wildcard-admin",),
                       ("iam_role_administratoraccess_policy", "iam_aws_attached_policy_no_administrative_privileges")),
    "iam-policy-escalation": (("iam-wildcard-admin",),
                              ("iam_policy_allows_privilege_escalation",
                               "iam_customer_attached_policy_no_administrative_privileges")),
    "iam-inline-admin": (("iam-wildcard-admin",),
                         ("iam_inline_policy_no_administrative_privileges",
                          "iam_inline_policy_allows_privilege_escalation")),
    "iam-cross-account-no-externalid": (("iam-cross-account-trust",),
                                        ("iam_role_cross_account_readonlyaccess_policy",)),
    "iam-console-no-mfa": (("iam-console-mfa",), ("iam_user_mfa_enabled_console_access",)),
    "iam-root-no-mfa": (("iam-root-mfa",), ("iam_root_mfa_enabled", "iam_root_hardware_mfa_enabled")),
    "s3-public-getobject": (("s3-public-getobject",), ("s3_bucket_public_access",)),
}


def log(message: str = "") -> None:
    print(message, flush=True)


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


# --------------------------------------------------------------------------- the emulator


class CountingMoto:
    """One moto server (with request counter) on a free loopback port, its log in ``log_path``."""

    def __init__(self, log_path: Path) -> None:
        from outsidein.demo.emulator import EMULATOR_ENV, free_loopback_port

        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, **EMULATOR_ENV, "MOTO_PORT": str(self.port)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> CountingMoto:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "moto_counting_server.py"), "-p", str(self.port), "--tag-index"],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/__bench/ping", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} within {timeout:.0f}s")

    def counts(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/__bench/counts", timeout=10) as response:
            return dict(json.load(response))

    def wait_idle(self, timeout: float = 600.0) -> float:
        """Wait until the server answers no request (abandoned ones included); returns the seconds waited."""
        start = time.monotonic()
        while self.counts().get("in_flight", 0) and time.monotonic() - start < timeout:
            time.sleep(0.5)
        return round(time.monotonic() - start, 1)

    def set_tag_index(self, on: bool) -> None:
        """Switch moto's EC2 tag lookups to the index (True) or to moto's own scan (False)."""
        request = urllib.request.Request(f"{self.url}/__bench/tag-index?on={int(on)}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["tag_index"] is on

    def reset_counts(self) -> None:
        with urllib.request.urlopen(urllib.request.Request(f"{self.url}/__bench/reset", method="POST"), timeout=10):
            pass

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._log.close()


def ensure_loopback_name(name: str) -> str:
    """Make ``name`` resolve to 127.0.0.1 (Prowler's S3 Control host); returns what was done."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except socket.gaierror:
        addresses = set()
    if "127.0.0.1" in addresses:
        return f"{name} resolves to 127.0.0.1"
    if os.geteuid() != 0:
        log(f"WARNING: {name} does not resolve and this is not root: Prowler's S3 Control calls "
            f"(account Block Public Access, access points) will fail. Add '127.0.0.1 {name}' to /etc/hosts.")
        return f"{name} does not resolve (not root: /etc/hosts left alone)"
    hosts = Path("/etc/hosts")
    text = hosts.read_text(encoding="utf-8")
    with hosts.open("a", encoding="utf-8") as fh:
        fh.write(("" if text.endswith("\n") else "\n") + f"127.0.0.1\t{name}\t# outsidein bench/run_bench.py\n")
    log(f"NOTE: appended '127.0.0.1 {name}' to /etc/hosts (running as root) so that Prowler's S3 Control "
        "calls reach the emulator")
    return f"appended '127.0.0.1 {name}' to /etc/hosts"


# --------------------------------------------------------------------------- child processes


def run_measured(cmd: list[str], env: dict[str, str], stdout_path: Path, cwd: Path | None = None
                 ) -> dict[str, Any]:
    """Run ``cmd`` to completion; its wall time, exit code and peak RSS (its own, from wait4)."""
    with stdout_path.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": round(wall, 2), "exit_code": process.returncode, "peak_rss_mib": mib(usage.ru_maxrss),
            "user_cpu_s": round(usage.ru_utime, 2), "system_cpu_s": round(usage.ru_stime, 2)}


def _vm_hwm_kib() -> int:
    """This process's own peak RSS (VmHWM: per address space, so not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def outsidein_child(endpoint: str, out_path: str, read_timeout: int | None = None) -> None:
    """Collect and evaluate in this (child) process; write timings and findings as JSON.

    ``read_timeout``, when given, replaces the scope's default ``read_timeout``.
    """
    started = time.perf_counter()
    from outsidein.allocator import limit_malloc_arenas

    limit_malloc_arenas()  # as `outsidein` does at start-up, before any thread
    import boto3

    from outsidein.audit import evaluate
    from outsidein.aws.collect import AwsCollector
    from outsidein.aws.reads import GLOBAL_READS, REGIONAL_READS
    from outsidein.scope import AwsScope

    imported = time.perf_counter()
    rss_imports = _vm_hwm_kib()
    scope = AwsScope(regions=REGIONS, endpoint_url=endpoint, max_attempts=OUTSIDEIN_MAX_ATTEMPTS,
                     read_timeout=read_timeout or AwsScope.read_timeout)
    session = boto3.Session(aws_access_key_id=DUMMY_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=DUMMY_ENV["AWS_SECRET_ACCESS_KEY"], region_name=REGIONS[0])
    collector = AwsCollector(scope, session=session)
    t = time.perf_counter()
    evidence = collector.collect()
    collect_s = time.perf_counter() - t
    rss_collect = _vm_hwm_kib()
    t = time.perf_counter()
    report = evaluate(evidence)
    eval_s = time.perf_counter() - t
    rss_eval = _vm_hwm_kib()
    findings = [{"check_id": f.check_id, "resource": f.resource, "region": f.region,
                 "severity": f.severity.value, "detail": f.detail} for f in report.findings]
    not_assessed = [{"check_id": c.meta.id, "resource": r.resource, "reason": r.reason}
                    for c, r in report.not_assessed]
    results_total = len(report.results)
    del report

    # What the same reads would cost on AWS, which honours every PageSize (moto ignores some).
    pages = []
    for read in (*REGIONAL_READS, *GLOBAL_READS):
        size = (read.kwargs.get("PaginationConfig") or {}).get("PageSize")
        for region in (*REGIONS, "global"):
            record = evidence.records.get(f"{region}/{read.call}")
            if record is None or not record.ok:
                continue
            data = record.data or {}
            if read.call == "iam.get_account_authorization_details":
                items = sum(len(data.get(k, [])) for k in ("UserDetailList", "GroupDetailList", "RoleDetailList",
                                                         "Policies"))
            else:
                items = len(data.get(read.result_key, []) or [])
            pages.append({"read": read.call, "region": region, "items": items, "page_size": size,
                          "pages_on_aws": max(1, math.ceil(items / size)) if size and read.paginated else 1})
    errors = {key: rec.error for key, rec in evidence.records.items() if not rec.ok}
    result = {
        "read_timeout_override_s": read_timeout,
        "import_s": round(imported - started, 2),
        "collect_s": round(collect_s, 2),
        "evaluate_s": round(eval_s, 3),
        "rss_mib": {"after_imports": mib(rss_imports), "after_collect": mib(rss_collect),
                    "after_evaluate": mib(rss_eval)},
        "api_calls": dict(sorted(evidence.api_calls.items())),
        "api_calls_total": sum(evidence.api_calls.values()),
        "pages": pages,
        "read_errors": errors,
        "per_resource_calls": sum(1 for key in evidence.records if "#" in key),
        "inventory": _inventory_counts(evidence),
        "results_total": results_total,
        "findings": findings,
        "not_assessed": not_assessed,
    }
    Path(out_path).write_text(json.dumps(result, indent=1), encoding="utf-8")


def _inventory_counts(evidence: Any) -> dict[str, int]:
    """What the collector saw, counted from the raw evidence (no second parse)."""
    counts: Counter[str] = Counter()
    def data(key: str) -> dict[str, Any]:
        record = evidence.records.get(key)
        return (record.data or {}) if record is not None else {}

    for region in REGIONS:
        groups = data(f"{region}/ec2.describe_security_groups").get("SecurityGroups", [])
        counts["security_groups"] += len(groups)
        counts["sg_rules"] += sum(len(perm.get("IpRanges", [])) + len(perm.get("Ipv6Ranges", []))
                                  + len(perm.get("UserIdGroupPairs", [])) + len(perm.get("PrefixListIds", []))
                                  for g in groups for perm in (*g.get("IpPermissions", []),
                                                               *g.get("IpPermissionsEgress", [])))
        counts["subnets"] += len(data(f"{region}/ec2.describe_subnets").get("Subnets", []))
    counts["roles"] = len(data("global/iam.get_account_authorization_details").get("RoleDetailList", []))
    return dict(counts)


def run_outsidein(server: CountingMoto, workdir: Path, read_timeout: int | None = None, suffix: str = ""
                  ) -> dict[str, Any]:
    name = (f"outsidein-rt{read_timeout}" if read_timeout else "outsidein") + suffix
    out = workdir / f"{name}-child.json"
    waited = server.wait_idle()
    server.reset_counts()
    env = {**os.environ, **DUMMY_ENV}
    env.pop("AWS_ENDPOINT_URL", None)  # the scope names the endpoint
    cmd = [sys.executable, str(Path(__file__).resolve()), "--outsidein-child", server.url, str(out)]
    if read_timeout:
        cmd += ["--child-read-timeout", str(read_timeout)]
    measured = run_measured(cmd, env, workdir / f"{name}.log")
    measured["server_requests"] = server.counts()
    measured["server_idle_wait_s"] = waited
    if measured["exit_code"] != 0:
        raise RuntimeError(f"outsidein child failed (exit {measured['exit_code']}); see {workdir / name}.log")
    measured.update(json.loads(out.read_text(encoding="utf-8")))
    return measured


# --------------------------------------------------------------------------- Prowler


def default_prowler_venv() -> Path:
    if os.environ.get("PROWLER_VENV"):
        return Path(os.environ["PROWLER_VENV"])
    system = Path("/opt/prowler-venv")
    return system if (system / "bin" / "prowler").exists() else BENCH / ".prowler-venv"


def ensure_prowler(venv: Path) -> str:
    """Prowler's own virtualenv (it pins its own boto3); created with pip when missing."""
    prowler = venv / "bin" / "prowler"
    if not prowler.exists():
        log(f"Prowler not found in {venv}: creating the virtualenv and installing prowler=={PROWLER_VERSION} "
            "(a few minutes) ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                       check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        f"prowler=={PROWLER_VERSION}"], check=True)
    version = subprocess.run([str(prowler), "--version"], capture_output=True, text=True, check=False)
    text = (version.stdout or version.stderr).strip()
    if PROWLER_VERSION not in text:
        log(f"WARNING: expected Prowler {PROWLER_VERSION}, {prowler} reports {text!r}")
    return text


def iter_ocsf(path: Path) -> Iterator[dict[str, Any]]:
    """Findings of a JSON-OCSF file (one big JSON array), streamed: the file can exceed a gigabyte."""
    decoder = json.JSONDecoder()
    buffer = ""
    with path.open(encoding="utf-8") as fh:
        while True:
            chunk = fh.read(1 << 20)
            buffer += chunk
            pos = 0
            while True:
                while pos < len(buffer) and buffer[pos] in " \t\r\n,[":
                    pos += 1
                if pos >= len(buffer) or buffer[pos] == "]":
                    break
                try:
                    obj, end = decoder.raw_decode(buffer, pos)
                except json.JSONDecodeError:
                    if not chunk:
                        raise
                    break  # the object continues in the next chunk
                yield obj
                pos = end
            buffer = buffer[pos:]
            if not chunk:
                return


def run_prowler(server: CountingMoto, venv: Path, workdir: Path, keep: bool, suffix: str = "") -> dict[str, Any]:
    outdir = Path(tempfile.mkdtemp(prefix="prowler-ocsf-"))
    cmd = [str(venv / "bin" / "prowler"), "aws", "--service", *PROWLER_SERVICES, "--region", *REGIONS,
           "--output-formats", "json-ocsf", "--output-directory", str(outdir), "--output-filename", "prowler",
           "--no-banner", "--ignore-exit-code-3", "--log-level", "ERROR"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(DUMMY_ENV, AWS_ENDPOINT_URL=server.url)
    waited = server.wait_idle()
    server.reset_counts()
    log_path = workdir / f"prowler{suffix}.log"
    measured = run_measured(cmd, env, log_path, cwd=outdir)
    measured["server_requests"] = server.counts()
    measured["server_idle_wait_s"] = waited
    measured["command"] = " ".join(["AWS_ENDPOINT_URL=" + server.url, *cmd[:1], *cmd[1:]]).replace(
        str(outdir), "$TMPDIR")
    logtext = log_path.read_text(encoding="utf-8", errors="replace")
    scan = re.search(r"\] in (?:(\d+):)?(\d+(?:\.\d+)?)s?", logtext.split("Scan completed", 1)[-1])
    measured["scan_phase_s"] = round(int(scan.group(1) or 0) * 60 + float(scan.group(2)), 1) if scan else None
    measured["logged_errors"] = len(re.findall(r"\bERROR\b", logtext))
    files = sorted(outdir.glob("*.ocsf.json"))
    status: Counter[str] = Counter()
    fails = []
    size = 0
    for file in files:
        size += file.stat().st_size
        for finding in iter_ocsf(file):
            status[finding.get("status_code", "?")] += 1
            if finding.get("status_code") == "FAIL":
                fails.append({
                    "check_id": finding["metadata"]["event_code"],
                    "resources": sorted({str(r.get(k, "")) for r in finding.get("resources", [])
                                         for k in ("uid", "name") if r.get(k)}),
                    "region": (finding.get("cloud") or {}).get("region"),
                    "detail": str(finding.get("status_detail", ""))[:200],
                })
    measured.update(output_mib=round(size / 2**20, 1), findings_by_status=dict(status), fails=fails,
                    output_dir=str(outdir) if keep else None)
    if not keep:
        shutil.rmtree(outdir, ignore_errors=True)
    if measured["exit_code"] != 0 or not files:
        log(f"WARNING: Prowler exited with {measured['exit_code']} and wrote {len(files)} OCSF file(s); "
            f"see {log_path}")
    return measured


# --------------------------------------------------------------------------- matching


def _ids(planted: dict[str, Any]) -> set[str]:
    return {planted["resource"], *planted.get("aliases", ())}


def _prowler_hit(resources: list[str], ids: set[str]) -> bool:
    return any(r in ids or any(r.endswith("/" + i) or r.endswith(":" + i) for i in ids) for r in resources)


def _failures(tool: str, run: dict[str, Any]) -> list[tuple[str, list[str], str]]:
    """(check id, resource identifiers, detail) of every failed finding of a tool."""
    if tool == "prowler":
        return [(f["check_id"], f["resources"], f["detail"]) for f in run["fails"]]
    return [(f["check_id"], [f["resource"]], f["detail"]) for f in run["findings"]]


def match(planted: list[dict[str, Any]], runs: dict[str, dict[str, Any]]
          ) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """Which failed finding of each tool reports each planted problem; and the failures left over."""
    rows = [dict(p) for p in planted]
    extra = {}
    for tool, run in runs.items():
        failures = _failures(_kind(tool), run)
        used: set[int] = set()
        for row in rows:
            o_checks, p_checks = MATCHERS[row["kind"]]
            checks = p_checks if _kind(tool) == "prowler" else o_checks
            ids = _ids(row)
            hits = [i for i, (check, resources, _) in enumerate(failures)
                    if check in checks and (_prowler_hit(resources, ids) if _kind(tool) == "prowler"
                                            else resources[0] in ids)]
            used.update(hits)
            row[tool] = sorted({failures[i][0] for i in hits})
            row[f"{tool}_detail"] = failures[hits[0]][2] if hits else None
            # How selective the check is: its failures across the whole account.
            row[f"{tool}_check_failures_in_account"] = sum(1 for check, _, _ in failures if check in checks)
        extra[tool] = dict(Counter(check for i, (check, _, _) in enumerate(failures) if i not in used).most_common())
    return rows, extra


# --------------------------------------------------------------------------- report


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _kind(tool: str) -> str:
    """A run key's tool: "prowler" or "outsidein" (keys carry the emulator variant: "prowler+index" …)."""
    return "prowler" if tool.startswith("prowler") else "outsidein"


def _label(tool: str, run: dict[str, Any]) -> str:
    suffix = " [tag index]" if tool.endswith(INDEXED) else ""
    if _kind(tool) == "prowler":
        return str(run.get("version") or "Prowler") + suffix
    if run.get("read_timeout_override_s"):
        return f"outsidein (read timeout {run['read_timeout_override_s']}s)" + suffix
    return "outsidein" + suffix


def print_report(result: dict[str, Any]) -> None:
    runs: dict[str, dict[str, Any]] = result["runs"]
    tools = list(runs)
    log()
    log(f"== Figures ({result['scale']} scale, {result['machine']['cpus']} CPUs, account {result['account_id']}, "
        f"outsidein at {result['outsidein_commit']}) ==")
    rows = [["", *(_label(t, runs[t]) for t in tools)]]

    def line(label: str, key: str) -> list[str]:
        return [label, *("-" if runs[t].get(key) is None else str(runs[t][key]) for t in tools)]

    rows.append(line("process wall time (s)", "wall_s"))
    rows.append(line("  collection (s)", "collect_s"))
    rows.append(line("  evaluation (s)", "evaluate_s"))
    rows.append(line("  Prowler's 'scan' phase (s)", "scan_phase_s"))
    rows.append(line("peak RSS (MiB)", "peak_rss_mib"))
    rows.append(["HTTP requests (counted by the server)", *(str(runs[t]["server_requests"]["total"]) for t in tools)])
    services = sorted({s for t in tools for s in runs[t]["server_requests"]["by_service"]})
    for service in services:
        rows.append([f"  {service}", *(str(runs[t]["server_requests"]["by_service"].get(service, 0)) for t in tools)])
    rows.append(["failed findings", *(str(len(_failures(_kind(t), runs[t])))
                                      for t in tools)])
    found = result["planted_found"]
    rows.append(["planted problems found", *(f"{found[t]}/{found['total']}" for t in tools)])
    log(_table(rows))
    for suffix, emulator in (("", "stock moto"), (INDEXED, "moto with the EC2 tag index")):
        ours, theirs = runs.get("outsidein" + suffix), runs.get("prowler" + suffix)
        if ours and theirs:
            log(f"on {emulator}: Prowler's wall time / outsidein's = {theirs['wall_s'] / ours['wall_s']:.1f}x, "
                f"peak memory {theirs['peak_rss_mib'] / ours['peak_rss_mib']:.1f}x")
    for tool in tools:
        run = runs[tool]
        if _kind(tool) == "prowler":
            continue
        log()
        log(f"{_label(tool, run)}: its own API call count {run['api_calls_total']} {run['api_calls']}")
        aws_pages = sum(x["pages_on_aws"] for x in run["pages"])
        log(f"  {len(run['pages'])} paginated reads = {aws_pages} pages on AWS (PageSize honoured; moto ignores it "
            f"for some), plus {run['per_resource_calls']} per-resource reads (per-bucket S3 reads: S3 has no batch "
            "read of bucket policies, ACLs or public access blocks)")
        log(f"  inventory seen: {run['inventory']}")
        if run["read_errors"]:
            log(f"  reads that failed: {run['read_errors']}")
    log()
    log("== Planted problems ==")
    rows = [["L", "planted problem", "resource", *(_label(t, runs[t]) for t in tools)]]
    for r in result["planted"]:
        rows.append([str(r["layer"]), r["kind"], r["resource"].split(":")[-1],
                     *(", ".join(r[t]) or "MISSED" for t in tools)])
    log(_table(rows))
    log()
    for tool, extra in result["unplanted_failures"].items():
        top = ", ".join(f"{k} {v}" for k, v in list(extra.items())[:10])
        log(f"{_label(tool, runs[tool])}: {sum(extra.values())} failed findings outside the planted list"
            f"{': ' + top if top else ''}{' ...' if len(extra) > 10 else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seed one tenth of the full account (smoke run)")
    parser.add_argument("--skip-prowler", action="store_true", help="measure outsidein only")
    parser.add_argument("--prowler-venv", type=Path, default=None,
                        help="Prowler's virtualenv ($PROWLER_VENV; default /opt/prowler-venv if present, "
                             "else bench/.prowler-venv, created when missing)")
    parser.add_argument("--outsidein-read-timeout", type=int, default=None, metavar="SECONDS",
                        help="also run outsidein with the scope's read_timeout set to SECONDS ("
                             "override; moto answers DescribeSecurityGroups in one unpaginated response)")
    parser.add_argument("--emulator", choices=("stock", "indexed", "both"), default="both",
                        help="measure on moto as released, with the EC2 tag index (see moto_counting_server.py), "
                             "or both in turn on the same seeded account (default)")
    parser.add_argument("--keep-prowler-output", action="store_true", help="keep Prowler's OCSF output directory")
    parser.add_argument("--workers", type=int, default=8, help="seeding threads")
    parser.add_argument("--outsidein-child", nargs=2, metavar=("ENDPOINT", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--child-read-timeout", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.outsidein_child:
        outsidein_child(*args.outsidein_child, read_timeout=args.child_read_timeout)
        return

    scale = "small" if args.small else "full"
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = RESULTS / f"{scale}-{stamp}"
    workdir.mkdir()
    venv = (args.prowler_venv or default_prowler_venv()).resolve()
    prowler_version = None if args.skip_prowler else ensure_prowler(venv)
    begin = time.perf_counter()
    runs: dict[str, dict[str, Any]] = {}

    server = CountingMoto(workdir / "moto-server.log").start()
    try:
        log(f"moto server (with request counter) at {server.url}; seeding the {scale} account "
            "(tag index on: seeding is not measured) ...")
        # Seeding runs in its own process so that this parent stays small: a child's peak RSS (from wait4)
        # starts at its parent's RSS at fork time.
        seed_json = workdir / "seeded.json"
        subprocess.run([sys.executable, str(BENCH / "seed_large.py"), "--endpoint", server.url, "--json",
                        str(seed_json), "--workers", str(args.workers), *(["--small"] if args.small else [])],
                       check=True)
        account = json.loads(seed_json.read_text(encoding="utf-8"))
        log(f"seeded in {account['seconds']}s with {account['api_calls']} API calls (not part of the figures)")
        hosts_note = ensure_loopback_name(f"{account['account_id']}.127.0.0.1")
        log(hosts_note)

        modes = {"stock": [False], "indexed": [True], "both": [False, True]}[args.emulator]
        for indexed in modes:
            server.set_tag_index(indexed)
            suffix = INDEXED if indexed else ""
            log(f"-- emulator: moto {'with the EC2 tag index' if indexed else 'as released (stock)'}")
            variants: list[int | None] = [None]
            if args.outsidein_read_timeout:
                variants.append(args.outsidein_read_timeout)
            for read_timeout in variants:
                key = (f"outsidein_rt{read_timeout}" if read_timeout else "outsidein") + suffix
                log(f"running outsidein{f' (read timeout {read_timeout}s)' if read_timeout else ''} "
                    "(collect + evaluate) in a child process ...")
                run = runs[key] = run_outsidein(server, workdir, read_timeout, suffix)
                log(f"  {run['wall_s']}s wall (collect {run['collect_s']}s, evaluate {run['evaluate_s']}s), "
                    f"{run['peak_rss_mib']} MiB, {run['server_requests']['total']} requests "
                    f"(started after {run['server_idle_wait_s']}s waiting for the server to be idle)")

            if not args.skip_prowler:
                log(f"running {prowler_version} from {venv} ...")
                run = runs["prowler" + suffix] = run_prowler(server, venv, workdir, args.keep_prowler_output, suffix)
                run["version"] = prowler_version
                log(f"  {run['wall_s']}s wall, {run['peak_rss_mib']} MiB, {run['server_requests']['total']} "
                    f"requests (started after {run['server_idle_wait_s']}s waiting for the server to be idle)")
    finally:
        server.stop()

    rows, extra = match(account["planted"], runs)
    result: dict[str, Any] = {
        "scale": scale,
        "started": stamp,
        "command": " ".join(["python bench/run_bench.py", *sys.argv[1:]]),
        "bench_wall_s": round(time.perf_counter() - begin, 1),
        "outsidein_commit": _git_commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "cpu_model": _cpu_model()},
        "account_id": account["account_id"],
        "seed": {"seconds": account["seconds"], "api_calls": account["api_calls"], "counts": account["counts"]},
        "hosts": hosts_note,
        "runs": runs,
        "planted": rows,
        "planted_found": {"total": len(rows), **{t: sum(1 for r in rows if r[t]) for t in runs}},
        "unplanted_failures": extra,
    }
    print_report(result)
    for key, run in runs.items():
        fails = run.pop("fails", None) if _kind(key) == "prowler" else None
        if fails is not None:
            (workdir / f"{key}-fails.json").write_text(json.dumps(fails, indent=0), encoding="utf-8")
    out = RESULTS / f"bench-{scale}-{stamp}.json"
    out.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    log()
    log(f"result: {out}  (logs, outsidein's and Prowler's failed findings: {workdir})")
    log(f"whole benchmark: {result['bench_wall_s']}s")


def _git_commit() -> str:
    """The commit outsidein was measured at (with '+dirty' if src/ has local changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
