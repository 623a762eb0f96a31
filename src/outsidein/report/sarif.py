"""SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

One rule per check that produced a finding; one result per finding, suppressed ones included with their
baseline justification. ``path:line`` resources get a physical location (file and line), everything else
(security groups, hosts, endpoints) a logical one. Checks that could not run become tool notifications.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from outsidein.audit import AuditReport
from outsidein.models import Finding, Severity
from outsidein.report.common import TOOL_NAME, source_location, tool_version

SARIF_SCHEMA = "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
FINGERPRINT_KEY = "outsidein/v1"
SRCROOT = "SRCROOT"

LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.REVIEW: "note",
}
# GitHub code scanning ranks security results by this CVSS-like score (>= 9 critical, >= 7 high, >= 4 medium).
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "7.5",
    Severity.MEDIUM: "5.0",
    Severity.LOW: "2.0",
    Severity.REVIEW: "0.0",
}


def _artifact(path: str, root: Path) -> dict[str, Any]:
    """Relative to the working directory (``%SRCROOT%``) when inside it, else an absolute file URI."""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            relative = candidate.relative_to(root)
        except ValueError:
            return {"uri": "file://" + quote(candidate.as_posix())}
        return {"uri": quote(relative.as_posix()), "uriBaseId": SRCROOT}
    return {"uri": quote(candidate.as_posix()), "uriBaseId": SRCROOT}


def _locations(f: Finding, root: Path) -> dict[str, Any]:
    where = source_location(f.resource)
    if where is not None:
        return {"locations": [{"physicalLocation": {
            "artifactLocation": _artifact(where.path, root), "region": {"startLine": where.line}}}]}
    qualified = "/".join(part for part in (f.environment, f.region, f.resource) if part)
    return {"locations": [{"logicalLocations": [
        {"name": f.resource, "fullyQualifiedName": qualified, "kind": "resource"}]}]}


def _rule(f: Finding, template: str, default: Severity) -> dict[str, Any]:
    help_text = f"Fix: {f.remediation}\n\nVerify: {template}"
    return {
        "id": f.check_id,
        "name": "".join(part.capitalize() for part in f.check_id.split("-")),
        "shortDescription": {"text": f.title},
        "fullDescription": {"text": f"Layer {f.layer}: {f.title}."},
        "help": {"text": help_text,
                 "markdown": f"**Fix:** {f.remediation}\n\n**Verify:**\n\n```sh\n{template}\n```"},
        "defaultConfiguration": {"level": LEVEL[default]},
        "properties": {"tags": ["security", f"layer-{f.layer}"], "layer": f.layer},
    }


def _result(f: Finding, rule_index: int, root: Path, now: datetime) -> dict[str, Any]:
    due = f.due
    return {
        "ruleId": f.check_id,
        "ruleIndex": rule_index,
        "level": LEVEL[f.severity],
        "message": {"text": f"{f.detail} [{f.resource}]" if f.detail else f"{f.title} [{f.resource}]"},
        **_locations(f, root),
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": {
            "severity": f.severity.value,
            "security-severity": SECURITY_SEVERITY[f.severity],
            "layer": f.layer,
            "resource": f.resource,
            "environment": f.environment,
            "region": f.region,
            "due": due.isoformat() if due else None,
            "first_seen": (f.first_seen or f.found_at).isoformat(),
            "overdue": f.is_overdue(now),
            "owner": f.owner or "unassigned",
            "state": f.state,
            "verify": f.verify,
        },
    }


def report_sarif(report: AuditReport, root: Path | None = None) -> dict[str, Any]:
    root = (root or Path(os.getcwd())).resolve()
    templates = {c.meta.id: c.meta.verify for c in report.checks}
    defaults = {c.meta.id: c.meta.severity for c in report.checks}
    everything = [(f, None) for f in report.findings] + [(s.finding, s.entry) for s in report.suppressed]
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for f, _ in everything:
        if f.check_id not in index:
            index[f.check_id] = len(rules)
            rules.append(_rule(f, templates.get(f.check_id, f.verify), defaults.get(f.check_id, f.severity)))
    results = []
    for f, entry in everything:
        result = _result(f, index[f.check_id], root, report.evaluated_at)
        if entry is not None:
            justification = f"{entry.status}: {entry.reason}"
            if entry.expires:
                justification += f" (until {entry.expires.isoformat()})"
            result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": justification}]
        results.append(result)
    notifications = [
        {"level": "warning",
         "message": {"text": f"not assessed: {result.resource}: {result.reason}"},
         "associatedRule": {"id": check.meta.id}}
        for check, result in report.not_assessed
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": tool_version(),
                                "semanticVersion": tool_version(), "rules": rules}},
            "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri() + "/"}},
            "invocations": [{"executionSuccessful": True, "endTimeUtc": _utc(report),
                             "toolExecutionNotifications": notifications}],
            "results": results,
            "properties": {"source": report.source, "account_id": report.account_id,
                           "regions": list(report.regions)},
        }],
    }


def _utc(report: AuditReport) -> str:
    return report.evaluated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_sarif(report: AuditReport, root: Path | None = None) -> str:
    return json.dumps(report_sarif(report, root), indent=2) + "\n"
