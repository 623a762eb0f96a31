"""The reviewed baseline: findings a team has marked as false positives or accepted risks, with a reason.

A baseline is a TOML file named by the scope's ``baseline`` key::

    [[finding]]
    fingerprint = "3f9c2a…"            # from the JSON report; names the check, resource and detail
    status = "false_positive"          # or "accepted"
    reason = "test fixture: the key is AWS's documented example"
    check_id = "secrets-in-head"       # optional, for the reader
    resource = "tests/fixtures/aws.env:3"  # optional, for the reader
    expires = 2027-03-01               # accepted only: the date the acceptance must be reviewed again

A matching finding leaves ``findings`` for ``suppressed`` (it no longer trips ``--fail-on``, nor turns its
layer FAIL); an acceptance past its ``expires`` date suppresses nothing and is listed as expired. The file
holds fingerprints, which are hashes, and the masked resource: never the secret itself. ``outsidein
baseline`` writes entries for a report's findings, ready to be reviewed.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outsidein.models import Finding

STATUSES = ("false_positive", "accepted")
_KEYS = {"fingerprint", "status", "reason", "check_id", "resource", "expires"}


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class BaselineEntry:
    fingerprint: str
    status: str
    reason: str
    expires: dt.date | None = None
    check_id: str | None = None
    resource: str | None = None

    def active(self, on: dt.date) -> bool:
        return self.expires is None or on <= self.expires


@dataclass(frozen=True)
class Suppressed:
    """A finding the baseline took out of the findings, and why."""

    finding: Finding
    entry: BaselineEntry


def _entry(raw: Any, where: str) -> BaselineEntry:
    if not isinstance(raw, dict):
        raise BaselineError(f"{where} must be a table")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise BaselineError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    fp, status, reason = raw.get("fingerprint"), raw.get("status"), raw.get("reason")
    if not isinstance(fp, str) or not fp:
        raise BaselineError(f"{where}: fingerprint is required")
    if status not in STATUSES:
        raise BaselineError(f"{where}: status must be one of {', '.join(STATUSES)}, not {status!r}")
    if not isinstance(reason, str) or not reason.strip() or reason.strip().upper().startswith("TODO"):
        raise BaselineError(f"{where}: a reason is required (why is it a false positive, or why is it accepted?)")
    expires = raw.get("expires")
    if isinstance(expires, dt.datetime):
        expires = expires.date()
    if expires is not None and not isinstance(expires, dt.date):
        raise BaselineError(f"{where}: expires must be a date (2027-03-01)")
    if status == "accepted" and expires is None:
        raise BaselineError(f"{where}: an accepted risk needs an expires date, when it is reviewed again")
    return BaselineEntry(fingerprint=fp, status=status, reason=reason.strip(), expires=expires,
                         check_id=raw.get("check_id"), resource=raw.get("resource"))


def load_baseline(path: Path) -> dict[str, BaselineEntry]:
    """Entries by fingerprint; a missing or malformed file is a clear error naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read baseline: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"finding"})
    if unknown:
        raise BaselineError(f"{path}: unknown key {unknown[0]!r} (entries are [[finding]] tables)")
    raw = data.get("finding", [])
    if not isinstance(raw, list):
        raise BaselineError(f"{path}: finding must be an array of tables ([[finding]])")
    entries: dict[str, BaselineEntry] = {}
    for index, item in enumerate(raw):
        entry = _entry(item, f"{path}: [[finding]] #{index + 1}")
        if entry.fingerprint in entries:
            raise BaselineError(f"{path}: [[finding]] #{index + 1}: fingerprint {entry.fingerprint} is listed twice")
        entries[entry.fingerprint] = entry
    return entries


def split_findings(findings: list[Finding], baseline: dict[str, BaselineEntry], on: dt.date,
                   ) -> tuple[list[Finding], list[Suppressed], list[BaselineEntry]]:
    """(findings still open, suppressed findings, expired acceptances that matched a finding)."""
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    expired: list[BaselineEntry] = []
    for finding in findings:
        entry = baseline.get(finding.fingerprint)
        if entry is None:
            kept.append(finding)
        elif entry.active(on):
            suppressed.append(Suppressed(finding, entry))
        else:
            kept.append(finding)
            expired.append(entry)
    return kept, suppressed, expired


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def baseline_entries_toml(findings: list[Finding], status: str = "false_positive",
                          reason: str = "TODO: why this is not a problem") -> str:
    """``[[finding]]`` tables for these findings, for a person to review and complete."""
    blocks = []
    for finding in findings:
        blocks.append("\n".join((
            "[[finding]]",
            f"fingerprint = {_toml_string(finding.fingerprint)}",
            f"status = {_toml_string(status)}",
            f"reason = {_toml_string(reason)}",
            f"check_id = {_toml_string(finding.check_id)}",
            f"resource = {_toml_string(finding.resource)}",
        )))
    return "\n\n".join(blocks) + ("\n" if blocks else "")
