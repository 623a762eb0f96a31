"""What the report formats share: where a resource lives, SLA buckets, tickets, the tool's identity.

Every format reads only fields that are already masked (a finding's resource and detail, a result's reason):
raw evidence never reaches a report.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import PurePosixPath

from outsidein.audit import AuditReport
from outsidein.models import Finding, Severity

TOOL_NAME = "outsidein"

# A `path:line` resource (provisioning file, NGINX directive) versus `host:port`, `capture:port` or an id.
_PATH_LINE = re.compile(r"^(?P<path>.+):(?P<line>\d+)$")
_FILE_SUFFIXES = {".conf", ".yml", ".yaml", ".json", ".toml", ".tf", ".sh", ".cfg", ".ini", ".py", ".txt",
                  ".env", ".j2", ".service", ".rules", ".v4", ".v6", ".hcl", ".xml", ".properties"}
_NOT_SOURCE_SUFFIXES = {".pcap", ".pcapng", ".cap"}  # `capture.pcap:5432` names a server port, not a line


def tool_version() -> str:
    try:
        return version("outsidein")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"


@dataclass(frozen=True)
class SourceLocation:
    path: str
    line: int


def source_location(resource: str) -> SourceLocation | None:
    """``/etc/nginx/conf.d/shop.conf:33`` → (path, 33); ``app-1:5432``, ``sg-…`` and ARNs → None."""
    match = _PATH_LINE.match(resource)
    if not match or "://" in resource or resource.startswith("arn:"):
        return None
    path, line = match["path"], int(match["line"])
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _NOT_SOURCE_SUFFIXES or line < 1:
        return None
    if "/" in path or suffix in _FILE_SUFFIXES:
        return SourceLocation(path, line)
    return None


def severity_counts(findings: list[Finding]) -> dict[Severity, int]:
    counts = Counter(f.severity for f in findings)
    return {s: counts[s] for s in Severity}


SLA_BUCKETS = ("overdue", "due within 24 h", "due within 7 d", "due within 30 d", "due later", "no deadline")


def sla_bucket(finding: Finding, now: datetime) -> str:
    """Where a finding's due date (first seen + SLA) falls relative to the audit clock; an accepted risk has
    no deadline while its acceptance holds."""
    due = finding.due
    if due is None or finding.state == "accepted":
        return "no deadline"
    left = due - now
    if left < timedelta(0):
        return "overdue"
    for limit, name in ((timedelta(hours=24), "due within 24 h"), (timedelta(days=7), "due within 7 d"),
                        (timedelta(days=30), "due within 30 d")):
        if left <= limit:
            return name
    return "due later"


def sla_buckets(report: AuditReport) -> dict[str, int]:
    counts = Counter(sla_bucket(f, report.evaluated_at) for f in report.findings)
    return {name: counts[name] for name in SLA_BUCKETS}


def due_text(finding: Finding) -> str:
    due = finding.due
    return utc_text(due) if due else "as scheduled"


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def owner_of(finding: Finding) -> str:
    """The finding's owner (the store's, or the scope's ``[[owners]]`` rules); ``unassigned`` without one."""
    return finding.owner or "unassigned"


def first_seen_text(finding: Finding) -> str:
    """The date the finding was first seen (this audit's, without a store)."""
    return (finding.first_seen or finding.found_at).astimezone(UTC).strftime("%Y-%m-%d")


def by_severity(findings: list[Finding]) -> list[tuple[Severity, list[Finding]]]:
    """Findings grouped worst severity first (each group keeps the report's outside-in order)."""
    return [(s, [f for f in findings if f.severity is s]) for s in Severity if any(f.severity is s for f in findings)]
