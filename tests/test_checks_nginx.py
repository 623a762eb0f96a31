"""Layer 3 against real NGINX processes: a weak and a hardened configuration, served on loopback ports.

Each configuration under tests/nginx/ is rendered into tmp_path (its own prefix, pid, logs and temp paths),
started with the system nginx, collected with ``collect_nginx`` (files, ``nginx -t``, a live HEAD) and
evaluated like a user would: findings by check id, severity and ``path:line``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from outsidein.audit import AuditReport, evaluate
from outsidein.checks.registry import all_checks
from outsidein.evidence import NginxEvidence, Record, Snapshot
from outsidein.models import Severity, Status
from outsidein.nginx.collect import collect_nginx, find_nginx
from outsidein.nginx.config import parse_nginx
from tests.servers import free_port

FIXTURES = Path(__file__).parent / "nginx"
NGINX = find_nginx("nginx")
NGINX_CHECKS = sorted(c.meta.id for c in all_checks() if c.meta.layer == 3)
COLLECTED = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

if NGINX is None:  # a missing nginx is a broken test machine, not a reason to pass
    pytest.fail("nginx is not installed: run scripts/system-deps (apt-get install nginx-light)", pytrace=False)


def make_cert(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Server:
    """One configuration rendered into its own prefix; ``start`` runs nginx in the foreground."""

    def __init__(self, name: str, root: Path) -> None:
        self.prefix = root / name
        self.port, self.tls_port = free_port(), free_port()
        (self.prefix / "tmp").mkdir(parents=True)
        (self.prefix / "data").mkdir()
        cert, key = make_cert(self.prefix)
        tokens = {"@PREFIX@": str(self.prefix), "@PORT@": str(self.port), "@TLS_PORT@": str(self.tls_port),
                  "@CERT@": str(cert), "@KEY@": str(key)}
        for src in (FIXTURES / name).rglob("*.conf"):
            text = src.read_text()
            for token, value in tokens.items():
                text = text.replace(token, value)
            dest = self.prefix / src.relative_to(FIXTURES / name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
        self.conf = self.prefix / "nginx.conf"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert NGINX is not None
        self.process = subprocess.Popen([NGINX, "-c", str(self.conf), "-g", "daemon off;"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited: {stderr}")
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def line(self, relative: str, text: str) -> str:
        """``path:line`` of the first line of a rendered file containing ``text``."""
        path = self.prefix / relative
        for number, content in enumerate(path.read_text().splitlines(), 1):
            if text in content:
                return f"{path}:{number}"
        raise AssertionError(f"{text!r} not in {path}")


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server("weak", tmp_path_factory.mktemp("nginx"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server("hardened", tmp_path_factory.mktemp("nginx"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def weak_evidence(weak: Server) -> NginxEvidence:
    return collect_nginx("weak", weak.prefix, environment="prod", url=f"http://127.0.0.1:{weak.port}/")


@pytest.fixture(scope="module")
def weak_report(weak_evidence: NginxEvidence) -> AuditReport:
    return evaluate(Snapshot(collected_at=COLLECTED, nginx=[weak_evidence]))


def nginx_results(report: AuditReport) -> dict[str, list[tuple[Status, str, str, Severity | None]]]:
    out: dict[str, list[tuple[Status, str, str, Severity | None]]] = {cid: [] for cid in NGINX_CHECKS}
    for r in report.results:
        if r.check_id in out:
            out[r.check_id].append((r.status, r.resource, r.detail or r.reason, r.severity))
    return out


def finding(report: AuditReport, check_id: str, resource: str, contains: str) -> tuple[Severity, str]:
    hits = [f for f in report.findings if f.check_id == check_id and f.resource == resource and contains in f.detail]
    details = [(f.resource, f.detail) for f in report.findings if f.check_id == check_id]
    assert hits, f"no {check_id} finding at {resource} with {contains!r}; got {details}"
    return hits[0].severity, hits[0].detail


# -- the weak configuration: every check fails, at the right place, with the playbook's severity -----------

def test_collect_reads_main_file_and_included_globs(weak: Server, weak_evidence: NginxEvidence) -> None:
    assert weak_evidence.main == str(weak.conf)
    assert set(weak_evidence.files) == {str(weak.conf), str(weak.prefix / "conf.d/app.conf"),
                                        str(weak.prefix / "conf.d/tls.conf")}
    assert weak_evidence.syntax_test is not None and weak_evidence.syntax_test.data["exit_code"] == 0
    assert "nginx version: nginx/" in weak_evidence.syntax_test.data["output"]
    probe = weak_evidence.probe
    assert probe is not None and probe.ok and probe.data["status"] == 404
    assert ["Server", "nginx/1.22.1"] in probe.data["headers"] or any(
        k.lower() == "server" and v.startswith("nginx/") for k, v in probe.data["headers"])


def test_every_nginx_check_fails_on_the_weak_config(weak_report: AuditReport) -> None:
    results = nginx_results(weak_report)
    missing = [cid for cid, rs in results.items() if cid != "nginx-config-test"
               and not any(status is Status.FAIL for status, *_ in rs)]
    assert missing == []


def test_rate_limit_on_login_locations(weak: Server, weak_report: AuditReport) -> None:
    app = "conf.d/app.conf"
    sev, _ = finding(weak_report, "nginx-login-rate-limit", weak.line(app, "location /api/auth/login"),
                     "no limit_req on login location /api/auth/login")
    assert sev is Severity.CRITICAL
    sev, detail = finding(weak_report, "nginx-login-rate-limit", weak.line(app, "limit_req zone=loose"),
                          "zone loose allows 30r/m")
    assert sev is Severity.CRITICAL and "/api/token" in detail


def test_version_disclosure_and_body_size_and_timeouts(weak: Server, weak_report: AuditReport) -> None:
    main, app = "nginx.conf", "conf.d/app.conf"
    assert finding(weak_report, "nginx-server-tokens", weak.line(main, "server_tokens on"),
                   "server_tokens on")[0] is Severity.MEDIUM
    sev, detail = finding(weak_report, "nginx-client-max-body-size", weak.line(main, "client_max_body_size 0"),
                          "client_max_body_size 0")
    assert sev is Severity.HIGH and "unlimited" in detail
    assert finding(weak_report, "nginx-proxy-timeouts", weak.line(app, "proxy_read_timeout 120s"),
                   "proxy_read_timeout 120s is above 30s")[0] is Severity.MEDIUM
    finding(weak_report, "nginx-proxy-timeouts", weak.line(app, "location /api/ {"),
            "proxy_connect_timeout not set (nginx default 60s")
    finding(weak_report, "nginx-slowloris-timeouts", weak.line(main, "keepalive_timeout 120s"),
            "keepalive_timeout 120s is above 10s")
    finding(weak_report, "nginx-slowloris-timeouts", weak.line(main, "http {"),
            "client_header_timeout not set (nginx default 60s")
    finding(weak_report, "nginx-proxy-header-leak", weak.line(app, "location /php/"),
            "no fastcgi_hide_header X-Powered-By")


def test_security_headers_with_nginx_inheritance(weak: Server, weak_report: AuditReport) -> None:
    app, tls = "conf.d/app.conf", "conf.d/tls.conf"
    assert finding(weak_report, "nginx-hsts", weak.line(tls, "Strict-Transport-Security"),
                   "max-age=3600 is below 31536000")[0] is Severity.HIGH
    finding(weak_report, "nginx-x-frame-options", weak.line(app, "X-Frame-Options"), "ALLOW-FROM")
    # add_header in /api/ replaces the server's: X-Frame-Options is gone there
    sev, detail = finding(weak_report, "nginx-x-frame-options", weak.line(app, "location /api/ {"),
                          "X-Frame-Options not set")
    assert sev is Severity.MEDIUM and "drops the inherited X-Frame-Options" in detail
    assert finding(weak_report, "nginx-add-header-redefinition", weak.line(app, "location /api/ {"),
                   "drops inherited X-Content-Type-Options, X-Frame-Options")[0] is Severity.MEDIUM
    assert finding(weak_report, "nginx-security-headers", weak.line(app, "server {"),
                   "Content-Security-Policy not set")[0] is Severity.MEDIUM
    assert finding(weak_report, "nginx-security-headers", weak.line(app, "server {"),
                   "Referrer-Policy not set")[0] is Severity.LOW
    finding(weak_report, "nginx-header-not-always", weak.line(app, "X-Frame-Options"), "without always")


def test_tls_settings(weak: Server, weak_report: AuditReport) -> None:
    tls = "conf.d/tls.conf"
    assert finding(weak_report, "nginx-ssl-protocols", weak.line(tls, "ssl_protocols"),
                   "ssl_protocols enables TLSv1 TLSv1.1")[0] is Severity.HIGH
    _, detail = finding(weak_report, "nginx-ssl-ciphers", weak.line(tls, "ssl_ciphers"), "RC4")
    assert "3DES" in detail
    assert finding(weak_report, "nginx-ssl-stapling", weak.line(tls, "ssl_stapling off"),
                   "ssl_stapling off")[0] is Severity.LOW


def test_gixy_style_traps(weak: Server, weak_report: AuditReport) -> None:
    app = "conf.d/app.conf"
    assert finding(weak_report, "nginx-alias-traversal", weak.line(app, "alias"),
                   "location /files has no trailing slash")[0] is Severity.HIGH
    assert finding(weak_report, "nginx-host-spoofing", weak.line(app, "proxy_set_header Host"),
                   "$http_host")[0] is Severity.HIGH
    assert finding(weak_report, "nginx-host-spoofing", weak.line(app, "return 302"),
                   "redirect host built from $http_host")[0] is Severity.MEDIUM
    finding(weak_report, "nginx-http-splitting", weak.line(app, "X-Original-Uri"), "$uri, which can contain LF")
    finding(weak_report, "nginx-ssrf", weak.line(app, "$arg_target"), "$arg_target")
    sev, detail = finding(weak_report, "nginx-origin-validation", weak.line(app, "$http_origin ~*"), "accepts")
    assert sev is Severity.HIGH and "evil" in detail
    finding(weak_report, "nginx-origin-validation", weak.line(app, "Access-Control-Allow-Origin"), "reflects")
    finding(weak_report, "nginx-valid-referers", weak.line(app, "valid_referers"), "none and blocked")


def test_live_response_contradicts_the_config(weak: Server, weak_report: AuditReport) -> None:
    url = f"http://127.0.0.1:{weak.port}/"
    finding(weak_report, "nginx-live-response", url, "Server header discloses the version: nginx/")
    # X-Frame-Options is configured without `always`, and HEAD / is a 404: the header never comes
    sev, detail = finding(weak_report, "nginx-live-response", url, "X-Frame-Options is configured at")
    assert sev is Severity.MEDIUM and "(HTTP 404)" in detail
    assert finding(weak_report, "nginx-live-response", url,
                   "Permissions-Policy missing from the live response")[0] is Severity.LOW


# -- the hardened configuration: nothing to report, and everything assessed ----------------------------

def test_hardened_config_passes_every_check(hardened: Server) -> None:
    evidence = collect_nginx("hardened", hardened.conf, url=f"https://127.0.0.1:{hardened.tls_port}/", verify=False)
    report = evaluate(Snapshot(collected_at=COLLECTED, nginx=[evidence]))
    results = nginx_results(report)
    assert [(f.check_id, f.resource, f.detail) for f in report.findings] == []
    assert {cid: [s for s, *_ in rs] for cid, rs in results.items()} == {cid: [Status.PASS] for cid in NGINX_CHECKS}
    layer3 = next(status for status in report.layers if status.layer.number == 3)
    assert layer3.status == "PASS"


def test_hardened_probe_sees_the_headers(hardened: Server) -> None:
    evidence = collect_nginx("hardened", hardened.conf, url=f"https://127.0.0.1:{hardened.tls_port}/", verify=False)
    assert evidence.probe is not None and evidence.probe.ok
    names = {k.lower() for k, _ in evidence.probe.data["headers"]}
    assert {"strict-transport-security", "x-frame-options", "content-security-policy"} <= names
    server_header = [v for k, v in evidence.probe.data["headers"] if k.lower() == "server"]
    assert server_header == ["nginx"]


# -- snapshots, broken configurations and missing evidence ----------------------------------------------

def test_snapshot_round_trip_gives_the_same_findings(weak_evidence: NginxEvidence, weak_report: AuditReport) -> None:
    data = json.loads(json.dumps(weak_evidence.to_json()))
    again = NginxEvidence.from_json(data, "snapshot")
    report = evaluate(Snapshot(collected_at=COLLECTED, nginx=[again]))
    assert [f.fingerprint for f in report.findings] == [f.fingerprint for f in weak_report.findings]
    assert len(report.findings) > 30


def test_unparsable_config_is_not_assessed_with_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    (tmp_path / "conf.d").mkdir()
    conf.write_text("events {}\nhttp {\n    include conf.d/*.conf;\n}\n")
    (tmp_path / "conf.d" / "broken.conf").write_text("server {\n    listen 8080;\n    location / {\n}\n")
    evidence = collect_nginx("broken", conf)
    report = evaluate(Snapshot(collected_at=COLLECTED, nginx=[evidence]))
    results = nginx_results(report)
    broken = tmp_path / "conf.d" / "broken.conf"
    for cid in NGINX_CHECKS:
        if cid in ("nginx-config-test", "nginx-live-response"):
            continue
        [(status, resource, reason, _)] = results[cid]
        assert status is Status.NOT_ASSESSED and resource == "broken"
        assert f"{broken}:4" in reason and "expecting" in reason
    [(status, resource, detail, _)] = results["nginx-config-test"]  # nginx counts the line after the last newline
    assert status is Status.FAIL and resource == f"{broken}:5" and "[emerg] unexpected end of file" in detail


def test_probe_not_in_scope_and_probe_refused(weak_evidence: NginxEvidence) -> None:
    no_url = NginxEvidence("weak", weak_evidence.main, files=weak_evidence.files, syntax_test=weak_evidence.syntax_test)
    check = next(c for c in all_checks() if c.meta.id == "nginx-live-response")
    [result] = list(check.run(parse_nginx(no_url)))
    assert result.status is Status.NOT_ASSESSED and result.reason == "no live URL in scope"
    refused = collect_nginx("weak", weak_evidence.main, url=f"http://127.0.0.1:{free_port()}/", timeout=2)
    assert refused.probe is not None and not refused.probe.ok
    [result] = list(check.run(parse_nginx(refused)))
    assert result.status is Status.NOT_ASSESSED and "ConnectError" in result.reason


def test_without_nginx_binary_the_syntax_test_is_not_assessed(weak: Server) -> None:
    evidence = collect_nginx("weak", weak.conf, nginx_binary="/nonexistent/nginx")
    assert evidence.syntax_test is None
    check = next(c for c in all_checks() if c.meta.id == "nginx-config-test")
    [result] = list(check.run(parse_nginx(evidence)))
    assert result.status is Status.NOT_ASSESSED and "nginx -t was not run" in result.reason


def test_unreadable_include_blocks_the_verdicts(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("http {\n    server_tokens off;\n    include site.conf;\n}\n")
    evidence = NginxEvidence("t", str(conf), files={str(conf): Record(data=conf.read_text()),
                                                     str(tmp_path / "site.conf"): Record(error="permission denied")})
    cfg = parse_nginx(evidence)
    assert cfg.missing["config"].startswith(f"configuration not parsable: cannot read {tmp_path}/site.conf "
                                            f"(included at {conf}:3): permission denied")


# -- gixy's traps and nginx's inheritance, case by case (parsed from text: the semantics, not the server) --

def audit_text(text: str, version: str = "") -> dict[str, list[Status]]:
    """Statuses per check for one configuration given as text (``version`` as ``nginx -v`` would print it)."""
    main = "/etc/nginx/nginx.conf"
    syntax = Record(data={"exit_code": 0, "output": f"nginx version: nginx/{version}" if version else ""})
    cfg = parse_nginx(NginxEvidence("t", main, files={main: Record(data=text)}, syntax_test=syntax))
    assert "config" not in cfg.missing, cfg.missing
    return {c.meta.id: [r.status for r in c.run(cfg)] for c in all_checks() if c.meta.layer == 3}


def site(body: str, http: str = "", listen: str = "443 ssl") -> str:
    return f"http {{\n{http}\nserver {{\nlisten {listen};\n{body}\n}}\n}}\n"


HEADERS = 'add_header X-Frame-Options DENY always; add_header X-Content-Type-Options nosniff always;'
CASES = [
    # add_header: a child's add_header replaces the parent's; merge (nginx 1.29.3+) keeps them; off is explicit
    ("nginx-add-header-redefinition", site(HEADERS + "location / { add_header Cache-Control no-store; }"), True),
    ("nginx-add-header-redefinition",
     site(HEADERS + "location / { add_header_inherit merge; add_header Cache-Control no-store; }"), False),
    ("nginx-add-header-redefinition",
     site(HEADERS + "location / { add_header_inherit off; add_header Cache-Control no-store; }"), False),
    ("nginx-add-header-redefinition", site(HEADERS + "location / { " + HEADERS + " add_header X-A a; }"), False),
    ("nginx-add-header-redefinition", site("location / {}", http=HEADERS.replace("always", "")), False),
    ("nginx-add-header-redefinition", site(HEADERS + "if ($arg_x) { add_header X-Debug 1; }"), True),
    ("nginx-x-frame-options", site("location / { add_header_inherit merge; add_header X-A a; }", http=HEADERS),
     False),
    ("nginx-x-frame-options", site("location / { add_header X-A a; }", http=HEADERS), True),
    ("nginx-x-frame-options", site("more_set_headers 'X-Frame-Options: DENY';"), False),
    ("nginx-x-frame-options", site("return 301 https://$host$request_uri;", listen="80"), False),
    # response splitting: $uri and captures are decoded; $request_uri is not; '.' never matches LF
    ("nginx-http-splitting", site("location ~ ^/r/(.*)$ { return 301 https://example.com/$1; }"), True),
    ("nginx-http-splitting", site("location ~ ^/r/([^\\r\\n]*)$ { return 301 https://example.com/$1; }"), False),
    ("nginx-http-splitting", site("location ~ ^/p/(.*)$ { proxy_pass http://127.0.0.1/$1; }"), False),
    ("nginx-http-splitting", site("location ~ ^/p/([^/]+)/ { proxy_pass http://127.0.0.1/$1; }"), True),
    ("nginx-http-splitting", site("add_header X-U $u;", http="map $host $u { default $uri; }"), True),
    ("nginx-http-splitting", site("add_header X-U $u;", http="map $host $u { default $request_uri; }"), False),
    ("nginx-http-splitting", site("rewrite ^/(?<p>.*)$ https://example.com/$p redirect;"), False),
    ("nginx-http-splitting", site("return 200 \"ok $uri\";"), False),
    # SSRF: client input in the upstream host, unless the location is internal or the value cannot be a host
    ("nginx-ssrf", site("location ~ /proxy/(.*)/(.*)$ { set $h $1; proxy_pass http://$h/$2; }"), True),
    ("nginx-ssrf", site("location /p/ { internal; proxy_pass $arg_x; }"), False),
    ("nginx-ssrf", site("location / { proxy_pass http://$m$arg_h; }", http='map $arg_k $m { default "/d/"; }'),
     False),
    ("nginx-ssrf", site("location / { proxy_pass http://$m$arg_h; }", http='map $arg_k $m { "a" "/a/"; }'), True),
    ("nginx-ssrf", site("location ~ /proxy/(.*)$ { proxy_pass http://static.example.com/$1; }"), False),
    # alias: prefix location without slash; regex captures that can start with '.'
    ("nginx-alias-traversal", site("location ~ /images(.*) { alias /app/static/$1; }"), True),
    ("nginx-alias-traversal", site("location ~ /images/(.*)$ { alias /app/static/$1; }"), False),
    ("nginx-alias-traversal", site("location ~ /images([^.]*) { alias /app/static/$1; }"), False),
    ("nginx-alias-traversal", site("location /files/ { alias /home; }"), False),
    ("nginx-alias-traversal", site("location /files { alias /home; }"), True),
    # origin / referer validation
    ("nginx-origin-validation", site('if ($http_origin ~ "^https://(www\\.)?example\\.com$") { set $c 1; }'), False),
    ("nginx-origin-validation", site('if ($http_referer !~ "^https://example.com/") { return 403; }'), True),
    ("nginx-origin-validation", site('if ($http_referer !~ "^https://example\\.com/") { return 403; }'), False),
    ("nginx-origin-validation", site('if ($http_referer !~ "^https://example\\.com") { return 403; }'), True),
    ("nginx-origin-validation", site("add_header Access-Control-Allow-Origin $o;", http='map $http_origin $o { '
                                     'default ""; ~^https://a\\.example\\.com$ $http_origin; }'), False),
    ("nginx-origin-validation", site("add_header Access-Control-Allow-Origin $o;",
                                     http="map $http_origin $o { default $http_origin; }"), True),
    ("nginx-origin-validation", site('if ($http_referrer ~ "^https://example\\.com/") { return 403; }'), True),
    # host spoofing, valid_referers
    ("nginx-host-spoofing", site("location / { proxy_set_header Host $host:$server_port; proxy_pass http://b; }"),
     False),
    ("nginx-host-spoofing", site("location / { set $h $http_x_forwarded_host; proxy_set_header Host $h; "
                                 "proxy_pass http://b; }"), True),
    ("nginx-valid-referers", site("valid_referers server_names *.none.com none.ru;"), False),
    ("nginx-valid-referers", site("valid_referers none server_names;"), True),
    # rate limiting
    ("nginx-login-rate-limit", site("location ~* ^/(login|signin)$ { limit_req zone=l; }",
                                    http="limit_req_zone $binary_remote_addr zone=l:1m rate=5r/m;"), False),
    ("nginx-login-rate-limit", site("location ~* ^/(login|signin)$ { limit_req zone=l; }",
                                    http="limit_req_zone $binary_remote_addr zone=l:1m rate=1r/s;"), True),
    ("nginx-login-rate-limit", site("limit_req zone=l; location /session/ { limit_req_dry_run on; }",
                                    http="limit_req_zone $binary_remote_addr zone=l:1m rate=5r/m;"), True),
    ("nginx-login-rate-limit", site("location /authors/ { }"), False),
    # sizes, versions and TLS defaults
    ("nginx-client-max-body-size", site("client_max_body_size 10m;"), False),
    ("nginx-client-max-body-size", site("location /up/ { client_max_body_size 1g; }"), True),
    ("nginx-ssl-protocols", site("location / {}"), True),  # version unknown: nginx < 1.23.4 enables TLSv1
    ("nginx-ssl-ciphers", site("ssl_protocols TLSv1.3; ssl_ciphers ALL;"), False),
    ("nginx-ssl-ciphers", site("ssl_ciphers ALL:!aNULL;"), True),
    ("nginx-proxy-header-leak", site("location / { more_clear_headers 'X-Powered-*'; proxy_pass http://b; }"),
     False),
    ("nginx-proxy-header-leak", site("proxy_hide_header X-Powered-By; location / { proxy_hide_header X-Debug; "
                                     "proxy_pass http://b; }"), True),
    ("nginx-server-tokens", site("location / {}", http="server_tokens build;"), True),
    ("nginx-slowloris-timeouts", site("location / { keepalive_timeout 0; }", http="client_body_timeout 10s; "
                                      "client_header_timeout 10s; keepalive_timeout 5s; send_timeout 10s;"), False),
]


@pytest.mark.parametrize(("check_id", "text", "flagged"), CASES)
def test_semantics(check_id: str, text: str, flagged: bool) -> None:
    statuses = audit_text(text)[check_id]
    assert (Status.FAIL in statuses) is flagged, statuses


def origin_findings(text: str) -> list[tuple[Severity | None, str]]:
    """(severity, detail) of each nginx-origin-validation FAIL for one configuration given as text."""
    main = "/etc/nginx/nginx.conf"
    cfg = parse_nginx(NginxEvidence("t", main, files={main: Record(data=text)}))
    check = next(c for c in all_checks() if c.meta.id == "nginx-origin-validation")
    return [(r.severity, r.detail) for r in check.run(cfg) if r.status is Status.FAIL]


def origin_if(header: str, pattern: str) -> str:
    return site(f'if ($http_{header} !~ "{pattern}") {{ return 403; }}')


# A regex no other site passes, but that is not anchored to scheme and host or that refuses what a browser
# really sends (an Origin is scheme://host[:port]; a Referer is a URL with a path, at least "/", and no
# fragment): LOW, naming what is wrong.
FRAGILE = [
    ("origin", r"^(www\.)?example\.com$", "no scheme (a browser's Origin always starts with one)"),
    ("origin", r"^([^!]+)?https://example\.com$", "lets any text precede the scheme: evilhttps://example.com"),
    ("origin", r"https://example\.com$", "is not anchored at the start (no ^): evilhttps://example.com"),
    ("origin", r"^https?://example\.com/", "rejects the legitimate origin https://example.com: `/` required "
                                           "after the host"),
    ("referer", r"^https://example\.com$", "rejects the legitimate referer https://example.com/: nothing "
                                           "allowed after the host"),
    ("referer", r"^https://example\.com/page#top$", "a fragment `#top` required"),
    ("referer", r"^https://example\.com/?cmd=1#x$", "`/?` makes the `/` optional"),
    ("referer", r"^([^:/]+)?https?://example\.com/", "lets any text precede the scheme"),
]


@pytest.mark.parametrize(("header", "pattern", "expected"), FRAGILE)
def test_origin_regex_without_bypass_but_fragile_is_low(header: str, pattern: str, expected: str) -> None:
    [(severity, detail)] = origin_findings(origin_if(header, pattern))
    assert severity is Severity.LOW
    assert expected in detail and f"no other site's {header} passes it" in detail, detail


@pytest.mark.parametrize(("header", "pattern"), [
    ("origin", r"^https://(www\.)?example\.com(:[0-9]+)?$"),
    ("origin", r"^(https?://)?example\.com$"),  # the scheme is optional, so the real Origin passes
    ("origin", r"^https://example\.com/?$"),
    ("origin", r"\.example\.com$"),  # any subdomain: unanchored, but nothing else can end that way
    ("referer", r"^https?://example\.com/"),
    ("referer", r"^https://example\.com(/|$)"),
    ("referer", r"^https?://example\.\.com$"),  # not a host name: no legitimate site to speak of
    ("referer", r"^android-app://com\.example\.app$"),  # not http(s): its URL may have no path
])
def test_origin_regex_anchored_to_scheme_and_host_stays_silent(header: str, pattern: str) -> None:
    assert origin_findings(origin_if(header, pattern)) == []


def test_origin_bypass_keeps_its_severity_and_map_entries_are_read() -> None:
    [(severity, detail)] = origin_findings(origin_if("origin", r"^https://example\.com"))
    assert severity is Severity.HIGH and detail.endswith("accepts https://example.com.evil.example.net")
    [(severity, detail)] = origin_findings(origin_if("referer", r"^https://example.com/"))
    assert severity is None and "accepts https://examplexcom/" in detail  # the check's MEDIUM
    text = site("add_header Access-Control-Allow-Origin $o;",
                http='map $http_origin $o { default ""; ~^example\\.com$ $http_origin; }')
    [(severity, detail)] = origin_findings(text)
    assert severity is Severity.LOW and "no scheme" in detail


def test_ssl_protocols_default_depends_on_the_nginx_version() -> None:
    text = site("location / {}")
    assert audit_text(text, "1.22.1")["nginx-ssl-protocols"] == [Status.FAIL]
    assert audit_text(text, "1.25.3")["nginx-ssl-protocols"] == [Status.PASS]


def test_include_globs_resolve_against_the_evidence_only(tmp_path: Path) -> None:
    main = "/srv/nginx/nginx.conf"
    files = {main: Record(data="http {\n    include sites/*.conf;\n    include /etc/absent/*.conf;\n}\n"),
             "/srv/nginx/sites/b.conf": Record(data="server { listen 81; }\n"),
             "/srv/nginx/sites/a.conf": Record(data="server { listen 80; }\n"),
             "/srv/nginx/sites/.hidden.conf": Record(data="server { listen 82; }\n"),
             "/srv/nginx/sites/x/deep.conf": Record(data="server { listen 83; }\n")}
    cfg = parse_nginx(NginxEvidence("t", main, files=files))
    assert cfg.missing.get("config") is None
    assert [s.where for s in cfg.servers()] == ["/srv/nginx/sites/a.conf:1", "/srv/nginx/sites/b.conf:1"]
    assert not os.path.exists("/srv/nginx/sites/a.conf")  # nothing was read from (or written to) the real path


def test_collect_follows_includes_after_comments(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n    # the sites\n    include conf.d/*.conf; # trailing\n"
                                         "    # mime types\n    include mime.types;\n}\n")
    (tmp_path / "conf.d" / "a.conf").write_text("server { listen 8080; }\n")
    evidence = collect_nginx("c", tmp_path, nginx_binary="/nonexistent/nginx")
    assert evidence.files[str(tmp_path / "conf.d" / "a.conf")].ok
    assert evidence.files[str(tmp_path / "mime.types")].error == "no such file"
    assert "mime.types (included at" in parse_nginx(evidence).missing["config"]


def test_nginx_t_failing_for_want_of_a_local_file_is_not_a_finding(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{\n    client_body_temp_path {tmp_path}/absent/body;\n}}\n")
    evidence = collect_nginx("copy", conf)
    assert evidence.syntax_test is not None and evidence.syntax_test.data["exit_code"] != 0
    check = next(c for c in all_checks() if c.meta.id == "nginx-config-test")
    [result] = list(check.run(parse_nginx(evidence)))
    assert result.status is Status.NOT_ASSESSED and "No such file or directory" in result.reason
