"""Markdown for a pull-request or issue comment (GitHub-flavoured).

The twelve-row dashboard, then overdue findings (escalated), then the rest grouped by severity (worst first;
long groups collapsed in ``<details>``), then how to fix and verify each failing check, then what was not
assessed. The whole comment
stays under GitHub's 65,536-character limit: rows that do not fit are left out and a note says how many.
"""

from __future__ import annotations

import re
from datetime import datetime

from outsidein.audit import AuditReport
from outsidein.models import Finding, Severity
from outsidein.report.common import by_severity, due_text, owner_of, utc_text

GITHUB_COMMENT_LIMIT = 65_536
COLLAPSE_AFTER = 10  # a severity group longer than this is collapsed
_RESERVE = 600  # kept free for closing tags and the truncation note

SLA_TEXT = {
    Severity.CRITICAL: "fix within 24 h",
    Severity.HIGH: "fix within 7 days",
    Severity.MEDIUM: "fix within 30 days",
    Severity.LOW: "fix within 90 days",
    Severity.REVIEW: "review as scheduled",
}


_CODE_SPAN = re.compile(r"(`[^`\n]*`)")


def cell(text: str | None) -> str:
    """Table-cell safe: no pipes or newlines, and no raw HTML outside code spans (inside them it shows as is)."""
    if not text:
        return "-"
    parts = _CODE_SPAN.split(text.replace("\r", " ").replace("\n", " "))
    out = [part if i % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
           for i, part in enumerate(parts)]
    return "".join(out).replace("|", "\\|")


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.used = 0
        self.full = False

    def add(self, text: str, reserve: int = _RESERVE) -> bool:
        if self.full or self.used + len(text) + 1 + reserve > self.limit:
            self.full = True
            return False
        self.parts.append(text)
        self.used += len(text) + 1
        return True

    def force(self, text: str) -> None:
        self.parts.append(text)
        self.used += len(text) + 1


def _finding_row(f: Finding, now: datetime, with_severity: bool = False) -> str:
    due = f"**OVERDUE** {due_text(f)}" if f.is_overdue(now) else due_text(f)
    severity = f"| {f.severity.value} " if with_severity else ""
    return (f"{severity}| `{cell(f.check_id)}` | {cell(f.resource)} | {cell(f.environment)} | {cell(f.region)} | "
            f"{cell(owner_of(f))} | {due} | {cell(f.detail)} |")


def render_markdown(report: AuditReport, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    out = _Budget(limit)
    findings = report.findings
    counts = ", ".join(f"{len(items)} {s.value}" for s, items in by_severity(findings))
    late = len(report.overdue())
    out.force(f"## outsidein audit: {len(findings)} finding{'s' if len(findings) != 1 else ''}"
              + (f" ({counts})" if counts else "") + (f", **{late} overdue**" if late else ""))
    out.force("")
    scope = [f"evidence: {cell(report.source)}", f"at {utc_text(report.evaluated_at)}"]
    if report.account_id:
        scope.append(f"account {report.account_id}")
    if report.regions:
        scope.append(f"regions {', '.join(report.regions)}")
    if report.hosts:
        scope.append(f"hosts {', '.join(report.hosts)}")
    out.force(", ".join(scope))
    out.force("")
    out.force("| # | Domain | Key risk area | Status | Notes |")
    out.force("|---:|---|---|---|---|")
    for ls in report.layers:
        status = f"**{ls.status}**" if ls.status == "FAIL" else ls.status
        out.force(f"| {ls.layer.number:02d} | {ls.layer.domain} | {ls.layer.risk_area} | {status} | {cell(ls.note)} |")
    out.force("")

    shown = 0
    if not findings:
        out.force("No findings.")
        out.force("")
    now = report.evaluated_at
    overdue = [f for f in findings if f.is_overdue(now)]
    if overdue and out.add(f"### OVERDUE ({len(overdue)}): escalated, past first seen + SLA") and out.add(""):
        out.force("| Severity | Check | Resource | Env | Region | Owner | Due | Detail |")
        out.force("|---|---|---|---|---|---|---|---|")
        for f in overdue:
            if not out.add(_finding_row(f, now, with_severity=True)):
                break
            shown += 1
        out.force("")
    for severity, items in by_severity([f for f in findings if not f.is_overdue(now)]):
        if out.full:
            break
        heading = f"### {severity.value} ({len(items)}): {SLA_TEXT[severity]}"
        collapse = len(items) > COLLAPSE_AFTER
        if not out.add(heading) or not out.add(""):
            break
        if collapse:
            out.force(f"<details><summary>{len(items)} {severity.value} findings</summary>")
            out.force("")
        out.force("| Check | Resource | Env | Region | Owner | Due | Detail |")
        out.force("|---|---|---|---|---|---|---|")
        for f in items:
            if not out.add(_finding_row(f, now)):
                break
            shown += 1
        out.force("")
        if collapse:
            out.force("</details>")
            out.force("")

    if findings and not out.full:
        seen: dict[str, Finding] = {}
        for f in findings:
            seen.setdefault(f.check_id, f)
        templates = {c.meta.id: c.meta.verify for c in report.checks}
        fixes = ["<details><summary>How to fix and verify each check</summary>", ""]
        for check_id, f in seen.items():
            verify = templates.get(check_id, f.verify) if sum(1 for g in findings if g.check_id == check_id) > 1 \
                else f.verify
            fixes += [f"- `{check_id}`: {cell(f.remediation)}", "", "  ```sh", f"  {verify}", "  ```", ""]
        fixes += ["</details>", ""]
        out.add("\n".join(fixes))

    if report.not_assessed and not out.full:
        rows = [f"<details><summary>Not assessed ({len(report.not_assessed)}): never counted as PASS</summary>",
                "", "| Check | Resource / scope | Reason |", "|---|---|---|"]
        rows += [f"| `{check.meta.id}` | {cell(result.resource)} | {cell(result.reason)} |"
                 for check, result in report.not_assessed]
        rows += ["", "</details>", ""]
        out.add("\n".join(rows))

    if report.suppressed and not out.full:
        out.add(f"{len(report.suppressed)} finding(s) set aside by the reviewed baseline.")
        out.add("")

    if shown < len(findings) or out.full:
        omitted = len(findings) - shown
        note = (f"**Truncated to fit a {limit:,}-character comment:** {omitted} of {len(findings)} findings"
                " not shown" if omitted else f"**Truncated to fit a {limit:,}-character comment**")
        out.force(note + "; the full list is in `outsidein audit --format json` or `--format html`.")
    return "\n".join(out.parts) + "\n"
