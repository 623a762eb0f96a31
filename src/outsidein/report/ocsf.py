"""OCSF 1.x Detection Finding events (class 2004, category 2 Findings) for a SIEM or security data lake.

A JSON array with one ``Create`` event per finding (status ``New``), plus one per finding the reviewed
baseline set aside (status ``Suppressed``). ``finding_info.uid`` is our fingerprint, so a consumer can
deduplicate across audits.
"""

from __future__ import annotations

import json
from typing import Any

from outsidein.audit import AuditReport
from outsidein.layers import LAYER_BY_NUMBER
from outsidein.models import Finding, Severity
from outsidein.report.common import TOOL_NAME, tool_version

OCSF_VERSION = "1.3.0"
CLASS_UID, CLASS_NAME = 2004, "Detection Finding"
CATEGORY_UID, CATEGORY_NAME = 2, "Findings"
ACTIVITY_CREATE = 1
SEVERITY_ID = {  # OCSF: 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal, 99 Other
    Severity.CRITICAL: (5, "Critical"),
    Severity.HIGH: (4, "High"),
    Severity.MEDIUM: (3, "Medium"),
    Severity.LOW: (2, "Low"),
    Severity.REVIEW: (1, "Informational"),
}
STATUS_NEW, STATUS_SUPPRESSED = (1, "New"), (3, "Suppressed")


def _ms(report: AuditReport) -> int:
    return int(report.evaluated_at.timestamp() * 1000)


def finding_event(f: Finding, report: AuditReport, source: str | None = None,
                  status: tuple[int, str] = STATUS_NEW, suppression: str | None = None) -> dict[str, Any]:
    severity_id, severity = SEVERITY_ID[f.severity]
    layer = LAYER_BY_NUMBER.get(f.layer)
    found_ms = int((f.first_seen or f.found_at).timestamp() * 1000)
    resource: dict[str, Any] = {"uid": f.resource, "name": f.resource}
    if source:
        resource["type"] = source
    if f.region:
        resource["region"] = f.region
    if f.environment:
        resource["labels"] = [f"environment:{f.environment}"]
    due = f.due
    event: dict[str, Any] = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "class_uid": CLASS_UID,
        "class_name": CLASS_NAME,
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": f"{CLASS_NAME}: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status[0],
        "status": status[1],
        "time": _ms(report),
        "message": f.detail or f.title,
        "finding_info": {
            "uid": f.fingerprint,
            "title": f.title,
            "desc": f.detail,
            "types": [f"Layer {f.layer}: {layer.domain}" if layer else f"Layer {f.layer}"],
            "analytic": {"uid": f.check_id, "name": f.check_id, "type_id": 1, "type": "Rule"},
            "created_time": found_ms,
            "first_seen_time": found_ms,
            "last_seen_time": _ms(report),
        },
        "resources": [resource],
        "remediation": {"desc": f"{f.remediation}\nVerify: {f.verify}"},
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": TOOL_NAME, "vendor_name": TOOL_NAME, "version": tool_version()},
            "uid": f"{f.fingerprint}-{_ms(report)}",
        },
        "unmapped": {
            "outsidein": {"severity": f.severity.value, "layer": f.layer, "environment": f.environment,
                          "due": due.isoformat() if due else None, "verify": f.verify,
                          "source": report.source, "owner": f.owner or "unassigned", "state": f.state,
                          "overdue": f.is_overdue(report.evaluated_at)},
        },
    }
    if suppression:
        event["status_detail"] = suppression
    if f.region and report.account_id:
        event["cloud"] = {"provider": "AWS", "region": f.region, "account": {"uid": report.account_id}}
    return event


def report_ocsf(report: AuditReport) -> list[dict[str, Any]]:
    sources = {c.meta.id: c.source for c in report.checks}
    events = [finding_event(f, report, sources.get(f.check_id)) for f in report.findings]
    for s in report.suppressed:
        why = f"{s.entry.status}: {s.entry.reason}"
        events.append(finding_event(s.finding, report, sources.get(s.finding.check_id), STATUS_SUPPRESSED, why))
    return events


def render_ocsf(report: AuditReport) -> str:
    return json.dumps(report_ocsf(report), indent=2) + "\n"
