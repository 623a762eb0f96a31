"""The machine-readable report (schema documented in docs/report-schema.md)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from outsidein.audit import AuditReport
from outsidein.models import Finding, Severity

SCHEMA = "outsidein-report/1"


def finding_json(f: Finding, now: datetime) -> dict[str, Any]:
    """One finding; ``now`` is the audit clock its ``overdue`` is judged against."""
    due = f.due
    return {
        "fingerprint": f.fingerprint,
        "check_id": f.check_id,
        "layer": f.layer,
        "severity": f.severity.value,
        "title": f.title,
        "resource": f.resource,
        "environment": f.environment,
        "region": f.region,
        "detail": f.detail,
        "remediation": f.remediation,
        "verify": f.verify,
        "found_at": f.found_at.isoformat(),
        "first_seen": (f.first_seen or f.found_at).isoformat(),
        "due": due.isoformat() if due else None,
        "overdue": f.is_overdue(now),
        "owner": f.owner or "unassigned",
        "state": f.state,
    }


def report_json(report: AuditReport) -> dict[str, Any]:
    counts = Counter(f.severity.value for f in report.findings)
    return {
        "schema": SCHEMA,
        "evaluated_at": report.evaluated_at.isoformat(),
        "source": report.source,
        "account_id": report.account_id,
        "regions": list(report.regions),
        "hosts": list(report.hosts),
        "nginx": list(report.nginx),
        "tls": list(report.tls),
        "captures": list(report.captures),
        "summary": {
            "findings": {s.value: counts[s.value] for s in Severity},
            "not_assessed": len(report.not_assessed),
            "passed": sum(report.passed.values()),
            "overdue": len(report.overdue()),
        },
        "layers": [
            {"number": ls.layer.number, "name": ls.layer.domain, "risk_area": ls.layer.risk_area,
             "status": ls.status, "note": ls.note, "findings": ls.findings, "not_assessed": ls.not_assessed,
             "passed": ls.passed}
            for ls in report.layers
        ],
        "findings": [finding_json(f, report.evaluated_at) for f in report.findings],
        "not_assessed": [
            {"check_id": check.meta.id, "layer": check.meta.layer, "title": check.meta.title,
             "resource": result.resource, "region": result.region, "reason": result.reason}
            for check, result in report.not_assessed
        ],
        "review": [
            {"layer": item.layer, "topic": item.topic, "resource": item.resource, "region": item.region,
             "environment": item.environment, "text": item.text}
            for item in report.review
        ],
        "suppressed": [
            {**finding_json(s.finding, report.evaluated_at), "baseline_status": s.entry.status,
             "baseline_reason": s.entry.reason,
             "baseline_expires": s.entry.expires.isoformat() if s.entry.expires else None}
            for s in report.suppressed
        ],
        "baseline_expired": [
            {"fingerprint": e.fingerprint, "check_id": e.check_id, "resource": e.resource, "reason": e.reason,
             "expired": e.expires.isoformat() if e.expires else None}
            for e in report.expired_acceptances
        ],
        "api_calls": report.api_calls,
    }


def render_json(report: AuditReport) -> str:
    return json.dumps(report_json(report), indent=2) + "\n"
