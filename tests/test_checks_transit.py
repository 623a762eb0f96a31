"""Layer 8: real PostgreSQL and Redis servers, real tcpdump on lo, real psql/redis-cli sessions, and the findings.

Protocols with no server here (HTTP, AMQP, SMTP, IMAP, FTP, MySQL, TLS 1.0) are checked on synthetic captures
written with dpkt by the builders of ``tests/pcaps.py``.
"""

from __future__ import annotations

import glob
import json
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from outsidein.checks.registry import CAPTURE, HOST, all_checks
from outsidein.evidence import CaptureEvidence, HostEvidence, Record
from outsidein.host.facts import parse_host
from outsidein.models import Result, Severity, Status
from outsidein.redact import mask
from outsidein.scope import CaptureScope, PostgresScope
from outsidein.transit.collect import collect_pg_stat_ssl, collect_transit
from outsidein.transit.facts import parse_capture
from tests.pcaps import http_basic, pg_cleartext_session, resp, tcp_flow, tls_session, write_pcap
from tests.servers import PASSWORD, Certs, Pki, Postgres, Redis, postgres_server, redis_server, tcpdump

CAPTURE_CHECKS = ("transit-plaintext-credentials", "transit-readable-sql", "transit-plaintext-service",
                  "transit-weak-tls")


def run(source: str, target: Any, check_id: str) -> list[Result]:
    checks = {c.meta.id: c for c in all_checks() if c.source == source}
    return list(checks[check_id].run(target))


def verdicts(evidence: CaptureEvidence) -> dict[str, list[Result]]:
    facts = parse_capture(evidence)
    return {cid: run(CAPTURE, facts, cid) for cid in (*CAPTURE_CHECKS, "transit-pg-ssl")}


def failures(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status is Status.FAIL]


def assert_no_secret(evidence: CaptureEvidence, found: dict[str, list[Result]], *secrets: str) -> None:
    text = json.dumps(evidence.to_json()) + json.dumps([[r.detail, r.reason] for rs in found.values() for r in rs])
    for secret in secrets:
        assert secret not in text


def analyse(pcap: Path) -> CaptureEvidence:
    (evidence,) = collect_transit([CaptureScope(name="t", pcap=pcap)], [])
    return evidence


# ------------------------------------------------------------------------------------------------ servers


@pytest.fixture(scope="module")
def tmp_module() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="transit-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def certs(tmp_module: Path) -> Certs:
    return Pki(tmp_module / "pki").issue("server")


@pytest.fixture(scope="module")
def pg_ssl(tmp_module: Path, certs: Certs) -> Iterator[Postgres]:
    with postgres_server(tmp_module, ssl=True, certs=certs, auth="scram-sha-256") as server:
        yield server


@pytest.fixture(scope="module")
def pg_plain(tmp_module: Path) -> Iterator[Postgres]:
    with postgres_server(tmp_module, ssl=False, auth="password") as server:
        yield server


@pytest.fixture(scope="module")
def redis_tls(tmp_module: Path, certs: Certs) -> Iterator[Redis]:
    with redis_server(tmp_module, tls=True, certs=certs) as server:
        yield server


# ------------------------------------------------------------------------------------------------ PostgreSQL


def test_plaintext_postgres_session_gives_credentials_and_sql(pg_plain: Postgres, tmp_path: Path) -> None:
    with tcpdump(tmp_path / "pg.pcap", f"tcp port {pg_plain.port}"):
        pg_plain.psql("SELECT 'customer-42' AS name, current_user")
    evidence = analyse(tmp_path / "pg.pcap")
    found = verdicts(evidence)
    resource = f"{tmp_path / 'pg.pcap'}:{pg_plain.port}"
    (cred,) = failures(found["transit-plaintext-credentials"])
    assert cred.resource == resource and "pg-password" in cred.detail and mask(PASSWORD) in cred.detail
    (sql,) = failures(found["transit-readable-sql"])
    assert "SELECT 'customer-42'" in sql.detail
    (service,) = failures(found["transit-plaintext-service"])
    assert "postgres in plaintext" in service.detail and "user=app" in service.detail
    assert found["transit-weak-tls"][0].status is Status.NOT_ASSESSED  # no TLS at all
    assert found["transit-pg-ssl"] == []  # not pg_stat_ssl evidence
    assert_no_secret(evidence, found, PASSWORD)


def test_tls_postgres_session_gives_nothing(pg_ssl: Postgres, tmp_path: Path) -> None:
    with tcpdump(tmp_path / "pg.pcap", f"tcp port {pg_ssl.port}"):
        pg_ssl.psql("SELECT 'customer-42'", sslmode="require")
    evidence = analyse(tmp_path / "pg.pcap")
    (flow,) = evidence.flows.data
    assert flow["encrypted"] and flow["starttls"] == "postgres" and flow["tls_version"] in ("TLSv1.2", "TLSv1.3")
    found = verdicts(evidence)
    for cid in CAPTURE_CHECKS:
        assert [r.status for r in found[cid]] == [Status.PASS], cid
    assert "customer-42" not in json.dumps(evidence.to_json())


def test_scram_login_in_plaintext_is_not_a_credential_but_fails_service(pg_ssl: Postgres, tmp_path: Path) -> None:
    with tcpdump(tmp_path / "pg.pcap", f"tcp port {pg_ssl.port}"):
        pg_ssl.psql("SELECT 1", sslmode="disable")
    found = verdicts(analyse(tmp_path / "pg.pcap"))
    assert not failures(found["transit-plaintext-credentials"])
    assert failures(found["transit-plaintext-service"]) and failures(found["transit-readable-sql"])


def test_pg_stat_ssl_live_connections(pg_ssl: Postgres) -> None:
    import psycopg

    with psycopg.connect(pg_ssl.dsn("require")), psycopg.connect(pg_ssl.dsn("disable")):
        evidence = collect_pg_stat_ssl(PostgresScope(name="db", dsn=pg_ssl.dsn("require")))
    assert evidence.kind == "pg_stat_ssl" and evidence.flows.ok, evidence.flows.error
    assert sorted(c["ssl"] for c in evidence.flows.data) == [False, True, True]  # + the audit's own connection
    results = run(CAPTURE, parse_capture(evidence), "transit-pg-ssl")
    (bad,) = failures(results)
    assert bad.resource == "db:127.0.0.1" and bad.severity is Severity.LOW  # loopback: never left the host
    assert PASSWORD not in json.dumps(evidence.to_json())
    # Only TLS connections: PASS.
    with psycopg.connect(pg_ssl.dsn("require")):
        ok = collect_pg_stat_ssl(PostgresScope(name="db", dsn=pg_ssl.dsn("require")))
    assert [r.status for r in run(CAPTURE, parse_capture(ok), "transit-pg-ssl")] == [Status.PASS]


def test_pg_stat_ssl_non_local_client_is_critical() -> None:
    row = {"server": "db:5432", "pid": 7, "client_addr": "10.0.3.4", "client_port": 40000, "ssl": False,
           "user": "app", "database": "prod", "application": "api"}
    evidence = CaptureEvidence(name="prod-db", kind="pg_stat_ssl", flows=Record(data=[row]))
    (bad,) = run(CAPTURE, parse_capture(evidence), "transit-pg-ssl")
    assert bad.status is Status.FAIL and bad.severity is None and bad.resource == "prod-db:10.0.3.4"


def test_pg_stat_ssl_refused_dsn_is_not_assessed_and_hides_the_password(pg_ssl: Postgres) -> None:
    wrong = "Wr0ngPassw0rd-plugh"
    dsn = f"host=127.0.0.1 port={pg_ssl.port} user=app dbname=appdb password={wrong} sslmode=require"
    evidence = collect_pg_stat_ssl(PostgresScope(name="db", dsn=dsn))
    assert evidence.flows.error and "password authentication failed" in evidence.flows.error
    assert wrong not in json.dumps(evidence.to_json())
    (result,) = run(CAPTURE, parse_capture(evidence), "transit-pg-ssl")
    assert result.status is Status.NOT_ASSESSED and wrong not in result.reason


# ------------------------------------------------------------------------------------------------ Redis


def test_plaintext_redis_session_gives_auth_and_commands(redis_tls: Redis, tmp_path: Path) -> None:
    with tcpdump(tmp_path / "redis.pcap", f"tcp port {redis_tls.port}"):
        redis_tls.cli("SET", "session:1", "card-4111")
        redis_tls.cli("GET", "session:1")
    evidence = analyse(tmp_path / "redis.pcap")
    found = verdicts(evidence)
    creds = failures(found["transit-plaintext-credentials"])
    assert len(creds) == 1 and "redis-auth" in creds[0].detail and mask(PASSWORD) in creds[0].detail
    assert creds[0].severity is None  # the check's CRITICAL
    (data,) = failures(found["transit-readable-sql"])
    assert "GET×1" in data.detail and "SET×1" in data.detail
    assert failures(found["transit-plaintext-service"])
    assert_no_secret(evidence, found, PASSWORD)


def test_tls_redis_session_gives_nothing(redis_tls: Redis, tmp_path: Path) -> None:
    assert redis_tls.tls_port
    with tcpdump(tmp_path / "redis.pcap", f"tcp port {redis_tls.tls_port}"):
        redis_tls.cli("SET", "session:1", "card-4111", tls=True)
    evidence = analyse(tmp_path / "redis.pcap")
    found = verdicts(evidence)
    for cid in CAPTURE_CHECKS:
        assert [r.status for r in found[cid]] == [Status.PASS], cid
    assert "card-4111" not in json.dumps(evidence.to_json())


def test_live_capture_runs_tcpdump_bounded_and_keeps_no_file(redis_tls: Redis) -> None:
    before = set(glob.glob(f"{tempfile.gettempdir()}/outsidein-capture-*"))
    scope = CaptureScope(name="live", interface="lo", port_filter=f"tcp port {redis_tls.port}", duration=2.5)
    out: list[CaptureEvidence] = []
    thread = threading.Thread(target=lambda: out.extend(collect_transit([scope], [])))
    start = time.monotonic()
    thread.start()
    time.sleep(1.0)
    redis_tls.cli("PING")
    thread.join(15)
    assert time.monotonic() - start < 10
    (evidence,) = out
    assert evidence.kind == "live" and evidence.name == "live:lo" and evidence.flows.ok, evidence.flows.error
    (cred,) = failures(run(CAPTURE, parse_capture(evidence), "transit-plaintext-credentials"))
    assert cred.resource == f"live:lo:{redis_tls.port}"
    assert set(glob.glob(f"{tempfile.gettempdir()}/outsidein-capture-*")) == before


def test_live_capture_on_a_missing_interface_is_an_error() -> None:
    scope = CaptureScope(name="x", interface="nosuchif0", duration=1)
    (evidence,) = collect_transit([scope], [])
    assert evidence.flows.error and "nosuchif0" in evidence.flows.error


# ------------------------------------------------------------------------------------------------ bad captures


@pytest.mark.parametrize("content", [b"this is not a capture at all", None])
def test_unreadable_capture_is_not_assessed_naming_the_file(tmp_path: Path, content: bytes | None) -> None:
    pcap = tmp_path / "broken.pcap"
    if content is not None:
        pcap.write_bytes(content)
    evidence = analyse(pcap)
    assert evidence.flows.error and str(pcap) in evidence.flows.error
    for cid in CAPTURE_CHECKS:
        (result,) = verdicts(evidence)[cid]
        assert result.status is Status.NOT_ASSESSED and str(pcap) in result.reason


def test_truncated_packet_names_the_packet(tmp_path: Path) -> None:
    pcap = tmp_path / "cut.pcap"
    write_pcap(pcap, tcp_flow(("10.0.0.1", 40000), ("10.0.0.2", 6379), [("c", resp(b"PING"))]))
    data = pcap.read_bytes()
    # Claim a huge captured length for the second packet record.
    first_len = struct.unpack_from("<I", data, 24 + 8)[0]
    second = 24 + 16 + first_len
    pcap.write_bytes(data[:second + 8] + struct.pack("<II", 10_000_000, 10_000_000) + data[second + 16:])
    evidence = analyse(pcap)
    if evidence.flows.ok:  # dpkt stops quietly at a short read: then the flow must still be there
        assert evidence.flows.data is not None
    else:
        assert str(pcap) in (evidence.flows.error or "")


def test_empty_capture_is_not_assessed(tmp_path: Path) -> None:
    pcap = tmp_path / "empty.pcap"
    write_pcap(pcap, iter([]))
    (result,) = verdicts(analyse(pcap))["transit-plaintext-credentials"]
    assert result.status is Status.NOT_ASSESSED


# ------------------------------------------------------------------------------------------------ synthetic protocols


def synthetic(tmp_path: Path, port: int, exchange: list[tuple[str, bytes]], syn: bool = True) -> CaptureEvidence:
    pcap = tmp_path / "synthetic.pcap"
    write_pcap(pcap, tcp_flow(("10.0.0.5", 51000), ("10.0.0.9", port), exchange, syn=syn))
    return analyse(pcap)


AMQP_START_OK = (b"AMQP\x00\x00\x09\x01", b"\x01\x00\x00\x00\x00\x00\x40\x00\x0a\x00\x0b\x00\x00\x00\x00\x05PLAIN"
                 b"\x00\x00\x00\x13\x00guest\x00" + PASSWORD[:12].encode() + b"\x05en_US\xce")
MYSQL_GREETING = b"\x0a8.0.36\x00" + b"\x01\x00\x00\x00" + b"abcdefgh\x00" + b"\xff\xf7" + b"\x21\x02\x00" + bytes(13)
MYSQL_LOGIN = struct.pack("<IIB", 0x000FA685, 1 << 24, 33) + bytes(23) + b"app\x00" + b"\x14" + bytes(range(20))


def _mysql_packet(seq: int, body: bytes) -> bytes:
    return struct.pack("<I", len(body))[:3] + bytes([seq]) + body


CASES: dict[str, tuple[int, list[tuple[str, bytes]], str]] = {
    "http-basic": (80, http_basic("admin", PASSWORD), "http-basic"),
    "http-bearer": (8080, [("c", f"GET / HTTP/1.1\r\nAuthorization: Bearer {PASSWORD}\r\n\r\n".encode())],
                    "http-bearer"),
    "http-form": (80, [("c", b"POST /login HTTP/1.1\r\nContent-Length: 40\r\n\r\nuser=admin&password="
                       + PASSWORD.encode())], "http-form-password"),
    "amqp": (5672, [("c", AMQP_START_OK[0]), ("s", b"\x01\x00\x00"), ("c", AMQP_START_OK[1])], "amqp-plain"),
    "smtp": (25, [("s", b"220 mail ESMTP\r\n"), ("c", b"EHLO me\r\n"), ("s", b"250 ok\r\n"),
                  ("c", b"AUTH LOGIN\r\n"), ("s", b"334 VXNlcm5hbWU6\r\n"), ("c", b"YWRtaW4=\r\n"),
                  ("s", b"334 UGFzc3dvcmQ6\r\n"),
                  ("c", __import__("base64").b64encode(PASSWORD.encode()) + b"\r\n")], "mail-auth"),
    "imap": (143, [("s", b"* OK IMAP ready\r\n"), ("c", f'a1 LOGIN admin "{PASSWORD}"\r\n'.encode())],
             "imap-login"),
    "ftp": (21, [("s", b"220 FTP\r\n"), ("c", b"USER admin\r\n"), ("s", b"331 pw\r\n"),
                 ("c", f"PASS {PASSWORD}\r\n".encode())], "ftp-pass"),
    "redis-inline": (6379, [("c", f"AUTH {PASSWORD}\r\n".encode())], "redis-auth"),
    "pg-cleartext": (5432, pg_cleartext_session("app", PASSWORD, "SELECT 1"), "pg-password"),
    "mysql": (3306, [("s", _mysql_packet(0, MYSQL_GREETING)), ("c", _mysql_packet(1, MYSQL_LOGIN)),
                     ("s", _mysql_packet(2, b"\x00\x00\x00\x02\x00\x00\x00")),
                     ("c", _mysql_packet(0, b"\x03SELECT * FROM cards"))], "mysql-login"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_synthetic_plaintext_credentials(tmp_path: Path, case: str) -> None:
    port, exchange, kind = CASES[case]
    evidence = synthetic(tmp_path, port, exchange, syn=case != "ftp")  # ftp: mid-flow capture, no SYN
    (flow,) = evidence.flows.data
    assert flow["server"] == f"10.0.0.9:{port}"
    found = verdicts(evidence)
    (cred,) = failures(found["transit-plaintext-credentials"])
    assert kind in cred.detail and cred.resource.endswith(f":{port}")
    assert_no_secret(evidence, found, PASSWORD, PASSWORD[:12] if case == "amqp" else PASSWORD)
    if case == "mysql":
        assert "SELECT * FROM cards" in failures(found["transit-readable-sql"])[0].detail


def test_synthetic_weak_and_strong_tls(tmp_path: Path) -> None:
    weak = verdicts(synthetic(tmp_path, 443, tls_session(0x0301, 5000)))
    (bad,) = failures(weak["transit-weak-tls"])
    assert "TLSv1.0" in bad.detail and bad.resource.endswith(":443")
    strong = verdicts(synthetic(tmp_path, 443, tls_session(0x0304, 5000)))
    assert [r.status for r in strong["transit-weak-tls"]] == [Status.PASS]
    assert not failures(strong["transit-plaintext-service"])


def test_smtp_starttls_is_encrypted(tmp_path: Path) -> None:
    hello = tls_session(0x0303, 4000)
    exchange = [("s", b"220 mail ESMTP\r\n"), ("c", b"EHLO me\r\n"), ("s", b"250-STARTTLS\r\n250 ok\r\n"),
                ("c", b"STARTTLS\r\n"), ("s", b"220 go ahead\r\n"), *hello]
    (flow,) = synthetic(tmp_path, 25, exchange).flows.data
    assert flow["encrypted"] and flow["starttls"] == "starttls" and flow["tls_version"] == "TLSv1.2"


# ------------------------------------------------------------------------------------------------ ss -tlnp


def _ss(ports: set[int]) -> str:
    out = subprocess.run(["ss", "-tlnp"], capture_output=True, text=True, check=True).stdout.splitlines()
    return "\n".join([out[0], *[line for line in out[1:] if any(f":{p} " in line for p in ports)]]) + "\n"


def _host(ss_text: str) -> Any:
    return parse_host(HostEvidence(name="web-1", address="local", commands={"ss-tlnp": Record(data=ss_text)}))


def test_listening_sockets_wildcard_and_redis_plaintext_port(tmp_module: Path, redis_tls: Redis,
                                                             pg_plain: Postgres) -> None:
    assert redis_tls.tls_port
    with redis_server(tmp_module, bind="0.0.0.0") as exposed:
        text = _ss({exposed.port, redis_tls.port, redis_tls.tls_port, pg_plain.port})
        facts = _host(text)
        both = _host(_ss({redis_tls.port, redis_tls.tls_port}))
    assert "redis-server" in text and "postgres" in text
    wild = failures(run(HOST, facts, "transit-listen-wildcard"))
    assert [r.resource for r in wild] == [f"web-1:{exposed.port}"]
    assert "all interfaces" in wild[0].detail and wild[0].severity is None
    (plain,) = failures(run(HOST, both, "transit-redis-plaintext-port"))
    assert str(redis_tls.port) in plain.detail and str(redis_tls.tls_port) in plain.detail
    # Loopback listeners and a single Redis port: both checks pass.
    ok = _host(_ss({pg_plain.port}))
    assert [r.status for r in run(HOST, ok, "transit-listen-wildcard")] == [Status.PASS]
    assert [r.status for r in run(HOST, ok, "transit-redis-plaintext-port")] == [Status.PASS]


def test_private_address_is_fine_public_is_not() -> None:
    text = ("State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
            'LISTEN 0 511 10.0.1.5:6379 0.0.0.0:* users:(("redis-server",pid=10,fd=6))\n'
            'LISTEN 0 511 34.120.1.7:5432 0.0.0.0:* users:(("postgres",pid=11,fd=6))\n'
            'LISTEN 0 511 [::]:27017 [::]:* users:(("mongod",pid=12,fd=6))\n')
    failed = failures(run(HOST, _host(text), "transit-listen-wildcard"))
    assert sorted(r.resource for r in failed) == ["web-1:27017", "web-1:5432"]


def test_missing_ss_is_not_assessed() -> None:
    facts = parse_host(HostEvidence(name="web-1", address="local", commands={"ss-tlnp": Record(error="denied")}))
    (result,) = run(HOST, facts, "transit-listen-wildcard")
    assert result.status is Status.NOT_ASSESSED
