"""Evaluate evidence: parse it, run every check, and summarise the twelve layers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from outsidein.allocator import cyclic_gc_paused
from outsidein.baseline import BaselineEntry, Suppressed, split_findings
from outsidein.checks.registry import (
    AWS,
    BACKUPS,
    CAPTURE,
    COMPONENTS,
    HOST,
    NGINX,
    PIPELINE,
    REPOSITORY,
    SIMULATION,
    TLS,
    Check,
    all_checks,
    review_items,
)
from outsidein.evidence import AwsEvidence, Snapshot
from outsidein.layers import LAYERS, Layer
from outsidein.models import Finding, Result, ReviewItem, Severity, Status, fingerprint


@dataclass(frozen=True)
class LayerStatus:
    layer: Layer
    status: str  # "PASS" | "FAIL" | "REVIEW"
    note: str
    findings: int = 0
    not_assessed: int = 0
    passed: int = 0


@dataclass
class AuditReport:
    evaluated_at: datetime  # the evidence's collection time: the audit clock
    source: str
    account_id: str | None
    regions: tuple[str, ...]
    layers: list[LayerStatus]
    findings: list[Finding]
    not_assessed: list[tuple[Check, Result]]
    passed: Counter[str] = field(default_factory=Counter)  # check id -> resources that passed
    checks: list[Check] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)  # every verdict, PASS included
    review: list[ReviewItem] = field(default_factory=list)  # summaries to re-confirm, not findings
    suppressed: list[Suppressed] = field(default_factory=list)  # findings the reviewed baseline took out
    expired_acceptances: list[BaselineEntry] = field(default_factory=list)  # past their review date
    api_calls: dict[str, int] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()  # host names in the evidence
    nginx: tuple[str, ...] = ()  # NGINX configuration names in the evidence
    tls: tuple[str, ...] = ()  # TLS endpoints (host:port) and certificate files in the evidence
    captures: tuple[str, ...] = ()  # captures and pg_stat_ssl sources in the evidence

    def overdue(self) -> list[Finding]:
        """Findings past their due date at the audit clock (due dates come from first-seen once stored)."""
        return [f for f in self.findings if f.is_overdue(self.evaluated_at)]

    def at_or_above(self, severity: Severity) -> list[Finding]:
        """Findings that trip ``--fail-on severity`` (REVIEW ranks lowest, so it means "any finding")."""
        return [f for f in self.findings if f.severity.rank >= severity.rank]


def fill_verify(template: str, resource: str, region: str | None) -> str:
    """The verify command for one resource: ``{resource}``, ``{region}``, and for ``host:port`` resources
    ``{host}`` and ``{port}``."""
    host, sep, port = resource.rpartition(":")
    filled = template.replace("{resource}", resource).replace("{region}", region or "us-east-1")
    if sep and port.isdigit():
        filled = filled.replace("{host}", host.strip("[]")).replace("{port}", port)
    return filled


def _finding(check: Check, result: Result, found_at: datetime) -> Finding:
    meta = check.meta
    region = result.region if result.region and result.region != "global" else None
    verify = fill_verify(result.verify or meta.verify, result.resource, region)
    return Finding(
        check_id=meta.id, layer=meta.layer, severity=result.severity or meta.severity, title=meta.title,
        resource=result.resource, region=result.region, environment=result.environment, detail=result.detail,
        remediation=meta.remediation, verify=verify, found_at=found_at,
        fingerprint=fingerprint(meta.id, result.resource, result.region, result.detail),
    )


def _layer_status(layer: Layer, checks: list[Check], findings: list[Finding], unassessed: int, passed: int,
                  in_scope: bool) -> LayerStatus:
    if not checks:
        return LayerStatus(layer, "REVIEW", "not assessed: not implemented yet")
    if not in_scope:
        return LayerStatus(layer, "REVIEW", "not assessed: not in scope")
    actionable = [f for f in findings if f.severity != Severity.REVIEW]
    counts = Counter(f.severity.value for f in findings)
    summary = ", ".join(f"{counts[s.value]} {s.value}" for s in Severity if counts[s.value])
    if actionable:
        status, note = "FAIL", summary
    elif unassessed or findings:
        parts = [summary] if findings else []
        if unassessed:
            parts.append(f"{unassessed} not assessed")
        status, note = "REVIEW", "; ".join(parts)
    else:
        status, note = "PASS", f"{passed} resources checked"
    return LayerStatus(layer, status, note, len(findings), unassessed, passed)


def parse_targets(snapshot: Snapshot) -> dict[str, list[Any]]:
    """Parse each source's raw evidence into the typed targets its checks read (parsers never raise)."""
    targets: dict[str, list[Any]] = {}
    if snapshot.aws is not None:
        from outsidein.aws.inventory import parse_evidence

        targets[AWS] = [parse_evidence(snapshot.aws)]
    if snapshot.hosts:
        from outsidein.host.facts import parse_host

        targets[HOST] = [parse_host(host) for host in snapshot.hosts]
    if snapshot.nginx:
        from outsidein.nginx.config import parse_nginx

        targets[NGINX] = [parse_nginx(conf) for conf in snapshot.nginx]
    if snapshot.tls:
        from outsidein.tls.facts import parse_tls

        targets[TLS] = [parse_tls(entry) for entry in snapshot.tls]
    if snapshot.captures:
        from outsidein.transit.facts import parse_capture

        targets[CAPTURE] = [parse_capture(capture) for capture in snapshot.captures]
    if snapshot.repositories:
        from outsidein.secrets.facts import parse_repository

        targets[REPOSITORY] = [parse_repository(repo) for repo in snapshot.repositories]
    if snapshot.components:
        from outsidein.components.facts import parse_components

        targets[COMPONENTS] = [parse_components(entry) for entry in snapshot.components]
    if snapshot.pipelines:
        from outsidein.pipelines.facts import parse_pipelines

        targets[PIPELINE] = [parse_pipelines(entry) for entry in snapshot.pipelines]
    if snapshot.simulations:
        from outsidein.simulate.facts import parse_simulation

        targets[SIMULATION] = [parse_simulation(entry) for entry in snapshot.simulations]
    if snapshot.backups:
        from outsidein.backups.facts import parse_backups

        inventory = targets[AWS][0] if AWS in targets else None
        targets[BACKUPS] = [parse_backups(entry, snapshot.aws, inventory, snapshot.collected_at)
                            for entry in snapshot.backups]
    return targets


def evaluate(evidence: Snapshot | AwsEvidence | None, source: str = "api",
             baseline: dict[str, BaselineEntry] | None = None) -> AuditReport:
    """Run every registered check over every target in the evidence (None: nothing in scope); findings in the
    reviewed ``baseline`` are set aside as suppressed."""
    with cyclic_gc_paused():  # typed inventories and results of a large account: all long-lived
        return _evaluate(evidence, source, baseline)


def _evaluate(evidence: Snapshot | AwsEvidence | None, source: str,
              baseline: dict[str, BaselineEntry] | None) -> AuditReport:
    if isinstance(evidence, AwsEvidence):
        snapshot: Snapshot | None = Snapshot(collected_at=evidence.collected_at, aws=evidence)
    else:
        snapshot = evidence
    if snapshot is not None and snapshot.empty:
        snapshot = None
    checks = all_checks()
    findings: list[Finding] = []
    unassessed: list[tuple[Check, Result]] = []
    passed: Counter[str] = Counter()
    results: list[Result] = []
    review: list[ReviewItem] = []
    targets = parse_targets(snapshot) if snapshot is not None else {}
    if AWS in targets:
        review = review_items(targets[AWS][0])
    for check in checks:
        for target in targets.get(check.source, []):
            for result in check.run(target):
                results.append(result)
                if result.status is Status.FAIL:
                    assert snapshot is not None
                    findings.append(_finding(check, result, snapshot.collected_at))
                elif result.status is Status.NOT_ASSESSED:
                    unassessed.append((check, result))
                else:
                    passed[check.meta.id] += 1
    # One problem seen from two targets (a provisioning file shared by hosts) is one finding.
    findings = list({f.fingerprint: f for f in reversed(findings)}.values())
    findings.sort(key=lambda f: (f.layer, -f.severity.rank, f.check_id, f.environment or "", f.resource, f.detail))
    suppressed: list[Suppressed] = []
    expired: list[BaselineEntry] = []
    if baseline and snapshot is not None:
        findings, suppressed, expired = split_findings(findings, baseline, snapshot.collected_at.date())
    layers = []
    for layer in LAYERS:
        layer_checks = [c for c in checks if c.meta.layer == layer.number]
        ids = {c.meta.id for c in layer_checks}
        layers.append(_layer_status(
            layer, layer_checks, [f for f in findings if f.layer == layer.number],
            sum(1 for c, _ in unassessed if c.meta.layer == layer.number),
            sum(n for cid, n in passed.items() if cid in ids),
            any(targets.get(c.source) for c in layer_checks)))
    aws = snapshot.aws if snapshot is not None else None
    return AuditReport(
        evaluated_at=snapshot.collected_at if snapshot else datetime.now().astimezone(),
        source=source if snapshot else "nothing in scope",
        account_id=aws.account_id if aws else None,
        regions=aws.regions if aws else (),
        layers=layers, findings=findings, not_assessed=unassessed, passed=passed, checks=checks, results=results,
        review=review,
        api_calls=dict(aws.api_calls) if aws else {},
        hosts=tuple(h.name for h in snapshot.hosts) if snapshot else (),
        nginx=tuple(n.name for n in snapshot.nginx) if snapshot else (),
        tls=tuple(t.name for t in snapshot.tls) if snapshot else (),
        captures=tuple(c.name for c in snapshot.captures) if snapshot else (),
        suppressed=suppressed, expired_acceptances=expired,
    )
