"""The CLI end to end on layers 4 and 8: a scope with TLS endpoints, certificate files, a capture and a
PostgreSQL DSN, written the way a user writes it, collected, saved and re-audited offline.

The TLS endpoints are the demo's loopback servers (``outsidein.demo.tls_servers``: a self-signed external
Grafana with TLS 1.0 and a CA-signed internal API); real NGINX, PostgreSQL and Redis endpoints are covered
in ``test_checks_tls.py`` and ``test_checks_transit.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from outsidein.cli import main
from outsidein.demo.local_targets import demo_captures
from outsidein.demo.tls_servers import demo_tls
from tests.servers import free_port


def _report(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_scope_with_tls_certificates_captures_and_postgres(tmp_path: Path) -> None:
    pcap = demo_captures()[0].pcap
    assert pcap is not None
    shutil.copy(pcap, tmp_path / "app-db.pcap")
    dead_pg = free_port()
    with demo_tls() as tls:
        grafana, api = (e.endpoint for e in tls.endpoints)
        ca = tls.endpoints[1].ca_file
        assert ca is not None
        shutil.copy(ca, tmp_path / "internal-ca.pem")
        certs = tmp_path / "certs"
        certs.mkdir()
        for path in tls.certificates[0].paths:
            shutil.copy(path, certs)
        (tmp_path / "outsidein.toml").write_text(f"""
[[tls]]
endpoint = "{grafana}"
server_name = "grafana.shop.example"
environment = "prod"
external = true

[[tls]]
endpoint = "{api}"
server_name = "api.shop.internal"
ca_file = "internal-ca.pem"

[[tls]]
endpoint = "{api}"
server_name = "api.shop.internal"

[[certificates]]
paths = ["certs/*.pem", "certs/missing.pem"]
environment = "prod"

[[captures]]
name = "app-db"
pcap = "app-db.pcap"
environment = "prod"

[[postgres]]
name = "db-1"
dsn = "host=127.0.0.1 port={dead_pg} user=auditor password=Hunter2-secret dbname=app connect_timeout=2"
""")
        config = tmp_path / "outsidein.toml"
        live, snap = tmp_path / "live.json", tmp_path / "snapshot.json"
        assert main(["audit", "--config", str(config), "--format", "json", "--output", str(live),
                     "--fail-on", "CRITICAL"]) == 1
        assert main(["collect", "--config", str(config), "--output", str(snap)]) == 0
    offline = tmp_path / "offline.json"
    assert main(["audit", "--from", str(snap), "--format", "json", "--output", str(offline)]) == 0
    report = _report(live)

    assert report["tls"] == [grafana, api, api, str(certs / "api-next.pem"), str(certs / "shop-edge.pem"),
                             str(certs / "missing.pem")]
    assert report["captures"] == [str(tmp_path / "app-db.pcap"), "db-1"]
    layers = {layer["number"]: layer["status"] for layer in report["layers"]}
    assert layers[4] == "FAIL" and layers[8] == "FAIL"
    found = {(f["check_id"], f["resource"]) for f in report["findings"]}
    assert {("tls-self-signed-external", grafana), ("tls-legacy-protocol", grafana),
            ("tls-cert-expiring", str(certs / "shop-edge.pem")),
            ("transit-plaintext-credentials", f"{tmp_path / 'app-db.pcap'}:5432")} <= found
    # the same API is trusted with its CA file and untrusted without it (one endpoint, two scope entries)
    untrusted = [f for f in report["findings"] if f["check_id"] == "tls-chain-untrusted" and f["resource"] == api]
    assert len(untrusted) == 1 and untrusted[0]["severity"] == "MEDIUM"  # internal: MEDIUM, external: HIGH
    assert not [f for f in report["findings"] if f["resource"] == api and f["check_id"] != "tls-chain-untrusted"]
    # verify commands are filled in for the resource
    verify = next(f["verify"] for f in report["findings"] if f["check_id"] == "tls-cert-expiring"
                  and f["resource"].endswith("shop-edge.pem"))
    assert verify.startswith("openssl x509 -noout -checkend 2592000 -in ") and verify.endswith("shop-edge.pem")
    legacy = next(f["verify"] for f in report["findings"] if f["check_id"] == "tls-legacy-protocol")
    assert grafana in legacy and "{" not in legacy
    # what could not be read is NOT_ASSESSED with its reason, and the DSN's password never shows
    reasons = {(n["check_id"], n["resource"]): n["reason"] for n in report["not_assessed"]}
    assert "no file matches" in reasons[("tls-cert-expired", str(certs / "missing.pem"))] or \
        "no such file" in reasons[("tls-cert-expired", str(certs / "missing.pem"))]
    assert any(r == "db-1" and "pg_stat_ssl" in why for (c, r), why in reasons.items() if c == "transit-pg-ssl")
    for text in (live.read_text(), snap.read_text(), offline.read_text()):
        assert "Hunter2-secret" not in text and "S3cretPassw0rd" not in text
    # the snapshot re-evaluates offline to the same findings
    again = _report(offline)
    assert {f["fingerprint"] for f in again["findings"]} == {f["fingerprint"] for f in report["findings"]}


@pytest.mark.parametrize(("entry", "message"), [
    ('[[tls]]\nendpoint = "db.internal"\n', "must be \"host:port\""),
    ('[[tls]]\nendpoint = "db:5432"\nca_file = 3\n', "ca_file"),
    ('[[captures]]\nname = "x"\n', "exactly one of pcap"),
    ('[[captures]]\nname = "x"\ninterface = "lo"\nduration = 3600\n', "duration"),
    ('[[postgres]]\nname = "db"\n', "needs a name and a dsn"),
    ('[[certificates]]\npaths = []\n', "paths must be a non-empty list"),
])
def test_bad_tls_and_transit_scope_exits_2_naming_the_entry(tmp_path: Path, entry: str, message: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "outsidein.toml"
    config.write_text(entry)
    assert main(["audit", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and message in err and "#1" in err
