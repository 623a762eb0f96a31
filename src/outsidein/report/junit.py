"""JUnit XML for CI test tabs (GitLab, Jenkins, Azure DevOps, GitHub test reporters).

One ``<testsuite>`` per layer, in audit order; one ``<testcase>`` per check × resource from every verdict in
the report: ``<failure>`` when the check failed on it (all its findings in the message body), ``<skipped>``
with the reason when it could not be assessed or the reviewed baseline set the finding aside, a plain pass
otherwise. A layer nothing ran on gets one skipped case saying why, so no layer silently reads green.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime

from outsidein.audit import AuditReport
from outsidein.models import Finding, Result, Status, fingerprint
from outsidein.report.common import due_text, owner_of


@dataclass
class _Case:
    check_id: str
    resource: str
    title: str
    results: list[Result] = field(default_factory=list)


def _failure_text(findings: list[Finding], now: datetime) -> str:
    lines = []
    for f in findings:
        mark = "OVERDUE  " if f.is_overdue(now) else ""
        lines += [f"{mark}{f.severity.value}  due {due_text(f)}  owner {owner_of(f)}  env {f.environment or '-'}  "
                  f"region {f.region or '-'}", f"  {f.detail}"]
    first = findings[0]
    lines += ["", f"fix:    {first.remediation}", f"verify: {first.verify}"]
    return "\n".join(lines)


def report_junit(report: AuditReport) -> ET.Element:
    titles = {c.meta.id: c.meta.title for c in report.checks}
    layer_of = {c.meta.id: c.meta.layer for c in report.checks}
    active: dict[tuple[str, str], list[Finding]] = {}
    for f in report.findings:
        active.setdefault((f.check_id, f.resource), []).append(f)
    suppressed = {s.finding.fingerprint: s for s in report.suppressed}
    cases: dict[int, dict[tuple[str, str], _Case]] = {}
    for result in report.results:
        layer = layer_of.get(result.check_id, 0)
        key = (result.check_id, result.resource)
        case = cases.setdefault(layer, {}).setdefault(
            key, _Case(result.check_id, result.resource, titles.get(result.check_id, result.check_id)))
        case.results.append(result)

    stamp = report.evaluated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites", name=f"outsidein audit ({report.source})")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for ls in report.layers:
        number = ls.layer.number
        suite = ET.SubElement(root, "testsuite", name=f"L{number:02d} {ls.layer.domain}", timestamp=stamp)
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        layer_cases = cases.get(number, {})
        for (check_id, resource), case in layer_cases.items():
            element = ET.SubElement(suite, "testcase", classname=f"outsidein.L{number:02d}.{check_id}",
                                    name=f"{check_id} [{resource}]", time="0")
            counts["tests"] += 1
            findings = active.get((check_id, resource))
            if findings:
                worst = max(findings, key=lambda f: f.severity.rank)
                message = f"{worst.severity.value}: {case.title}: {worst.detail}"
                if len(findings) > 1:
                    message += f" (and {len(findings) - 1} more)"
                failure = ET.SubElement(element, "failure", message=message, type=worst.severity.value)
                failure.text = _failure_text(findings, report.evaluated_at)
                counts["failures"] += 1
                continue
            failed = [r for r in case.results if r.status is Status.FAIL]
            unassessed = [r for r in case.results if r.status is Status.NOT_ASSESSED]
            if failed:
                entries = [suppressed[fp].entry for r in failed
                           if (fp := fingerprint(r.check_id, r.resource, r.region, r.detail)) in suppressed]
                why = "; ".join(dict.fromkeys(f"{e.status}: {e.reason}" for e in entries)) or "set aside"
                ET.SubElement(element, "skipped", message=f"suppressed by the reviewed baseline ({why})")
                counts["skipped"] += 1
            elif unassessed:
                reasons = "; ".join(dict.fromkeys(r.reason for r in unassessed))
                ET.SubElement(element, "skipped", message=f"not assessed: {reasons}")
                counts["skipped"] += 1
        if not layer_cases:
            element = ET.SubElement(suite, "testcase", classname=f"outsidein.L{number:02d}",
                                    name=f"layer {number:02d} {ls.layer.domain}", time="0")
            ET.SubElement(element, "skipped", message=ls.note or "not assessed")
            counts["tests"] += 1
            counts["skipped"] += 1
        for name, value in counts.items():
            suite.set(name, str(value))
            totals[name] += value
        suite.set("errors", "0")
        suite.set("time", "0")
    for name, value in totals.items():
        root.set(name, str(value))
    root.set("errors", "0")
    root.set("time", "0")
    return root


def render_junit(report: AuditReport) -> str:
    root = report_junit(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
