"""The CLI end to end on layers 2 and 3: a scope naming an SSH host and a live NGINX, as a user writes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from outsidein.cli import main
from tests.netns import needs_root
from tests.test_checks_nginx import Server
from tests.test_host_collect import DROP_ALL_BUT_SSH, SshHost, ssh_host  # noqa: F401 - the fixture

pytestmark = needs_root

IPV6_DROP = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -j LOG --log-prefix "oi-drop6: "
COMMIT
"""
OPEN_DATABASE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
"""


@pytest.fixture
def weak_nginx(tmp_path: Path) -> Iterator[Server]:
    server = Server("weak", tmp_path / "nginx")
    server.start()
    yield server
    server.stop()


def _scope(tmp_path: Path, host: SshHost, nginx: Server) -> Path:
    scope = tmp_path / "outsidein.toml"
    scope.write_text(f"""
[[hosts]]
name = "db-1"
address = "root@{host.ns.address}"
environment = "prod"
identity_file = "{host.key}"
known_hosts = "{host.known_hosts}"
ssh_allowed_cidrs = ["10.8.0.0/24"]
probe_address = "{host.ns.address}"

[[nginx]]
name = "edge"
config = "{nginx.conf}"
url = "https://127.0.0.1:{nginx.tls_port}/"
verify_tls = false
environment = "prod"
""")
    return scope


def _report(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_audit_a_host_over_ssh_and_a_live_nginx(ssh_host: SshHost, weak_nginx: Server, tmp_path: Path,  # noqa: F811
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ssh_host.ns.iptables_restore(OPEN_DATABASE)
    scope = _scope(tmp_path, ssh_host, weak_nginx)
    out = tmp_path / "report.json"
    assert main(["audit", "--config", str(scope), "--format", "json", "--output", str(out),
                 "--fail-on", "CRITICAL"]) == 1
    report = _report(out)
    layers = {layer["number"]: layer["status"] for layer in report["layers"]}  # type: ignore[attr-defined]
    assert layers[2] == "FAIL" and layers[3] == "FAIL"
    assert layers[1] == "REVIEW"  # no [aws] in this scope: not in scope, not PASS
    assert report["hosts"] == ["db-1"] and report["nginx"] == ["edge"]
    findings = {(f["check_id"], f["resource"]): f for f in report["findings"]}  # type: ignore[attr-defined]
    exposed = findings[("host-fw-exposed-service", "db-1:5432")]
    assert exposed["severity"] == "CRITICAL" and exposed["region"] is None and exposed["environment"] == "prod"
    assert "observed" in exposed["detail"]  # the probe from outside the namespace connected
    assert ("host-fw-default-policy", "db-1") in findings
    ssh = findings[("host-fw-ssh-restricted", "db-1:22")]
    assert "10.8.0.0/24" in ssh["detail"]
    assert ("nginx-live-response", f"https://127.0.0.1:{weak_nginx.tls_port}/") in findings
    assert any(check == "nginx-login-rate-limit" and resource.startswith(str(weak_nginx.prefix))
               for check, resource in findings)


def test_collect_then_audit_offline_gives_the_same_findings(ssh_host: SshHost, weak_nginx: Server,  # noqa: F811
                                                           tmp_path: Path) -> None:
    ssh_host.ns.iptables_restore(DROP_ALL_BUT_SSH.format(peer=ssh_host.ns.peer))
    ssh_host.ns.iptables_restore(IPV6_DROP, ipv6=True)
    scope = _scope(tmp_path, ssh_host, weak_nginx)
    snapshot = tmp_path / "snapshot.json"
    assert main(["collect", "--config", str(scope), "--output", str(snapshot)]) == 0
    weak_nginx.stop()  # offline: neither the host nor the server is needed any more
    ssh_host.ns.iptables_restore(OPEN_DATABASE)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["audit", "--from", str(snapshot), "--format", "json", "--output", str(first)]) == 0
    assert main(["audit", "--from", str(snapshot), "--format", "json", "--output", str(second)]) == 0
    a, b = _report(first), _report(second)
    assert a["findings"] == b["findings"] and a["findings"]
    fingerprints = {(f["check_id"], f["resource"]) for f in a["findings"]}  # type: ignore[attr-defined]
    # Collected while the DROP policy was loaded: the later ACCEPT policy does not leak into the snapshot.
    assert ("host-fw-default-policy", "db-1") not in fingerprints
    assert ("host-fw-exposed-service", "db-1:5432") not in fingerprints
    assert any(check.startswith("nginx-") for check, _ in fingerprints)


def test_unreachable_host_is_not_assessed_and_the_audit_goes_on(ssh_host: SshHost, weak_nginx: Server,  # noqa: F811
                                                               tmp_path: Path) -> None:
    scope = _scope(tmp_path, ssh_host, weak_nginx)
    scope.write_text(scope.read_text().replace(f"root@{ssh_host.ns.address}", f"root@{ssh_host.ns.address}:2222"))
    out = tmp_path / "report.json"
    assert main(["audit", "--config", str(scope), "--format", "json", "--output", str(out)]) == 0
    report = _report(out)
    layers = {layer["number"]: layer for layer in report["layers"]}  # type: ignore[attr-defined]
    assert layers[2]["status"] == "REVIEW" and layers[2]["passed"] == 0
    reasons = [n["reason"] for n in report["not_assessed"] if n["layer"] == 2]  # type: ignore[attr-defined]
    assert reasons and all("unreachable" in r for r in reasons)
    assert layers[3]["status"] == "FAIL"  # the NGINX layer was still audited
