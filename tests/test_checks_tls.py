"""Layer 4 against real servers: NGINX (valid, expiring, expired, self-signed, legacy), PostgreSQL with ssl on
and off, Redis with a TLS and a plaintext port, all on loopback ports started here (``tests/servers.py``).

The endpoints are scanned once with ``collect_tls`` (sslyze + plaintext probes), with the test CA as the
trust store, and evaluated like a user would: findings by check id, severity and ``host:port``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from outsidein.audit import AuditReport, evaluate
from outsidein.evidence import Record, Snapshot, TlsEvidence
from outsidein.models import Severity, Status
from outsidein.scope import CertificateFilesScope, TlsEndpointScope
from outsidein.tls.collect import collect_tls
from outsidein.tls.facts import parse_tls
from tests.servers import NginxTls, Pki, Postgres, Redis, free_port, nginx_tls, postgres_server, redis_server

COLLECTED = dt.datetime.now(dt.UTC)
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")  # a Mozilla root in sslyze

for tool in ("nginx", "redis-server", "runuser"):
    if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
        pytest.fail(f"{tool} is not installed: run scripts/system-deps", pytrace=False)


@dataclass
class Lab:
    pki: Pki
    nginx: NginxTls
    pg_on: Postgres
    pg_off: Postgres
    redis: Redis
    files: Path
    evidence: list[TlsEvidence]
    report: AuditReport

    def ep(self, variant: str) -> str:
        return f"127.0.0.1:{self.nginx.ports[variant]}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("tls")
    pki = Pki(root / "pki")
    files = root / "files"
    files.mkdir()
    with contextlib.ExitStack() as servers:
        nginx = servers.enter_context(nginx_tls(pki, root / "nginx"))
        pg_on = servers.enter_context(postgres_server(root, ssl=True, certs=pki.issue("pg")))
        pg_off = servers.enter_context(postgres_server(root, ssl=False))
        redis = servers.enter_context(redis_server(root, tls=True, certs=pki.issue("redis"), password=None))
        # certificate files: one with its private key in the same file, one expiring, one expired
        for name, days in (("bundle", 400), ("soon", 5), ("old", -1)):
            shutil.copy(pki.issue(f"file-{name}", days=days, with_key=name == "bundle").cert, files / f"{name}.pem")
        endpoints = [TlsEndpointScope(f"127.0.0.1:{p}", protocol="https", server_name="localhost",
                                      environment="prod", external=True) for p in nginx.ports.values()]
        endpoints += [
            TlsEndpointScope(f"127.0.0.1:{nginx.ports['valid']}", protocol="https", server_name="wrong.example",
                             environment="prod"),
            TlsEndpointScope(f"127.0.0.1:{pg_on.port}", protocol="postgres", server_name="localhost"),
            TlsEndpointScope(f"127.0.0.1:{pg_off.port}", protocol="postgres"),
            TlsEndpointScope(f"127.0.0.1:{redis.tls_port}", protocol="redis", server_name="localhost"),
            TlsEndpointScope(f"127.0.0.1:{redis.port}", protocol="redis"),
            TlsEndpointScope(f"127.0.0.1:{free_port()}", protocol="https"),
        ]
        evidence = collect_tls(endpoints, [CertificateFilesScope(paths=(str(files / "*.pem"),))],
                               ca_file=pki.ca_file)
        report = evaluate(Snapshot(collected_at=COLLECTED, tls=evidence))
        yield Lab(pki, nginx, pg_on, pg_off, redis, files, evidence, report)


def results(lab: Lab, check_id: str, resource: str) -> list[tuple[Status, Severity | None, str]]:
    return [(r.status, r.severity, r.detail or r.reason) for r in lab.report.results
            if r.check_id == check_id and r.resource == resource]


def failing(lab: Lab, check_id: str, resource: str) -> list[tuple[Severity, str]]:
    return [(f.severity, f.detail) for f in lab.report.findings if f.check_id == check_id and f.resource == resource]


def assert_pass(lab: Lab, check_id: str, resource: str) -> None:
    got = results(lab, check_id, resource)
    assert got and all(status is Status.PASS for status, *_ in got), (check_id, resource, got)


# -- NGINX endpoints -----------------------------------------------------------------------------------

def test_valid_endpoint_passes_every_check(lab: Lab) -> None:
    valid = lab.ep("valid")
    for check_id in ("tls-cert-expired", "tls-cert-expiring", "tls-chain-untrusted", "tls-self-signed-external",
                     "tls-legacy-protocol", "tls-weak-cipher", "tls-weak-key", "tls-sha1-signature",
                     "tls-ocsp-stapling", "tls-plaintext-service"):
        assert_pass(lab, check_id, valid)


def test_expiry_bands(lab: Lab) -> None:
    [(sev, detail)] = failing(lab, "tls-cert-expiring", lab.ep("expiring"))
    assert sev is Severity.HIGH and "within 14 days" in detail  # 10 days left
    [(sev, detail)] = failing(lab, "tls-cert-expired", lab.ep("expired"))
    assert sev is Severity.CRITICAL and "leaf certificate CN=localhost expired on" in detail
    assert failing(lab, "tls-cert-expiring", lab.ep("expired")) == []
    assert_pass(lab, "tls-cert-expired", lab.ep("expiring"))
    for variant in ("expiring", "expired"):  # trust is judged apart from expiry
        assert_pass(lab, "tls-chain-untrusted", lab.ep(variant))


def test_self_signed_external_untrusted(lab: Lab) -> None:
    ep = lab.ep("selfsigned")
    assert failing(lab, "tls-self-signed-external", ep) == [(Severity.HIGH, "CN=localhost is self-signed")]
    [(sev, detail)] = failing(lab, "tls-chain-untrusted", ep)
    assert sev is Severity.HIGH and "self-signed" in detail
    assert_pass(lab, "tls-self-signed-external", lab.ep("expiring"))


def test_hostname_mismatch(lab: Lab) -> None:
    # the same valid server, reached under a name its certificate does not cover (second scope entry)
    statuses = sorted(status for status, *_ in results(lab, "tls-hostname-mismatch", lab.ep("valid")))
    assert statuses == [Status.FAIL, Status.PASS]  # as localhost it matches, as wrong.example it does not
    mismatches = [f for f in lab.report.findings if f.check_id == "tls-hostname-mismatch"]
    assert [(f.resource, f.severity) for f in mismatches] == [(lab.ep("valid"), Severity.HIGH)]
    assert "wrong.example is not in the certificate's names (localhost, 127.0.0.1)" in mismatches[0].detail


def test_legacy_protocols_suites_key_and_sha1(lab: Lab) -> None:
    ep = lab.ep("legacy")
    protocols = {detail.split()[0]: sev for sev, detail in failing(lab, "tls-legacy-protocol", ep)}
    assert protocols == {"TLSv1.0": Severity.HIGH, "TLSv1.1": Severity.HIGH}
    weak = dict((detail.split(":")[0], sev) for sev, detail in failing(lab, "tls-weak-cipher", ep))
    assert weak.get("anonymous key exchange") is Severity.CRITICAL, weak
    assert failing(lab, "tls-weak-key", ep) == [(Severity.HIGH, "leaf CN=localhost has a 1024-bit RSA key")]
    assert failing(lab, "tls-sha1-signature", ep) == [(Severity.HIGH, "leaf CN=localhost is signed with sha1")]


def test_ocsp_stapling_only_matters_when_external(lab: Lab) -> None:
    assert failing(lab, "tls-ocsp-stapling", lab.ep("expiring")) == [
        (Severity.LOW, "no OCSP response stapled to the handshake")]
    pg = f"127.0.0.1:{lab.pg_on.port}"
    assert_pass(lab, "tls-ocsp-stapling", pg)  # internal: not required


# -- PostgreSQL and Redis ------------------------------------------------------------------------------

def test_postgres_ssl_on_is_tls_and_trusted(lab: Lab) -> None:
    ep = f"127.0.0.1:{lab.pg_on.port}"
    for check_id in ("tls-plaintext-service", "tls-chain-untrusted", "tls-legacy-protocol", "tls-hostname-mismatch"):
        assert_pass(lab, check_id, ep)


def test_plaintext_services(lab: Lab) -> None:
    pg_off, redis_plain = f"127.0.0.1:{lab.pg_off.port}", f"127.0.0.1:{lab.redis.port}"
    [(sev, detail)] = failing(lab, "tls-plaintext-service", pg_off)
    assert sev is Severity.CRITICAL and detail.startswith("postgres answered without TLS: N")
    [(sev, detail)] = failing(lab, "tls-plaintext-service", redis_plain)
    assert sev is Severity.CRITICAL and detail == "redis answered without TLS: +PONG.."
    assert_pass(lab, "tls-plaintext-service", f"127.0.0.1:{lab.redis.tls_port}")
    # what needs a certificate cannot be judged on a plaintext port: NOT_ASSESSED with the reason
    [(status, _, reason)] = results(lab, "tls-cert-expired", redis_plain)
    assert status is Status.NOT_ASSESSED and reason.startswith("no TLS handshake")


def test_plaintext_severity_follows_the_service_table() -> None:
    from outsidein.checks.tls import plaintext_service

    for proto, expected in (("amqps", Severity.HIGH), ("grafana", Severity.HIGH), ("sonarqube", Severity.HIGH),
                            ("https", Severity.CRITICAL)):
        ev = TlsEvidence(name="10.0.0.5:1", protocol=proto, scan=Record(data={
            "scanned_at": "2026-01-01T00:00:00+00:00", "tls": False, "plaintext": True, "plaintext_answer": "x"}))
        [result] = list(plaintext_service(parse_tls(ev)))
        assert result.status is Status.FAIL and result.severity is expected


# -- unreachable, files, snapshots ---------------------------------------------------------------------

def test_unreachable_endpoint_is_not_assessed(lab: Lab) -> None:
    [dead] = [e for e in lab.evidence if not e.scan.ok and e.kind == "endpoint"]
    assert dead.scan.error and dead.scan.error.startswith(f"unreachable: {dead.name}: ")
    got = results(lab, "tls-plaintext-service", dead.name)
    assert got == [(Status.NOT_ASSESSED, None, dead.scan.error)]
    assert not [f for f in lab.report.findings if f.resource == dead.name]


def test_certificate_files(lab: Lab) -> None:
    bundle, soon, old = (str(lab.files / f"{n}.pem") for n in ("bundle", "soon", "old"))
    [ev] = [e for e in lab.evidence if e.name == bundle]
    assert "PRIVATE KEY" not in json.dumps(ev.to_json()) and "BEGIN CERTIFICATE" in ev.scan.data["pem"]
    assert_pass(lab, "tls-cert-expiring", bundle)
    assert failing(lab, "tls-cert-expiring", soon)[0][0] is Severity.CRITICAL  # 5 days: within 7
    assert failing(lab, "tls-cert-expired", old)[0][0] is Severity.CRITICAL
    assert results(lab, "tls-legacy-protocol", bundle) == []  # endpoint checks do not apply to files


def test_snapshot_round_trip_gives_the_same_findings(lab: Lab) -> None:
    restored = [TlsEvidence.from_json(json.loads(json.dumps(e.to_json())), "snap") for e in lab.evidence]
    again = evaluate(Snapshot(collected_at=COLLECTED + dt.timedelta(days=400), tls=restored))
    key = lambda r: (r.check_id, r.resource, r.status, r.severity, r.detail, r.reason)  # noqa: E731
    assert sorted(map(key, again.results)) == sorted(map(key, lab.report.results))


def test_collector_is_fast_on_loopback(lab: Lab) -> None:
    seconds = max(e.scan.data["seconds"] for e in lab.evidence if e.scan.ok and e.kind == "endpoint")
    assert seconds < 20, seconds
