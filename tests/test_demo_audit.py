"""The bundled demo stack, audited through the same collector a real account uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outsidein.audit import AuditReport, evaluate
from outsidein.cli import main
from outsidein.demo.seed import DemoStack, seed_demo_stack
from outsidein.evidence import Snapshot
from outsidein.models import Status
from tests.conftest import Emulator


@pytest.fixture(scope="module")
def demo(moto_server):  # type: ignore[no-untyped-def]
    moto_server.reset()
    aws = Emulator(moto_server)
    stack = seed_demo_stack(aws.endpoint_url)
    evidence = aws.collect(stack.regions)
    return stack, evidence, evaluate(evidence)


def _statuses(report: AuditReport) -> dict[tuple[str, str], set[Status]]:
    out: dict[tuple[str, str], set[Status]] = {}
    for result in report.results:
        out.setdefault((result.check_id, result.resource), set()).add(result.status)
    return out


def test_every_planted_problem_is_found(demo: tuple[DemoStack, object, AuditReport]) -> None:
    stack, _, report = demo
    found = {(f.check_id, f.resource) for f in report.findings}
    missed = [p for p in stack.planted if (p.check_id, p.resource) not in found]
    assert not missed, f"planted problems the audit missed: {missed}"


def test_hardened_resources_stay_silent(demo: tuple[DemoStack, object, AuditReport]) -> None:
    stack, _, report = demo
    statuses = _statuses(report)
    loud = [h for h in stack.hardened if Status.FAIL in statuses.get((h.check_id, h.resource), set())]
    assert not loud, f"hardened resources reported as findings: {loud}"
    unjudged = [h for h in stack.hardened if Status.PASS not in statuses.get((h.check_id, h.resource), set())]
    assert not unjudged, f"hardened resources the audit never judged: {unjudged}"


def test_no_finding_outside_the_planted_list(demo: tuple[DemoStack, object, AuditReport]) -> None:
    """Every finding on the demo stack is one the seeder planted on purpose: no noise."""
    stack, _, report = demo
    planted = {(p.check_id, p.resource) for p in stack.planted}
    extra = sorted({(f.check_id, f.resource) for f in report.findings} - planted)
    assert not extra, f"findings nobody planted: {extra}"


def test_access_analyzer_is_not_assessed_on_the_emulator(demo: tuple[DemoStack, object, AuditReport]) -> None:
    """moto has no Access Analyzer: the check must say so, and layer 7 must not read PASS because of it."""
    _, _, report = demo
    analyzer = [r for r in report.results if r.check_id == "iam-access-analyzer"]
    assert analyzer and all(r.status is Status.NOT_ASSESSED for r in analyzer)
    assert all("ListAnalyzers" in r.reason for r in analyzer)
    layer7 = next(ls for ls in report.layers if ls.layer.number == 7)
    assert layer7.status == "FAIL" and layer7.not_assessed == len(analyzer)


def test_dashboard_has_twelve_layers_with_unbuilt_ones_in_review(demo: tuple[DemoStack, object, AuditReport]) -> None:
    _, _, report = demo
    assert [ls.layer.number for ls in report.layers] == list(range(1, 13))
    by_number = {ls.layer.number: ls for ls in report.layers}
    assert {by_number[n].status for n in (1, 6, 7, 12)} == {"FAIL"}  # 12: the public ALBs' WAF
    for n in (2, 3, 4, 8, 9, 10, 11):
        assert by_number[n].status == "REVIEW" and "not assessed" in by_number[n].note
    assert by_number[5].status == "PASS"  # layer 5's AWS checks (rotation, user data, Lambda, ECS) run on the demo


def test_snapshot_round_trip_gives_identical_findings(demo: tuple[DemoStack, object, AuditReport],
                                                      tmp_path: Path) -> None:
    _, evidence, report = demo
    path = tmp_path / "snapshot.json"
    Snapshot(collected_at=evidence.collected_at, aws=evidence).save(path)  # type: ignore[attr-defined]
    again = evaluate(Snapshot.load(path).aws, "snapshot")
    assert [(f.fingerprint, f.severity, f.due) for f in again.findings] == \
        [(f.fingerprint, f.severity, f.due) for f in report.findings]
    assert [(c.meta.id, r) for c, r in again.not_assessed] == [(c.meta.id, r) for c, r in report.not_assessed]


def test_collect_then_audit_from_snapshot_through_the_cli(moto_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server.reset()
    aws = Emulator(moto_server)
    stack = seed_demo_stack(aws.endpoint_url)
    config = tmp_path / "outsidein.toml"
    config.write_text(f'[aws]\nregions = {json.dumps(list(stack.regions))}\nmax_attempts = 2\n'
                      f'endpoint_url = "{aws.endpoint_url}"\n')
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEMULATOREXAMPLE1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    live, offline = tmp_path / "live.json", tmp_path / "offline.json"
    assert main(["collect", "--config", str(config), "--output", str(tmp_path / "snap.json")]) == 0
    assert main(["audit", "--config", str(config), "--format", "json", "--output", str(live)]) == 0
    assert main(["audit", "--from", str(tmp_path / "snap.json"), "--format", "json", "--output", str(offline)]) == 0
    live_findings = json.loads(live.read_text())["findings"]
    offline_findings = json.loads(offline.read_text())["findings"]
    assert {f["fingerprint"] for f in offline_findings} == {f["fingerprint"] for f in live_findings}
    assert {(p.check_id, p.resource) for p in stack.planted} <= {(f["check_id"], f["resource"]) for f in live_findings}


def test_route_table_associations_are_summarised_for_review(demo: tuple[DemoStack, object, AuditReport]) -> None:
    stack, _, report = demo
    igw_subnet = next(p.resource for p in stack.planted if p.check_id == "vpc-private-subnet-igw-route")
    rows = [item for item in report.review if item.topic == "Route-table associations"]
    row = next(item for item in rows if igw_subnet in item.text)
    assert row.resource.startswith("rtb-") and "-> igw-" in row.text and row.environment == "prod"
    assert any("(implicit)" in item.text for item in rows)


def test_demo_hosts_and_nginx_show_layers_two_and_three() -> None:
    """The demo's saved hosts and NGINX config: app-1 and the edge carry the mistakes, bastion-1 stays silent."""
    from outsidein.demo.local_targets import demo_hosts, demo_nginx
    from outsidein.host.collect import collect_hosts
    from outsidein.nginx.collect import collect_nginx

    nginx = [collect_nginx(n.name, n.config, environment=n.environment, nginx_binary=n.nginx_binary)
             for n in demo_nginx()]
    report = evaluate(Snapshot(collected_at=datetime(2026, 11, 28, tzinfo=UTC), hosts=collect_hosts(demo_hosts()),
                               nginx=nginx))
    status = {ls.layer.number: ls.status for ls in report.layers}
    assert status[2] == "FAIL" and status[3] == "FAIL"
    assert status[1] == "REVIEW"  # no AWS in this snapshot: not in scope, never PASS
    by_check = {(f.check_id, f.resource.rsplit("/", 1)[-1]) for f in report.findings}
    assert {("host-fw-default-policy", "app-1"), ("host-fw-exposed-service", "app-1:5432"),
            ("host-fw-ssh-restricted", "app-1:22"), ("host-fw-provisioning-disables", "app-user-data.yaml:16"),
            ("nginx-login-rate-limit", "shop.conf:33"), ("nginx-alias-traversal", "shop.conf:38")} <= by_check
    assert not [f for f in report.findings if f.resource.startswith("bastion-1")
                or "bastion-user-data" in f.resource]
    bastion = [r for r in report.results if r.resource.startswith("bastion-1") and r.check_id.startswith("host-fw")]
    assert {r.status for r in bastion if r.check_id != "host-fw-probe-mismatch"} == {Status.PASS}


def test_demo_tls_endpoints_files_and_capture_show_layers_four_and_eight() -> None:
    """The demo's grafana endpoint, next edge certificate and capture carry the mistakes; api stays silent."""
    from outsidein.demo.local_targets import demo_captures, demo_hosts
    from outsidein.demo.tls_servers import demo_tls
    from outsidein.host.collect import collect_hosts
    from outsidein.tls.collect import collect_tls
    from outsidein.transit.collect import collect_transit

    with demo_tls() as tls:
        evidence = collect_tls(tls.endpoints, tls.certificates)
        grafana, api = (e.endpoint for e in tls.endpoints)
    snapshot = Snapshot(collected_at=datetime.now(UTC), hosts=collect_hosts(demo_hosts()[:1]), tls=evidence,
                        captures=collect_transit(demo_captures(), ()))
    report = evaluate(snapshot)
    status = {ls.layer.number: ls.status for ls in report.layers}
    assert status[4] == "FAIL" and status[8] == "FAIL"
    found = {(f.check_id, f.resource.rsplit("/", 1)[-1], f.severity.value) for f in report.findings}
    assert {("tls-self-signed-external", grafana, "HIGH"), ("tls-cert-expiring", grafana, "HIGH"),
            ("tls-legacy-protocol", grafana, "HIGH"), ("tls-cert-expiring", "shop-edge.pem", "CRITICAL"),
            ("transit-plaintext-credentials", "app-1-db.pcap:5432", "CRITICAL"),
            ("transit-plaintext-credentials", "app-1-db.pcap:6379", "CRITICAL"),
            ("transit-readable-sql", "app-1-db.pcap:5432", "CRITICAL"),
            ("transit-listen-wildcard", "app-1:6379", "CRITICAL")} <= found
    quiet = [f for f in report.findings if f.resource == api or f.resource.endswith("api-next.pem")]
    assert not quiet, quiet
    judged = {r.check_id for r in report.results if r.resource == api and r.status is Status.PASS}
    assert {"tls-chain-untrusted", "tls-legacy-protocol", "tls-cert-expiring", "tls-weak-cipher"} <= judged
    # the TLS flows in the capture (PostgreSQL STARTTLS on 5432, Redis on 6380) are not findings
    assert not [f for f in report.findings if f.resource.endswith(":6380")]
    text = json.dumps([f.detail for f in report.findings])
    assert "S3cretPassw0rd" not in text  # the password crossed the wire in the capture; never in the report


def test_the_main_job_audits_the_whole_demo_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`./scripts/audit` with nothing configured: every layer fails on the demo's planted problems (layer 12 on
    the load balancers' WAF: the simulation itself needs a written authorization), and nothing is stored
    outside the demo's own folder."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report.json"
    assert main(["audit", "--format", "json", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    status = {layer["number"]: layer["status"] for layer in report["layers"]}
    assert status == {n: "FAIL" for n in range(1, 13)}
    layers = {f["layer"] for f in report["findings"]}
    assert layers == set(range(1, 13))
    assert not list(tmp_path.glob(".outsidein*"))  # the demo does not store into the working directory
