"""Tickets as files: CSV for Jira's CSV importer, Markdown, JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from outsidein.tickets.build import PRIORITY, Ticket

# Jira's importer maps each column by its header; a repeated "Labels" column adds one label each.
CSV_COLUMNS = ("Summary", "Description", "Priority", "Due Date", "Assignee")
LABEL_COLUMNS = 5


def render_csv(tickets: list[Ticket]) -> str:
    """Due Date is ``yyyy-MM-dd``: set that date format in the importer's settings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(["Labels"] * LABEL_COLUMNS)])
    for t in tickets:
        labels = list(t.labels)[:LABEL_COLUMNS]
        writer.writerow([t.summary, t.description(), PRIORITY[t.severity], t.due.date().isoformat() if t.due else "",
                         t.owner, *labels, *([""] * (LABEL_COLUMNS - len(labels)))])
    return buffer.getvalue()


def render_markdown(tickets: list[Ticket], now: dt.datetime) -> str:
    lines = [f"# Tickets ({len(tickets)})", "", f"Open findings as of {now.strftime('%Y-%m-%d %H:%M UTC')}, one ticket "
             "per check and environment; overdue first.", ""]
    if not tickets:
        lines.append("No open findings.")
    for t in tickets:
        due = t.due.strftime("%Y-%m-%d %H:%M UTC") if t.due else "as scheduled"
        lines += [f"## {t.summary}", "",
                  f"- **Owner:** {t.owner}", f"- **Severity:** {t.severity.value} (priority {PRIORITY[t.severity]})",
                  f"- **Due:** {due}{' — **OVERDUE**' if t.overdue else ''}", f"- **Check:** `{t.check_id}` "
                  f"(layer {t.layer})", f"- **Key:** `{t.key}`", "",
                  "| Resource | Region | Detail | Severity | Due | Owner | Fingerprint |",
                  "|---|---|---|---|---|---|---|"]
        for f in t.findings:
            cells = [f.resource, f.region or "-", f.detail, f.severity.value,
                     f.due.strftime("%Y-%m-%d") if f.due else "-", f.owner, f"`{f.fingerprint}`"]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        lines += ["", f"**Fix:** {t.remediation}", "", "**Verify:**", "", "```sh", *t.verify, "```", "", t.marker, ""]
    return "\n".join(lines) + "\n"


def render_json(tickets: list[Ticket], now: dt.datetime) -> str:
    return json.dumps({"schema": "outsidein-tickets/1", "generated_at": now.isoformat(),
                       "tickets": [t.to_json(now) for t in tickets]}, indent=2) + "\n"
