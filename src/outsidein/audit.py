"""Evaluate evidence: parse it, run every check, and summarise the twelve layers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from outsidein.aws.inventory import parse_evidence
from outsidein.checks.registry import Check, all_checks, review_items
from outsidein.evidence import AwsEvidence
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
    api_calls: dict[str, int] = field(default_factory=dict)

    def at_or_above(self, severity: Severity) -> list[Finding]:
        """Findings that trip ``--fail-on severity`` (REVIEW ranks lowest, so it means "any finding")."""
        return [f for f in self.findings if f.severity.rank >= severity.rank]


def _finding(check: Check, result: Result, found_at: datetime) -> Finding:
    meta = check.meta
    region = result.region if result.region and result.region != "global" else None
    verify = meta.verify.replace("{resource}", result.resource).replace("{region}", region or "us-east-1")
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


def evaluate(evidence: AwsEvidence | None, source: str = "api") -> AuditReport:
    """Run every registered check over the evidence (None: nothing in scope)."""
    checks = all_checks()
    findings: list[Finding] = []
    unassessed: list[tuple[Check, Result]] = []
    passed: Counter[str] = Counter()
    results: list[Result] = []
    review: list[ReviewItem] = []
    if evidence is not None:
        inventory = parse_evidence(evidence)
        review = review_items(inventory)
        for check in checks:
            for result in check.run(inventory):
                results.append(result)
                if result.status is Status.FAIL:
                    findings.append(_finding(check, result, evidence.collected_at))
                elif result.status is Status.NOT_ASSESSED:
                    unassessed.append((check, result))
                else:
                    passed[check.meta.id] += 1
    findings.sort(key=lambda f: (f.layer, -f.severity.rank, f.check_id, f.environment or "", f.resource, f.detail))
    layers = []
    for layer in LAYERS:
        layer_checks = [c for c in checks if c.meta.layer == layer.number]
        ids = {c.meta.id for c in layer_checks}
        layers.append(_layer_status(
            layer, layer_checks, [f for f in findings if f.layer == layer.number],
            sum(1 for c, _ in unassessed if c.meta.layer == layer.number),
            sum(n for cid, n in passed.items() if cid in ids), evidence is not None))
    return AuditReport(
        evaluated_at=evidence.collected_at if evidence else datetime.now().astimezone(),
        source=source if evidence else "nothing in scope",
        account_id=evidence.account_id if evidence else None,
        regions=evidence.regions if evidence else (),
        layers=layers, findings=findings, not_assessed=unassessed, passed=passed, checks=checks, results=results,
        review=review,
        api_calls=dict(evidence.api_calls) if evidence else {},
    )
