"""Open findings as tickets: one per (check, environment), listing its resources.

A ticket carries the worst severity and the earliest due date of its findings, the owner most of its resources
have, the remediation and every distinct verification command. Its key (``outsidein-`` and a hash of the check
and environment) is stable across runs: it is the label a tracker is searched by, so a re-run updates the same
ticket instead of opening a duplicate; the fingerprints are listed in a hidden marker in the description.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outsidein.models import Finding, Severity
from outsidein.store import StoredFinding, sort_findings

if TYPE_CHECKING:
    from outsidein.audit import AuditReport

LABEL = "outsidein"
PRIORITY = {  # Jira's default priority scheme
    Severity.CRITICAL: "Highest",
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
    Severity.REVIEW: "Lowest",
}


def ticket_key(check_id: str, environment: str | None) -> str:
    digest = hashlib.sha256(f"{check_id}\x1f{environment or ''}".encode()).hexdigest()[:12]
    return f"{LABEL}-{digest}"


@dataclass(frozen=True)
class Ticket:
    key: str
    check_id: str
    environment: str | None
    layer: int
    title: str
    severity: Severity
    due: dt.datetime | None
    owner: str
    remediation: str
    verify: tuple[str, ...]
    findings: tuple[StoredFinding, ...]
    overdue: bool

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(f.fingerprint for f in self.findings)

    @property
    def summary(self) -> str:
        env = self.environment or "no environment"
        count = len(self.findings)
        prefix = "OVERDUE " if self.overdue else ""
        return f"{prefix}[{self.severity.value}] {self.title} ({env}, {count} resource{'s' if count != 1 else ''})"

    @property
    def labels(self) -> tuple[str, ...]:
        labels = [LABEL, self.key, f"layer-{self.layer}", f"severity-{self.severity.value.lower()}"]
        if self.overdue:
            labels.append("overdue")
        return tuple(labels)

    @property
    def marker(self) -> str:
        """The hidden marker a tracker keeps in the description: the ticket key and its fingerprints."""
        return f"<!-- outsidein:ticket={self.key} fingerprints={','.join(self.fingerprints)} -->"

    def description(self) -> str:
        """Plain text that reads well in Jira and renders as Markdown on GitHub."""
        due = self.due.strftime("%Y-%m-%d %H:%M UTC") if self.due else "as scheduled (REVIEW)"
        lines = [
            f"Check: {self.check_id} (layer {self.layer})",
            f"Environment: {self.environment or '-'}",
            f"Severity: {self.severity.value}    Due: {due}{'    OVERDUE' if self.overdue else ''}",
            f"Owner: {self.owner}",
            "",
            "Resources:",
        ]
        for f in self.findings:
            when = f.due.strftime("%Y-%m-%d") if f.due else "-"
            where = f" [{f.region}]" if f.region else ""
            lines.append(f"- {f.resource}{where}: {f.detail} ({f.severity.value}, due {when}, owner {f.owner}, "
                         f"status {f.status}, fingerprint {f.fingerprint})")
        lines += ["", "Remediation:", self.remediation, "", "Verification (run after the fix; it must show the "
                  "control holding):"]
        lines += [f"    {command}" for command in self.verify]
        lines += ["", self.marker]
        return "\n".join(lines)

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "key": self.key, "summary": self.summary, "check_id": self.check_id, "environment": self.environment,
            "layer": self.layer, "title": self.title, "severity": self.severity.value,
            "priority": PRIORITY[self.severity], "due": self.due.isoformat() if self.due else None,
            "overdue": self.overdue, "owner": self.owner, "remediation": self.remediation, "verify": list(self.verify),
            "labels": list(self.labels), "fingerprints": list(self.fingerprints),
            "findings": [f.to_json(now) for f in self.findings],
        }


def build_tickets(findings: list[StoredFinding], now: dt.datetime) -> list[Ticket]:
    """Group open findings by (check, environment); overdue tickets first, then worst severity, earliest due."""
    groups: dict[tuple[str, str | None], list[StoredFinding]] = {}
    for f in findings:
        if f.is_open(now):
            groups.setdefault((f.check_id, f.environment), []).append(f)
    tickets = []
    for (check_id, environment), items in groups.items():
        items = sort_findings(items, now)
        worst = max(items, key=lambda f: f.severity.rank)
        dues = [f.due for f in items if f.due is not None]
        owners = Counter(f.owner for f in items)
        top = max(owners.values())
        owner = next(f.owner for f in items if owners[f.owner] == top)  # ties: the owner of the most urgent
        verify = tuple(dict.fromkeys(f.verify for f in items))
        tickets.append(Ticket(
            key=ticket_key(check_id, environment), check_id=check_id, environment=environment, layer=worst.layer,
            title=worst.title, severity=worst.severity, due=min(dues) if dues else None, owner=owner,
            remediation=worst.remediation, verify=verify, findings=tuple(items),
            overdue=any(f.overdue(now) for f in items),
        ))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    tickets.sort(key=lambda t: (not t.overdue, -t.severity.rank, t.due or far, t.layer, t.check_id,
                                t.environment or ""))
    return tickets


def stored_view(finding: Finding) -> StoredFinding:
    """A report's finding as the ticket builder reads it (first seen, owner and state as the report has them)."""
    first_seen = finding.first_seen or finding.found_at
    return StoredFinding(
        fingerprint=finding.fingerprint, check_id=finding.check_id, layer=finding.layer, severity=finding.severity,
        title=finding.title, resource=finding.resource, region=finding.region, environment=finding.environment,
        detail=finding.detail, remediation=finding.remediation, verify=finding.verify,
        owner=finding.owner or "unassigned", status=finding.state or "open", first_seen=first_seen,
        last_seen=finding.found_at, due=finding.due, first_audit=0, last_audit=0,
    )


def report_tickets(report: AuditReport) -> list[Ticket]:
    """The tickets of one audit report (the HTML report's section): the same grouping as ``outsidein tickets``."""
    return build_tickets([stored_view(f) for f in report.findings], report.evaluated_at)
