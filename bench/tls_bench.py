"""Benchmark outsidein's TLS layer (layer 4) against sslyze's own CLI and testssl.sh, in the same run.

The test servers of tests/servers.py are started here (NGINX valid/expiring/expired/self-signed/legacy,
PostgreSQL ssl on and off, Redis TLS and plaintext ports); every endpoint is scanned by
1. outsidein: ``collect_tls`` (sslyze API + plaintext probes) and the layer-4 checks, one endpoint at a time,
2. ``python -m sslyze`` (the venv's sslyze CLI, JSON output, the test CA as ``--certinfo_ca_file``),
3. ``testssl --quiet --warnings off --jsonfile`` (Debian's testssl.sh; ``-t postgres`` for PostgreSQL),
and the wall time per endpoint and what each tool flags are printed side by side. Results go to
bench/results/tls-<time>.json. Run as root (PostgreSQL runs as the postgres user):

    .venv/bin/python bench/tls_bench.py                 # every endpoint, every tool
    .venv/bin/python bench/tls_bench.py --no-testssl    # skip testssl.sh (minutes per endpoint)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Parsed a serial number")

from tests.servers import Pki, nginx_tls, postgres_server, redis_server  # noqa: E402

from outsidein.audit import evaluate  # noqa: E402
from outsidein.evidence import Snapshot  # noqa: E402
from outsidein.scope import TlsEndpointScope  # noqa: E402
from outsidein.tls.collect import collect_tls  # noqa: E402

TESTSSL_TIMEOUT = 120  # testssl.sh waits a long time on a port that never starts TLS


def outsidein_scan(endpoint: TlsEndpointScope, ca: Path) -> tuple[float, list[str]]:
    start = time.monotonic()
    evidence = collect_tls([endpoint], [], ca_file=ca)
    report = evaluate(Snapshot(collected_at=dt.datetime.now(dt.UTC), tls=evidence))
    seconds = time.monotonic() - start
    flags = sorted({f"{f.check_id}:{f.severity}" for f in report.findings})
    if not evidence[0].scan.ok:
        flags.append(f"NOT_ASSESSED: {evidence[0].scan.error}")
    return seconds, flags


def sslyze_scan(endpoint: TlsEndpointScope, protocol: str, ca: Path, tmp: Path) -> tuple[float, list[str]]:
    out = tmp / f"sslyze-{endpoint.endpoint.replace(':', '_')}.json"
    cmd = [sys.executable, "-m", "sslyze", f"--json_out={out}", f"--certinfo_ca_file={ca}", "--quiet"]
    if protocol == "postgres":
        cmd.append("--starttls=postgres")
    host, port = endpoint.host_port  # sslyze's syntax: name:port{ip} (the name is the SNI and the name checked)
    cmd.append(f"{endpoint.server_name}:{port}{{{host}}}" if endpoint.server_name else endpoint.endpoint)
    start = time.monotonic()
    subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    seconds = time.monotonic() - start
    flags: list[str] = []
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError):
        return seconds, ["(no JSON output)"]
    for server in data.get("server_scan_results", []):
        if server.get("scan_status") != "COMPLETED":
            flags.append(f"no connectivity: {str(server.get('connectivity_error_trace'))[:60]}")
            continue
        result = server["scan_result"]
        for key, label in (("ssl_2_0_cipher_suites", "SSLv2"), ("ssl_3_0_cipher_suites", "SSLv3"),
                           ("tls_1_0_cipher_suites", "TLSv1.0"), ("tls_1_1_cipher_suites", "TLSv1.1")):
            if ((result.get(key) or {}).get("result") or {}).get("accepted_cipher_suites"):
                flags.append(f"{label} accepted")
        cert = (result.get("certificate_info") or {}).get("result") or {}
        for dep in cert.get("certificate_deployments", [])[:1]:
            if not any(r.get("was_validation_successful") for r in dep.get("path_validation_results", [])):
                errors = {r.get("validation_error") for r in dep.get("path_validation_results", [])}
                flags.append(f"not trusted ({'; '.join(sorted(str(e) for e in errors))[:70]})")
            if dep.get("ocsp_response") is None:
                flags.append("no OCSP stapling")
    return seconds, flags


def testssl_scan(endpoint: TlsEndpointScope, protocol: str, tmp: Path) -> tuple[float, list[str]]:
    out = tmp / f"testssl-{endpoint.endpoint.replace(':', '_')}.json"
    cmd = ["testssl", "--quiet", "--warnings", "off", "--color", "0", "--jsonfile", str(out)]
    if protocol == "postgres":
        cmd += ["-t", "postgres"]
    cmd.append(endpoint.endpoint)
    start = time.monotonic()
    try:
        subprocess.run(cmd, capture_output=True, timeout=TESTSSL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return time.monotonic() - start, [f"(timed out after {TESTSSL_TIMEOUT}s)"]
    seconds = time.monotonic() - start
    try:
        entries = json.loads(out.read_text())
    except (OSError, ValueError):
        return seconds, ["(no JSON output)"]
    flags = sorted({f"{e['id']}:{e['severity']}" for e in entries
                    if e.get("severity") in ("CRITICAL", "HIGH", "MEDIUM") and e.get("id")})
    if not flags:
        fatal = [e.get("finding", "") for e in entries if e.get("severity") in ("FATAL", "WARN")]
        flags = [f"({f[:70]})" for f in fatal[:2]]
    return seconds, flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-testssl", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="outsidein-tls-bench-"))
    pki = Pki(root / "pki")
    servers = contextlib.ExitStack()
    rows: list[dict[str, Any]] = []
    try:
        nginx = servers.enter_context(nginx_tls(pki, root / "nginx"))
        pg_on = servers.enter_context(postgres_server(root, ssl=True, certs=pki.issue("pg")))
        pg_off = servers.enter_context(postgres_server(root, ssl=False))
        redis = servers.enter_context(redis_server(root, tls=True, certs=pki.issue("redis"), password=None))
        targets = [(f"nginx {v}", TlsEndpointScope(f"127.0.0.1:{p}", protocol="https", server_name="localhost",
                                                   external=True), "https") for v, p in nginx.ports.items()]
        targets += [("postgres ssl=on", TlsEndpointScope(f"127.0.0.1:{pg_on.port}", protocol="postgres",
                                                          server_name="localhost"), "postgres"),
                    ("postgres ssl=off", TlsEndpointScope(f"127.0.0.1:{pg_off.port}", protocol="postgres"),
                     "postgres"),
                    ("redis tls-port", TlsEndpointScope(f"127.0.0.1:{redis.tls_port}", protocol="redis",
                                                        server_name="localhost"), "redis"),
                    ("redis plaintext port", TlsEndpointScope(f"127.0.0.1:{redis.port}", protocol="redis"), "redis")]
        all_start = time.monotonic()
        collect_tls([t[1] for t in targets], [], ca_file=pki.ca_file)
        concurrent = time.monotonic() - all_start
        for label, endpoint, protocol in targets:
            row: dict[str, Any] = {"endpoint": label}
            row["outsidein"] = outsidein_scan(endpoint, pki.ca_file)
            row["sslyze"] = sslyze_scan(endpoint, protocol, pki.ca_file, root)
            if not args.no_testssl:
                row["testssl"] = testssl_scan(endpoint, protocol, root)
            rows.append(row)
            print(f"\n== {label} ({endpoint.endpoint})", flush=True)
            for tool in ("outsidein", "sslyze", "testssl"):
                if tool in row:
                    seconds, flags = row[tool]
                    print(f"  {tool:10} {seconds:7.2f}s  {', '.join(flags) or '-'}", flush=True)
        print(f"\noutsidein, all {len(targets)} endpoints concurrently: {concurrent:.2f}s")
        for tool in ("outsidein", "sslyze", "testssl"):
            times = [r[tool][0] for r in rows if tool in r]
            if times:
                print(f"{tool:10} total {sum(times):8.2f}s  mean {sum(times) / len(times):7.2f}s per endpoint")
        RESULTS = HERE / "results"
        RESULTS.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        (RESULTS / f"tls-{stamp}.json").write_text(json.dumps({
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "concurrent_seconds": concurrent, "rows": rows}, indent=1))
    finally:
        servers.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
