"""What the user sees of the findings history: each finding's first-seen and due dates, owner, state and
whether it is overdue, filled into the report before it is rendered.

With a store, a finding's first-seen, owner and lifecycle state come from the store (after this audit was stored)
and its due date is first-seen + its severity's SLA; without one, the scope's ``[[owners]]`` rules still assign
owners and the due date counts from this audit's clock. Overdue findings (past due, not an accepted risk) are
listed first; otherwise the outside-in order is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from outsidein.audit import AuditReport
from outsidein.models import Finding
from outsidein.owners import Owners

if TYPE_CHECKING:
    from outsidein.store import StoredFinding


def annotate(report: AuditReport, owners: Owners | None = None,
             history: Mapping[str, StoredFinding] | None = None) -> AuditReport:
    """A copy of ``report`` whose findings (and baseline-suppressed findings) carry owner, first-seen and state;
    fingerprints are unchanged."""
    owners = owners or Owners()
    now = report.evaluated_at

    def one(finding: Finding) -> Finding:
        stored = history.get(finding.fingerprint) if history else None
        if stored is None:
            return replace(finding, owner=owners.owner(finding))
        return replace(finding, first_seen=stored.first_seen, owner=stored.owner,
                       state=stored.effective_status(now))

    findings = [one(f) for f in report.findings]
    findings.sort(key=lambda f: not f.is_overdue(now))  # stable: overdue first, each part still outside-in
    suppressed = [replace(s, finding=one(s.finding)) for s in report.suppressed]
    return replace(report, findings=findings, suppressed=suppressed)
