"""Layer 4 on MySQL endpoints: real MariaDB servers (``tests/mysql_server.py``) scanned through ``collect_tls``
(greeting, SSLRequest, then TLS handshakes with nassl: ``outsidein.tls.mysql``) and judged by the layer-4 checks
on a snapshot, the way a user sees them: findings by check id, severity and ``host:port``.

- ``tls``: MariaDB with a certificate from the test CA (P-256, a year), TLS 1.2/1.3 only; scanned as
  ``127.0.0.1:port`` with the CA as its trust store, and again as ``localhost:port`` under a name its
  certificate does not cover, external, without the CA;
- ``legacy``: TLS 1.0 to 1.3 and ``ALL:@SECLEVEL=0`` (anonymous suites), serving a 1024-bit RSA leaf that
  expires in 3 days, issued by an intermediate that expired yesterday;
- ``plain``: no ``ssl_cert``, so no CLIENT_SSL in the greeting;
- a port nothing listens on, and a port where something that is not MySQL answers.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from outsidein.audit import AuditReport, evaluate
from outsidein.evidence import Snapshot, TlsEvidence
from outsidein.models import Severity, Status
from outsidein.scope import TlsEndpointScope
from outsidein.tls import mysql
from outsidein.tls.collect import CA_FILE_ENV, collect_tls
from tests.mysql_server import MariaDB, mariadb_server
from tests.servers import free_port

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")  # a Mozilla root in sslyze
SCAN_KEYS = {"scanned_at", "host", "port", "protocol", "server_name", "tls", "handshake_error", "plaintext",
             "plaintext_answer", "starttls_offered", "protocols", "chain", "certificate_error", "trust",
             "ocsp_stapled", "must_staple", "seconds"}  # the scan JSON of collect.py's docstring (sslyze's path)
EVERY_CHECK = ("tls-cert-expired", "tls-cert-expiring", "tls-chain-untrusted", "tls-hostname-mismatch",
               "tls-self-signed-external", "tls-legacy-protocol", "tls-weak-cipher", "tls-weak-key",
               "tls-sha1-signature", "tls-ocsp-stapling", "tls-plaintext-service")


# -- a small test PKI ------------------------------------------------------------------------------------

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn: str, key: Key, issuer: tuple[x509.Certificate, Key] | None, *, ca: bool, not_before: dt.datetime,
          not_after: dt.datetime) -> x509.Certificate:
    """A CA (``ca``) or a server certificate for localhost and 127.0.0.1, signed by ``issuer`` (None: itself)."""
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder().subject_name(_name(cn))
               .issuer_name(signer_cert.subject if signer_cert else _name(cn)).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if signer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        builder = (builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    return builder.sign(signer_key, hashes.SHA256())


def _write(folder: Path, name: str, certs: list[x509.Certificate], key: Key) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def make_pki(folder: Path) -> dict[str, Path]:
    """ca.pem; tls.pem/.key (a year, P-256); legacy.pem/.key (RSA-1024 leaf, 3 days, + an expired intermediate)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("outsidein mysql test CA", ca_key, None, ca=True, not_before=NOW - dt.timedelta(days=400),
               not_after=NOW + dt.timedelta(days=3650))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("localhost", leaf_key, (ca, ca_key), ca=False, not_before=NOW - dt.timedelta(days=1),
                 not_after=NOW + dt.timedelta(days=365))
    tls_cert, tls_key = _write(folder, "tls", [leaf], leaf_key)
    mid_key = ec.generate_private_key(ec.SECP256R1())
    mid = _cert("legacy intermediate", mid_key, (ca, ca_key), ca=True, not_before=NOW - dt.timedelta(days=400),
                not_after=NOW - dt.timedelta(days=1))
    old_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    old = _cert("localhost", old_key, (mid, mid_key), ca=False, not_before=NOW - dt.timedelta(days=30),
                not_after=NOW + dt.timedelta(days=3))
    legacy_cert, legacy_key = _write(folder, "legacy", [old, mid], old_key)
    return {"ca": folder / "ca.pem", "tls_cert": tls_cert, "tls_key": tls_key, "legacy_cert": legacy_cert,
            "legacy_key": legacy_key}


# -- the lab ---------------------------------------------------------------------------------------------

class NotMysql:
    """A loopback port where an HTTP-ish service answers every connection with a line and closes it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


@dataclass
class Lab:
    tls: MariaDB
    legacy: MariaDB
    plain: MariaDB
    junk_port: int
    dead_port: int
    pki: dict[str, Path]
    evidence: list[TlsEvidence]
    report: AuditReport

    @property
    def good(self) -> str:
        return f"127.0.0.1:{self.tls.port}"

    @property
    def alias(self) -> str:
        return f"localhost:{self.tls.port}"

    def scan(self, resource: str) -> dict[str, Any]:
        [ev] = [e for e in self.evidence if e.name == resource]
        assert ev.scan.data is not None, ev.scan.error
        return dict(ev.scan.data)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("mysql")
    pki = make_pki(root / "pki")
    junk = NotMysql()
    try:
        with pytest.MonkeyPatch.context() as env, \
                mariadb_server(root / "tls", cert=pki["tls_cert"], key=pki["tls_key"]) as tls, \
                mariadb_server(root / "legacy", cert=pki["legacy_cert"], key=pki["legacy_key"], legacy=True) as old, \
                mariadb_server(root / "plain") as plain:
            env.delenv(CA_FILE_ENV, raising=False)  # trust stores: only the good endpoint's ca_file
            dead = free_port()
            endpoints = [
                TlsEndpointScope(f"127.0.0.1:{tls.port}", protocol="mysql", server_name="localhost",
                                 environment="prod", ca_file=pki["ca"]),
                TlsEndpointScope(f"localhost:{tls.port}", protocol="mysql", server_name="db.example",
                                 environment="prod", external=True),
                TlsEndpointScope(f"127.0.0.1:{old.port}", protocol="mysql", server_name="localhost", external=True),
                TlsEndpointScope(f"127.0.0.1:{plain.port}", protocol="mysql"),
                TlsEndpointScope(f"127.0.0.1:{junk.port}", protocol="mysql"),
                TlsEndpointScope(f"127.0.0.1:{dead}", protocol="mysql"),
            ]
            evidence = collect_tls(endpoints, [])
            report = evaluate(Snapshot(collected_at=NOW, tls=evidence))
            yield Lab(tls, old, plain, junk.port, dead, pki, evidence, report)
    finally:
        junk.close()


def results(lab: Lab, check_id: str, resource: str) -> list[tuple[Status, Severity | None, str]]:
    return [(r.status, r.severity, r.detail or r.reason) for r in lab.report.results
            if r.check_id == check_id and r.resource == resource]


def failing(lab: Lab, check_id: str, resource: str) -> list[tuple[Severity, str]]:
    return [(f.severity, f.detail) for f in lab.report.findings if f.check_id == check_id and f.resource == resource]


def assert_pass(lab: Lab, check_id: str, resource: str) -> None:
    got = results(lab, check_id, resource)
    assert got and all(status is Status.PASS for status, *_ in got), (check_id, resource, got)


# -- TLS 1.2/1.3 with a certificate from the test CA -----------------------------------------------------

def test_tls_endpoint_passes_every_check(lab: Lab) -> None:
    for check_id in EVERY_CHECK:
        assert_pass(lab, check_id, lab.good)
    assert not [f for f in lab.report.findings if f.resource == lab.good]


def test_tls_endpoint_scan_has_the_sslyze_shape(lab: Lab) -> None:
    scan = lab.scan(lab.good)
    assert set(scan) == SCAN_KEYS
    assert scan["tls"] is True and scan["starttls_offered"] is True and scan["plaintext"] is False
    accepted = {name for name, p in scan["protocols"].items() if p["accepted"]}
    assert accepted == {"TLSv1.2", "TLSv1.3"}
    assert set(scan["protocols"]) == {"SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
    tls13 = {s["name"] for s in scan["protocols"]["TLSv1.3"]["suites"]}
    assert {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"} <= tls13
    tls12 = scan["protocols"]["TLSv1.2"]["suites"]
    assert "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" in {s["name"] for s in tls12}
    assert all(set(s) == {"name", "openssl_name", "key_size", "anonymous"} and not s["anonymous"] for s in tls12)
    [leaf] = [x509.load_pem_x509_certificate(p.encode()) for p in scan["chain"]]
    assert leaf.subject == _name("localhost")
    assert scan["trust"]["trusted"] is True and str(lab.pki["ca"]) in scan["trust"]["stores"]
    assert scan["ocsp_stapled"] is False and scan["must_staple"] is False


def test_certificate_judged_under_another_name_without_the_ca(lab: Lab) -> None:
    [(sev, detail)] = failing(lab, "tls-hostname-mismatch", lab.alias)
    assert sev is Severity.HIGH and detail == "db.example is not in the certificate's names (localhost, 127.0.0.1)"
    [(sev, detail)] = failing(lab, "tls-chain-untrusted", lab.alias)
    assert sev is Severity.HIGH and "issued by CN=outsidein mysql test CA" in detail  # external: HIGH
    assert failing(lab, "tls-ocsp-stapling", lab.alias) == [(Severity.LOW, "no OCSP response stapled to the handshake")]
    for check_id in ("tls-plaintext-service", "tls-legacy-protocol", "tls-weak-cipher", "tls-self-signed-external"):
        assert_pass(lab, check_id, lab.alias)
    [finding] = [f for f in lab.report.findings if f.check_id == "tls-hostname-mismatch"]
    assert f"-connect {lab.alias} -servername db.example -starttls mysql" in finding.verify


# -- legacy: TLS 1.0/1.1, anonymous suites, a weak key and a neglected chain ------------------------------

def test_legacy_endpoint_fails_protocols_and_suites(lab: Lab) -> None:
    ep = f"127.0.0.1:{lab.legacy.port}"
    protocols = {detail.split()[0]: sev for sev, detail in failing(lab, "tls-legacy-protocol", ep)}
    assert protocols == {"TLSv1.0": Severity.HIGH, "TLSv1.1": Severity.HIGH}  # no SSLv2/SSLv3 in OpenSSL 3
    weak = {detail.split(":")[0]: sev for sev, detail in failing(lab, "tls-weak-cipher", ep)}
    assert weak.get("anonymous key exchange") is Severity.CRITICAL, weak
    scan = lab.scan(ep)
    assert set(scan) == SCAN_KEYS and scan["tls"] is True
    assert {n for n, p in scan["protocols"].items() if p["accepted"]} == {"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
    anonymous = [s for s in scan["protocols"]["TLSv1.0"]["suites"] if s["anonymous"]]
    assert anonymous and all("_anon_" in s["name"] for s in anonymous)


def test_legacy_endpoint_certificate_findings(lab: Lab) -> None:
    ep = f"127.0.0.1:{lab.legacy.port}"
    assert failing(lab, "tls-weak-key", ep) == [(Severity.HIGH, "leaf CN=localhost has a 1024-bit RSA key")]
    [(sev, detail)] = failing(lab, "tls-cert-expiring", ep)
    assert sev is Severity.CRITICAL and detail.startswith("leaf certificate CN=localhost expires on")
    [(sev, detail)] = failing(lab, "tls-cert-expired", ep)  # the served intermediate
    assert sev is Severity.CRITICAL and detail.startswith("chain certificate #2 CN=legacy intermediate expired on")
    [(sev, _)] = failing(lab, "tls-chain-untrusted", ep)
    assert sev is Severity.HIGH
    for check_id in ("tls-hostname-mismatch", "tls-self-signed-external", "tls-sha1-signature",
                     "tls-plaintext-service"):
        assert_pass(lab, check_id, ep)


# -- plaintext, not MySQL, unreachable --------------------------------------------------------------------

def test_server_without_ssl_is_plaintext(lab: Lab) -> None:
    ep = f"127.0.0.1:{lab.plain.port}"
    [(sev, detail)] = failing(lab, "tls-plaintext-service", ep)
    assert sev is Severity.HIGH and detail.startswith("mysql answered without TLS: MySQL ")
    assert "without CLIENT_SSL" in detail
    scan = lab.scan(ep)
    assert scan["tls"] is False and scan["starttls_offered"] is False and scan["plaintext"] is True
    [(status, _, reason)] = results(lab, "tls-legacy-protocol", ep)  # nothing to judge: NOT_ASSESSED, never PASS
    assert status is Status.NOT_ASSESSED and "no CLIENT_SSL" in reason


def test_not_mysql_is_a_reason(lab: Lab) -> None:
    ep = f"127.0.0.1:{lab.junk_port}"
    scan = lab.scan(ep)
    assert scan["tls"] is False and scan["plaintext"] is False
    assert scan["handshake_error"] == "no MySQL greeting: not a MySQL greeting (the answer starts with 'HTTP')"
    for check_id in ("tls-plaintext-service", "tls-legacy-protocol", "tls-cert-expired"):
        [(status, _, reason)] = results(lab, check_id, ep)
        assert status is Status.NOT_ASSESSED and "no MySQL greeting" in reason


def test_unreachable_port_is_not_assessed(lab: Lab) -> None:
    ep = f"127.0.0.1:{lab.dead_port}"
    [ev] = [e for e in lab.evidence if e.name == ep]
    assert ev.scan.error and ev.scan.error.startswith(f"unreachable: {ep}: ")
    for check_id in ("tls-plaintext-service", "tls-legacy-protocol"):
        assert results(lab, check_id, ep) == [(Status.NOT_ASSESSED, None, ev.scan.error)]
    assert not [f for f in lab.report.findings if f.resource == ep]


# -- bounded ----------------------------------------------------------------------------------------------

def test_connection_budget_keeps_weak_suites_first(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    connections = []
    connect = mysql._connect

    def counting(host: str, port: int) -> Any:
        connections.append(port)
        return connect(host, port)

    monkeypatch.setattr(mysql, "_connect", counting)
    scan = mysql.scan_mysql("127.0.0.1", lab.legacy.port, "localhost", max_connections=20)
    assert len(connections) <= 20
    assert scan["tls"] is True and scan["protocols"]["TLSv1.0"]["accepted"] is True
    for name in ("TLSv1.0", "TLSv1.1", "TLSv1.2"):  # every weak class found despite the small budget
        assert any(s["anonymous"] for s in scan["protocols"][name]["suites"]), name
    full = lab.scan(f"127.0.0.1:{lab.legacy.port}")["protocols"]["TLSv1.2"]["suites"]
    assert len(scan["protocols"]["TLSv1.2"]["suites"]) <= len(full)


def test_silent_port_times_out_into_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mysql, "TIMEOUT", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever speaks
        scan = mysql.scan_mysql("127.0.0.1", silent.getsockname()[1], "localhost")
    assert scan == {"tls": False, "plaintext": False, "handshake_error": "no MySQL greeting: timed out"}


# -- the MySQL packets --------------------------------------------------------------------------------------

def test_greeting_ssl_request_and_refusals() -> None:
    greeting = mysql.parse_greeting(b"\x0a8.0.36\x00" + b"\x01\x00\x00\x00" + b"abcdefgh\x00" + b"\xff\xff"
                                    + b"\x21\x02\x00" + b"\xff\xdf" + bytes(11))  # 0xffff: CLIENT_SSL set
    assert greeting.version == "8.0.36" and greeting.tls_offered
    packet = mysql.ssl_request(greeting)
    assert len(packet) == 4 + 32 and packet[:4] == b"\x20\x00\x00\x01"  # 32-byte payload, sequence id 1
    flags = int.from_bytes(packet[4:8], "little")
    assert flags & mysql.CLIENT_SSL and flags & mysql.CLIENT_PROTOCOL_41
    no_ssl = mysql.parse_greeting(b"\x0a5.7.44\x00" + bytes(4) + b"abcdefgh\x00" + b"\xff\xf7")  # 0xf7ff
    assert not no_ssl.tls_offered
    blocked = b"\xff\x69\x04#HY000Host '10.0.0.9' is blocked because of many connection errors"
    with pytest.raises(mysql.MysqlError, match=re.escape("refused the connection: error 1129: Host '10.0.0.9' is")):
        mysql.parse_greeting(blocked)
    with pytest.raises(mysql.MysqlError, match="protocol 10"):
        mysql.parse_greeting(b"\x09junk")
