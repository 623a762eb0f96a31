"""Layer 12 against real NGINX: a hardened and a weak configuration in front of small Python upstreams.

The hardened NGINX rate-limits /login (5r/m, burst 3, 429), cuts slow clients at 5 s and keeps upstream
connections alive to a threaded upstream; the weak one has no limit, the 60 s default timeouts, 256 worker
connections and a serial upstream that takes 100 ms per request. Each runs all five scenarios once, with
short stages, so that every scenario passes on one and fails on the other for real. The guard tests send
nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from outsidein.audit import AuditReport, evaluate
from outsidein.cli import main
from outsidein.evidence import Snapshot, SourceEvidence
from outsidein.models import Severity, Status
from outsidein.scope import ScopeError, parse_scope
from outsidein.simulate import engine, wire
from outsidein.simulate.chart import render_chart
from outsidein.simulate.collect import GRACE_SECONDS, run_simulation
from outsidein.simulate.guard import SimulationRefused, authorize
from tests.servers import Pki, free_port, stop, wait_port, which
from tests.test_checks_nginx import Server

TODAY = dt.date(2026, 11, 28)
UPSTREAM = textwrap.dedent("""
    import sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
    port, delay, threaded = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if threaded else "HTTP/1.0"
        def log_message(self, *args): pass
        def reply(self, status, body):
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass
        def do_GET(self):
            time.sleep(delay)
            self.reply(200, b"ok")
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.reply(401, b'{"error":"bad credentials"}')
    cls = ThreadingHTTPServer if threaded else HTTPServer
    cls.request_queue_size = 1024
    cls.daemon_threads = True
    cls(("127.0.0.1", port), Handler).serve_forever()
""")


class Upstream:
    def __init__(self, delay: float, threaded: bool) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(self.port), str(delay),
                                      "1" if threaded else "0"])
        wait_port(self.port, proc=self.proc)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    fast, slow = Upstream(0.0, True), Upstream(0.1, False)
    yield fast, slow
    stop(fast.proc)
    stop(slow.proc)


def nginx(name: str, root: Path, fast: Upstream, slow: Upstream) -> Server:
    server = Server(name, root)  # layer 3's launcher: renders tests/nginx/<name> into its own prefix
    text = server.conf.read_text().replace("@SLOW_UPSTREAM@", str(slow.port)).replace("@UPSTREAM@", str(fast.port))
    server.conf.write_text(text)
    server.start()
    return server


def scope_data(port: int, **simulation: Any) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    load_stages = [{"seconds": 0.5, "vus": 10}, {"seconds": 1.5, "vus": 10}, {"seconds": 0.3, "vus": 0}]
    spike_stages = [{"seconds": 0.2, "vus": 60}, {"seconds": 1.5, "vus": 60}]
    block: dict[str, Any] = {
        "authorized_by": "Dana Reyes, CISO (SEC-1234)", "expires": dt.date(2026, 12, 31), "environment": "staging",
        "targets": [base], "max_requests": 20_000, "max_seconds": 60,
        "scenarios": [
            {"kind": "rate_limit", "name": "login", "url": f"{base}/login"},
            {"kind": "slowloris", "name": "slowloris", "url": f"{base}/", "connections": 300,
             "close_within": 6, "interval": 1},
            {"kind": "recovery", "name": "recovery", "url": f"{base}/api/health", "baseline_samples": 5,
             "attack_vus": 60, "attack_seconds": 2, "window": 1.5, "interval": 0.1, "timeout": 1},
            {"kind": "load", "name": "load", "url": f"{base}/api/health", "stages": load_stages},
            {"kind": "spike", "name": "spike", "url": f"{base}/api/health", "stages": spike_stages},
        ],
    }
    block.update(simulation)
    return {"simulation": block}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory,
         upstreams: tuple[Upstream, Upstream]) -> Iterator[dict[str, SourceEvidence]]:
    fast, slow = upstreams
    root = tmp_path_factory.mktemp("sim")
    servers = {"hardened": nginx("sim-hardened", root, fast, slow), "weak": nginx("sim-weak", root, fast, slow)}
    try:
        with ThreadPoolExecutor(2) as pool:  # both runs side by side: the file stays well under a minute
            futures = {name: pool.submit(run_simulation, parse_scope(scope_data(s.port)).simulation, "scope", TODAY)
                       for name, s in servers.items()}
            yield {name: f.result() for name, f in futures.items()}
    finally:
        for server in servers.values():
            server.stop()


def verdicts(report: AuditReport) -> dict[str, tuple[Status, str, Severity | None]]:
    out = {}
    for r in report.results:
        if r.check_id.startswith("sim-"):
            sev = next((f.severity for f in report.findings if f.check_id == r.check_id), None)
            out[r.check_id] = (r.status, r.detail or r.reason, sev)
    return out


def scenario(evidence: SourceEvidence, name: str) -> dict[str, Any]:
    return next(s for s in evidence.data.data["scenarios"] if s["name"] == name)


def test_hardened_passes_every_scenario(runs: dict[str, SourceEvidence]) -> None:
    report = evaluate(Snapshot(collected_at=dt.datetime.now(dt.UTC), simulations=[runs["hardened"]]))
    got = verdicts(report)
    assert got == {cid: (Status.PASS, "", None) for cid in ("sim-login-rate-limit", "sim-slowloris",
                   "sim-load-thresholds", "sim-spike-5xx", "sim-recovery")}, got
    assert scenario(runs["hardened"], "login")["result"]["first_429"] == 5  # 1 + burst 3, then 429
    slow = scenario(runs["hardened"], "slowloris")["result"]
    assert slow["opened"] == 300 and slow["closed_within"] == 300 and 4.5 < slow["close_p50_s"] < 6.5
    assert slow["probes"] >= 3 and slow["probes_failed"] == 0
    assert scenario(runs["hardened"], "recovery")["result"]["recovered_after_s"] is not None
    assert next(layer for layer in report.layers if layer.layer.number == 12).status == "PASS"


def test_weak_fails_every_scenario(runs: dict[str, SourceEvidence]) -> None:
    report = evaluate(Snapshot(collected_at=dt.datetime.now(dt.UTC), simulations=[runs["weak"]]))
    got = verdicts(report)
    assert {cid: v[0] for cid, v in got.items()} == dict.fromkeys(
        ("sim-login-rate-limit", "sim-slowloris", "sim-load-thresholds", "sim-spike-5xx", "sim-recovery"),
        Status.FAIL), got
    assert got["sim-login-rate-limit"][1] == "no 429 within 50 POST requests (responses: 401 x50)"
    assert got["sim-login-rate-limit"][2] is Severity.CRITICAL
    # NGINX keeps a reserve of connections (it closes the overflow at accept), so new visitors still got in:
    # the weak server fails on the timeout, not (here) on degradation.
    assert got["sim-slowloris"][1] == "idle partial connections not closed by the server within 6 s"
    assert got["sim-slowloris"][2] is Severity.HIGH
    assert "p95 latency at or above 500 ms" in got["sim-load-thresholds"][1]
    assert got["sim-spike-5xx"][1].startswith("5xx responses under the spike") and got["sim-spike-5xx"][2] is \
        Severity.HIGH
    assert got["sim-recovery"] == (Status.FAIL, "latency not back to baseline within 1.5 s of the attack's end",
                                   Severity.HIGH)
    assert scenario(runs["weak"], "slowloris")["result"]["still_open"] >= 200


def test_evidence_round_trips_and_charts(runs: dict[str, SourceEvidence], tmp_path: Path) -> None:
    snap = Snapshot(collected_at=dt.datetime.now(dt.UTC).replace(microsecond=0), simulations=list(runs.values()))
    snap.save(tmp_path / "snap.json")
    again = Snapshot.load(tmp_path / "snap.json")
    assert [f.fingerprint for f in evaluate(again).findings] == [f.fingerprint for f in evaluate(snap).findings]
    data = runs["weak"].data.data
    assert data["budget"]["used_requests"] <= 20_000 and data["authorization"]["environment"] == "staging"
    load = scenario(runs["weak"], "load")["result"]
    assert 0 < load["generator"]["busy"] < 1.5 and load["generator"]["cpu_s"] > 0
    series = load["series"]
    assert series and {"t", "requests", "p50_ms", "p95_ms", "vus"} <= set(series[0])
    page = render_chart(list(runs.values()))
    assert page.count("<svg") == 10 and "<script" not in page and "http-equiv" not in page


# -- the guard: refused before anything is sent ---------------------------------------------------------------

def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("resolved a host for a refused simulation")


@pytest.mark.parametrize(("change", "message"), [
    ({"expires": dt.date(2026, 11, 27)}, "expired on 2026-11-27"),
    ({"environment": "Production"}, "never run against production"),
    ({"environment": "prod"}, "never run against production"),
])
def test_guard_refuses_expired_and_production(change: dict[str, Any], message: str) -> None:
    sim = parse_scope(scope_data(8080, **change)).simulation
    with pytest.raises(SimulationRefused, match=message):
        authorize(sim, "outsidein.toml", TODAY, _no_dns)


def test_guard_refuses_without_a_block() -> None:
    with pytest.raises(SimulationRefused, match=r"outsidein.toml: no \[simulation\] block"):
        run_simulation(parse_scope({}).simulation, "outsidein.toml", TODAY, _no_dns)


def test_guard_refuses_a_target_outside_the_authorization() -> None:
    data = scope_data(8080)
    data["simulation"]["scenarios"] = [{"kind": "rate_limit", "name": "other-port",
                                        "url": "http://127.0.0.1:9090/login"}]
    outside = re.escape("http://127.0.0.1:9090/login is outside the authorized targets")
    with pytest.raises(SimulationRefused, match=outside):
        authorize(parse_scope(data).simulation, "outsidein.toml", TODAY, _no_dns)
    data["simulation"]["scenarios"] = [{"kind": "load", "url": "https://127.0.0.1:8080/"}]  # scheme differs
    with pytest.raises(SimulationRefused, match="outside the authorized targets"):
        authorize(parse_scope(data).simulation, "outsidein.toml", TODAY, _no_dns)


def test_guard_refuses_non_loopback_addresses_unless_authorized() -> None:
    data = scope_data(8080, targets=["http://staging.example.test:8080", "http://192.0.2.10"])
    data["simulation"]["scenarios"] = [{"kind": "load", "name": "a", "url": "http://staging.example.test:8080/"}]
    with pytest.raises(SimulationRefused, match=re.escape("resolves to 203.0.113.7: requests go only to loopback")):
        authorize(parse_scope(data).simulation, "s.toml", TODAY, lambda host, port: ["203.0.113.7"])
    data["simulation"]["scenarios"] = [{"kind": "load", "name": "b", "url": "http://192.0.2.10/health"}]
    with pytest.raises(SimulationRefused, match=re.escape("192.0.2.10 resolves to 192.0.2.10")):
        authorize(parse_scope(data).simulation, "s.toml", TODAY)  # a literal: the real resolver, no DNS
    data["simulation"]["allowed_addresses"] = ["192.0.2.0/28", "203.0.113.7"]
    data["simulation"]["scenarios"].append({"kind": "load", "name": "a",
                                            "url": "http://staging.example.test:8080/x"})
    endpoints = authorize(parse_scope(data).simulation, "s.toml", TODAY,
                          lambda host, port: [host if host[0].isdigit() else "203.0.113.7"])
    assert endpoints["b"].address == "192.0.2.10" and endpoints["a"].request_url == "http://203.0.113.7:8080/x"
    assert endpoints["a"].host_header == "staging.example.test:8080"


@pytest.mark.parametrize(("change", "message"), [
    ({"expires": "soon"}, r"s.toml: \[simulation\]: expires must be a date"),
    ({"authorized_by": ""}, r"s.toml: \[simulation\]: authorized_by is required"),
    ({"max_requests": 10_000_000}, r"max_requests must be between 1 and 200000"),
    ({"targets": ["ftp://x"]}, r"targets must be a non-empty list of http"),
    ({"scenarios": [{"kind": "slowloris", "url": "http://127.0.0.1/", "connections": 5000}]},
     r"#1: connections must be between 1 and 1000"),
    ({"scenarios": [{"kind": "rate_limit", "url": "http://127.0.0.1/", "stages": []}]},
     r"#1: unknown key 'stages' for a rate_limit scenario"),
    ({"scenarios": [{"kind": "load", "url": "http://127.0.0.1/", "stages": [{"seconds": 1, "vus": 900}]}]},
     r"stages\[0\].vus must be between 0 and 500"),
])
def test_scope_errors_name_the_file_and_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ScopeError, match=message):
        parse_scope(scope_data(8080, **change), Path("s.toml"))


def test_cli_refuses_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scope = tmp_path / "outsidein.toml"
    scope.write_text('[simulation]\nauthorized_by = "Dana"\nexpires = 2020-01-01\nenvironment = "staging"\n'
                     'targets = ["http://127.0.0.1:1"]\n[[simulation.scenarios]]\nkind = "load"\n'
                     'url = "http://127.0.0.1:1/"\n')
    assert main(["simulate", "-c", str(scope)]) == 2
    assert f"simulation refused: {scope}: [simulation] the authorization by Dana expired" in capsys.readouterr().err


def test_cli_simulate_save_chart_and_audit_from(tmp_path: Path, upstreams: tuple[Upstream, Upstream],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fast, _ = upstreams
    scope = tmp_path / "outsidein.toml"
    scope.write_text(f'[simulation]\nauthorized_by = "Dana"\nexpires = 2099-01-01\nenvironment = "test"\n'
                     f'targets = ["http://127.0.0.1:{fast.port}"]\nmax_requests = 500\n'
                     f'[[simulation.scenarios]]\nkind = "load"\nurl = "http://127.0.0.1:{fast.port}/"\n'
                     'stages = [{seconds = 0.5, vus = 3}]\n')
    snap, chart, out = tmp_path / "snap.json", tmp_path / "chart.html", tmp_path / "report.json"
    assert main(["simulate", "-c", str(scope), "--save", str(snap), "--chart", str(chart), "--format", "json",
                 "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "load (load):" in err and "p95" in err
    report = json.loads(out.read_text())
    assert "<svg" in chart.read_text()
    assert main(["audit", "--from", str(snap), "--format", "json", "--output", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["findings"] == report["findings"] == []


# -- the load generator's HTTP/1.1 client ---------------------------------------------------------------------

def _feed(parser: wire.ResponseParser, data: bytes, step: int) -> list[int]:
    done = []
    for i in range(0, len(data), step):
        status = parser.feed(data[i:i + step])
        while status is not None:  # one response per call: the rest stays buffered for the next
            done.append(status)
            parser.reset(False)
            status = parser.feed(b"")
    return done


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_parser_frames_responses_however_the_bytes_arrive(step: int) -> None:
    stream = (b"HTTP/1.1 100 Continue\r\n\r\n"
              b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!"
              b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n10\r\n"
              + b"z" * 16 + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
              b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
              b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n")
    parser = wire.ResponseParser()
    assert _feed(parser, stream, step) == [401, 200, 204, 429] and parser.keep_alive and parser.buf == b""
    parser.reset(False)  # HTTP/1.0 without a length: the body ends when the server closes
    assert _feed(parser, b"HTTP/1.0 503 Busy\r\nServer: x\r\n\r\nsome body", step) == []
    assert parser.eof() == 503 and not parser.keep_alive
    parser = wire.ResponseParser()
    parser.reset(True)  # HEAD: a Content-Length but no body
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nConnection: close\r\n\r\n") == 200
    assert not parser.keep_alive
    parser = wire.ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort") is None and parser.eof() is None
    for garbage in (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", b"HTTP/1.1 2xx OK\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
        with pytest.raises(wire.ProtocolError):
            wire.ResponseParser().feed(garbage)


def test_request_bytes_are_built_once_and_refuse_header_injection() -> None:
    data = scope_data(8080)
    data["simulation"]["scenarios"] = [{"kind": "rate_limit", "name": "login", "url": "http://127.0.0.1:8080/login",
                                        "headers": {"X-Test": "1"}}]
    sim = parse_scope(data).simulation
    assert sim is not None
    target = engine.Target.of(authorize(sim, "s.toml", TODAY)["login"], sim.scenarios[0])
    head, _, body = target.payload.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /login HTTP/1.1" and "Host: 127.0.0.1:8080" in lines and "X-Test: 1" in lines
    assert f"Content-Length: {len(body)}" in lines and body.startswith(b"{")
    with pytest.raises(ValueError, match="invalid header"):
        wire.request_bytes(target.endpoint, "GET", {"X-Evil": "a\r\nHost: elsewhere"}, None)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Path]]:
    """NGINX on http and https (a test CA's certificate for localhost): ``/`` 200, ``/gz`` chunked (gzip),
    ``/sni`` 421 unless the TLS SNI was "localhost"; at most 7 requests per connection, so clients reconnect."""
    nginx = which("nginx")
    folder = tmp_path_factory.mktemp("simweb")
    pki = Pki(folder / "pki")
    leaf = pki.issue("web")
    http, https = free_port(), free_port()
    (folder / "nginx.conf").write_text(
        f"pid {folder}/nginx.pid; error_log {folder}/error.log; worker_processes 1;"
        f" events {{ worker_connections 256; }} http {{ access_log off; client_body_temp_path {folder};"
        f" proxy_temp_path {folder}; fastcgi_temp_path {folder}; uwsgi_temp_path {folder};"
        f" scgi_temp_path {folder}; keepalive_requests 7;"
        f" server {{ listen 127.0.0.1:{http}; listen 127.0.0.1:{https} ssl; ssl_certificate {leaf.cert};"
        f" ssl_certificate_key {leaf.key}; default_type text/plain; location / {{ return 200 'ok'; }}"
        f" location /gz {{ gzip on; gzip_min_length 1; gzip_types text/plain; return 200 '{'a' * 300}'; }}"
        f" location /sni {{ if ($ssl_server_name != 'localhost') {{ return 421; }} return 200 'ok'; }} }} }}\n")
    proc = subprocess.Popen([nginx, "-c", str(folder / "nginx.conf"), "-g", "daemon off;"])
    try:
        wait_port(http, proc=proc)
        wait_port(https, proc=proc)
        yield http, https, pki.ca_file
    finally:
        stop(proc)


def _stages(url: str, budget: engine.Budget, vus: int = 4, seconds: float = 0.6,
            resolver: Any = None) -> tuple[list[engine.Sample], bool]:
    data = scope_data(8080, targets=[url])
    data["simulation"]["scenarios"] = [{"kind": "load", "name": "l", "url": url}]
    sim = parse_scope(data).simulation
    assert sim is not None
    endpoint = authorize(sim, "s.toml", TODAY, resolver or (lambda host, port: ["127.0.0.1"]))["l"]
    target = engine.Target.of(endpoint, sim.scenarios[0])
    samples, _, truncated = asyncio.run(engine.run_stages(target, [(0.05, vus), (seconds, vus)], budget,
                                                          timeout=2.0))
    return samples, truncated


def test_generator_keeps_alive_reconnects_and_stops_at_the_budget(web: tuple[int, int, Path]) -> None:
    http, _, _ = web
    samples, truncated = _stages(f"http://127.0.0.1:{http}/gz", engine.Budget(200_000, 60))
    assert len(samples) > 200 and {s.status for s in samples} == {200} and not truncated  # chunked, reconnecting
    budget = engine.Budget(150, 60)
    samples, truncated = _stages(f"http://127.0.0.1:{http}/", budget, vus=8, seconds=5)
    assert truncated and budget.used == len(samples) == 150 and {s.status for s in samples} == {200}
    budget = engine.Budget(10_000, 0.3)  # the run's deadline ends the stages early
    samples, truncated = _stages(f"http://127.0.0.1:{http}/", budget, vus=2, seconds=5)
    assert samples and max(s.t for s in samples) < 1.5


def test_generator_over_https_sends_sni_and_verifies_the_url_host(web: tuple[int, int, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, https, ca = web
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    wire.tls_context.cache_clear()
    try:
        samples, _ = _stages(f"https://localhost:{https}/sni", engine.Budget(10_000, 60), vus=3, seconds=0.4)
        assert len(samples) > 20 and {s.status for s in samples} == {200}  # SNI "localhost", to 127.0.0.1
        samples, _ = _stages(f"https://wrong.example.test:{https}/sni", engine.Budget(20, 60), vus=1)
        assert samples and {s.status for s in samples} == {0}  # the certificate does not name the URL's host
    finally:
        wire.tls_context.cache_clear()


def test_a_server_that_never_answers_cannot_stretch_the_run_past_its_time_limit() -> None:
    """Requests in flight at the deadline are cut off: the run ends within max_seconds plus a short grace,
    whatever the per-request timeout, and the scenario has no verdict (NOT_ASSESSED), never a PASS."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # accepts (the kernel completes the handshake) and never answers
    port = listener.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    data = scope_data(port, max_seconds=2, scenarios=[
        {"kind": "rate_limit", "name": "login", "url": f"{base}/login", "timeout": 60}])
    started = time.monotonic()
    try:
        evidence = run_simulation(parse_scope(data).simulation, "scope", TODAY)
    finally:
        listener.close()
    assert time.monotonic() - started < 2 + GRACE_SECONDS + 1.5
    (scenario,) = evidence.data.data["scenarios"]
    assert "cut off at the run's time limit" in scenario["error"]
