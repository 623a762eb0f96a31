"""The typed results every layer produces: severities, check metadata, results, findings."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Severity(StrEnum):
    """The playbook's five tiers; the SLA is what the team commits to in writing."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    REVIEW = "REVIEW"

    @property
    def rank(self) -> int:
        """Higher is worse; REVIEW ranks lowest because it carries no deadline."""
        return _RANK[self]

    @property
    def sla(self) -> timedelta | None:
        """Remediation window, or None for REVIEW ("as scheduled")."""
        return _SLA[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().upper())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from None


_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.REVIEW: 0,
}
_SLA = {
    Severity.CRITICAL: timedelta(hours=24),
    Severity.HIGH: timedelta(days=7),
    Severity.MEDIUM: timedelta(days=30),
    Severity.LOW: timedelta(days=90),
    Severity.REVIEW: None,
}


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    NOT_ASSESSED = "NOT_ASSESSED"


@dataclass(frozen=True)
class CheckMeta:
    """What a check is: its id, layer, playbook severity, and how to fix and prove the fix."""

    id: str
    layer: int
    title: str
    severity: Severity
    remediation: str
    verify: str  # a command template; {resource} and {region} are filled in per finding
    requires: tuple[str, ...] = ()  # evidence keys ("ec2.describe_security_groups") the check reads


@dataclass(frozen=True)
class Result:
    """One check's verdict on one resource (or on a scope such as a region)."""

    check_id: str
    status: Status
    resource: str
    region: str | None = None
    environment: str | None = None
    detail: str = ""  # what exactly is wrong; part of the fingerprint, so keep it stable
    severity: Severity | None = None  # overrides the check's default (e.g. port-dependent)
    reason: str = ""  # why NOT_ASSESSED
    verify: str | None = None  # overrides the check's verify template for this resource (e.g. a file, not a port)


def fail(
    check_id: str,
    resource: str,
    detail: str,
    *,
    region: str | None = None,
    environment: str | None = None,
    severity: Severity | None = None,
    verify: str | None = None,
) -> Result:
    return Result(check_id, Status.FAIL, resource, region, environment, detail, severity, verify=verify)


def passed(
    check_id: str, resource: str, *, region: str | None = None, environment: str | None = None
) -> Result:
    return Result(check_id, Status.PASS, resource, region, environment)


def not_assessed(
    check_id: str, resource: str, reason: str, *, region: str | None = None
) -> Result:
    return Result(check_id, Status.NOT_ASSESSED, resource, region, reason=reason)


@dataclass(frozen=True)
class Finding:
    """A failed result joined with its check's metadata: what a ticket is made of."""

    check_id: str
    layer: int
    severity: Severity
    title: str
    resource: str
    region: str | None
    environment: str | None
    detail: str
    remediation: str
    verify: str
    found_at: datetime
    fingerprint: str = field(default="")
    # Filled in after evaluation (see outsidein.lifecycle); never part of the fingerprint.
    first_seen: datetime | None = None  # from the findings store: when this fingerprint was first seen
    owner: str | None = None  # from the scope's [[owners]] rules (or the store)
    state: str | None = None  # the store's lifecycle state: new, open, reopened or accepted

    @property
    def due(self) -> datetime | None:
        """First seen + the severity's SLA (this audit's clock when there is no history)."""
        sla = self.severity.sla
        return (self.first_seen or self.found_at) + sla if sla else None

    def is_overdue(self, now: datetime) -> bool:
        """Past its due date and not an accepted risk."""
        due = self.due
        return due is not None and due < now and self.state != "accepted"


def fingerprint(check_id: str, resource: str, region: str | None, detail: str) -> str:
    """Stable identity of a finding across audits: same check, resource and detail."""
    key = "\x1f".join((check_id, region or "", resource, detail))
    return hashlib.sha256(key.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class ReviewItem:
    """Something a person should re-confirm every audit (not a finding): e.g. route-table associations."""

    layer: int
    topic: str
    resource: str
    region: str | None
    environment: str | None
    text: str
