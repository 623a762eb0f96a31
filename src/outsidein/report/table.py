"""The terminal report: the twelve-row dashboard, then findings outside-in, then what was not assessed."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from outsidein.audit import AuditReport
from outsidein.models import Finding, Severity
from outsidein.report.common import first_seen_text, owner_of

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.REVIEW: "magenta",
}
STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "REVIEW": "bold yellow"}


def _due(f: Finding, now: datetime) -> Text:
    due = f.due
    text = Text(due.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if due else "as scheduled")
    if f.is_overdue(now):
        text = Text("OVERDUE ", style="bold white on red") + text
    return text


def dashboard(report: AuditReport) -> Table:
    table = Table(title="Audit dashboard", title_justify="left", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("Domain")
    table.add_column("Key risk area")
    table.add_column("Status")
    table.add_column("Notes", overflow="fold")
    for ls in report.layers:
        table.add_row(f"{ls.layer.number:02d}", ls.layer.domain, ls.layer.risk_area,
                      Text(ls.status, style=STATUS_STYLE[ls.status]), ls.note)
    return table


def findings_view(report: AuditReport) -> Group:
    """Findings grouped by check, one row per resource, outside-in (worst first within each layer); overdue
    findings come first, escalated: a check with overdue and other findings is listed twice, its overdue rows
    with the escalated checks and the rest in its place."""
    now = report.evaluated_at
    groups: dict[tuple[bool, str], list[Finding]] = {}
    for finding in report.findings:
        groups.setdefault((finding.is_overdue(now), finding.check_id), []).append(finding)
    templates = {c.meta.id: c.meta.verify for c in report.checks}
    order = [groups[key] for key in sorted(groups, key=lambda key: (
        not key[0], groups[key][0].layer, -max(f.severity.rank for f in groups[key]), key[1]))]
    parts: list[Table | Text] = []
    for items in order:
        first = items[0]
        commands = {f.verify for f in items}
        if len(commands) == 1:
            verify = first.verify
        else:
            verify = templates.get(first.check_id, first.verify)
            for key in ("resource", "region", "host", "port"):
                verify = verify.replace("{" + key + "}", f"<{key}>")
            verify += "   (filled in per resource in the JSON report)"
        header = Text()
        if first.is_overdue(now):
            header.append("\nOVERDUE", style="bold white on red")
            header.append(f" L{first.layer:02d} {first.title}", style="bold")
        else:
            header.append(f"\nL{first.layer:02d} {first.title}", style="bold")
        header.append(f"  [{first.check_id}]", style="dim")
        header.append(f"\n  fix:    {first.remediation}")
        header.append(f"\n  verify: {verify}", style="dim")
        parts.append(header)
        table = Table(show_header=True, box=None, pad_edge=False, padding=(0, 1))
        table.add_column("Severity", no_wrap=True)
        table.add_column("Due (UTC)", no_wrap=True)
        table.add_column("First seen", no_wrap=True)
        table.add_column("Owner", no_wrap=True)
        table.add_column("Resource", no_wrap=True)
        table.add_column("Env", no_wrap=True)
        table.add_column("Region", no_wrap=True)
        table.add_column("Detail", overflow="fold", ratio=1)
        for f in items:
            table.add_row(Text(f.severity.value, style=SEVERITY_STYLE[f.severity]), _due(f, now),
                          first_seen_text(f), owner_of(f), f.resource, f.environment or "-", f.region or "-",
                          f.detail)
        parts.append(table)
    return Group(*parts)


def not_assessed_view(report: AuditReport) -> Table:
    table = Table(title="Not assessed (never counted as PASS)", title_justify="left")
    table.add_column("Check")
    table.add_column("Resource / scope", overflow="fold")
    table.add_column("Reason", overflow="fold")
    for check, result in report.not_assessed:
        table.add_row(check.meta.id, result.resource, result.reason)
    return table


def review_view(report: AuditReport) -> Table:
    table = Table(title="For review every audit (not findings)", title_justify="left")
    table.add_column("L")
    table.add_column("Topic")
    table.add_column("Resource", no_wrap=True)
    table.add_column("Region", no_wrap=True)
    table.add_column("Env", no_wrap=True)
    table.add_column("Summary", overflow="fold", ratio=1)
    for item in report.review:
        table.add_row(f"{item.layer:02d}", item.topic, item.resource, item.region or "-", item.environment or "-",
                      item.text)
    return table


def render_table(report: AuditReport, console: Console) -> None:
    head = Text()
    head.append("outsidein audit", style="bold")
    if report.account_id or report.regions:
        head.append(f"  account {report.account_id or '(unknown)'}  regions {', '.join(report.regions) or '-'}")
    if report.hosts:
        head.append(f"  hosts {', '.join(report.hosts)}")
    if report.nginx:
        head.append(f"  nginx {', '.join(report.nginx)}")
    if report.tls:
        head.append(f"  tls {len(report.tls)} endpoint(s)/file(s)")
    if report.captures:
        head.append(f"  captures {', '.join(report.captures)}")
    head.append(f"  evidence {report.source}  at {report.evaluated_at.strftime('%Y-%m-%d %H:%M UTC')}")
    console.print(head)
    console.print(dashboard(report))
    if report.findings:
        counts = ", ".join(f"{sum(1 for f in report.findings if f.severity == s)} {s.value}"
                           for s in Severity if any(f.severity == s for f in report.findings))
        console.print(Text(f"\nFindings, outside-in ({len(report.findings)}: {counts})", style="bold underline"))
        overdue = report.overdue()
        if overdue:
            console.print(Text(f"ESCALATED: {len(overdue)} finding(s) past their due date (first seen + SLA): "
                               "listed first, marked OVERDUE", style="bold red"))
        console.print(findings_view(report))
    else:
        console.print(Text("\nNo findings.", style="bold green"))
    if report.suppressed:
        statuses = [s.entry.status for s in report.suppressed]
        kinds = ", ".join(f"{statuses.count(k)} {k.replace('_', ' ')}" for k in ("false_positive", "accepted")
                          if k in statuses)
        console.print(Text(f"\n{len(report.suppressed)} finding(s) set aside by the reviewed baseline ({kinds}); "
                           "listed under suppressed in the JSON report.", style="dim"))
    for entry in report.expired_acceptances:
        console.print(Text(f"Accepted risk expired on {entry.expires}: {entry.check_id or ''} {entry.resource or ''} "
                           f"({entry.fingerprint}) is a finding again: review it.", style="bold yellow"))
    if report.review:
        console.print()
        console.print(review_view(report))
    if report.not_assessed:
        console.print()
        console.print(not_assessed_view(report))
