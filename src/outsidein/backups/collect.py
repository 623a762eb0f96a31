"""The backup plan and the restore-drill log as evidence: one ``SourceEvidence`` (kind "backups").

``data.data`` is ``{"plan": {...the [backups] expectations...}, "drill_log": path, "drills": [records],
"drill_lines": [the log line of each record]}``
(records as ``outsidein.backups.drill.DrillRecord`` writes them). A drill log that cannot be read is an
error record: the drill check is then NOT_ASSESSED, never PASS. The buckets themselves are AWS evidence
(``outsidein.backups.aws``).
"""

from __future__ import annotations

from outsidein.backups.drill import read_log_lines
from outsidein.evidence import Record, SourceEvidence
from outsidein.scope import BackupsScope


def plan_of(scope: BackupsScope) -> dict[str, object]:
    return {"buckets": list(scope.buckets), "prefixes": list(scope.prefixes), "discover": scope.discover,
            "max_age_hours": scope.max_age_hours, "retention_days": scope.retention_days,
            "archive_days": scope.archive_days, "drill_max_age_days": scope.drill_max_age_days,
            "drill_source": scope.drill.source}


def collect_backups(scope: BackupsScope | None) -> list[SourceEvidence]:
    if scope is None:
        return []
    data: dict[str, object] = {"plan": plan_of(scope), "drill_log": str(scope.drill_log) if scope.drill_log else None}
    if scope.drill_log is None:
        return [SourceEvidence("backups", "backups", scope.environment,
                               Record(data={**data, "drills": None,
                                            "drills_error": "no drill log: the scope has no file to sit next to; "
                                                            "set [backups] drill_log"}))]
    try:
        numbered = read_log_lines(scope.drill_log)
        data["drills"] = [record for _, record in numbered]
        data["drill_lines"] = [number for number, _ in numbered]  # the log line of each record
    except (OSError, ValueError) as exc:
        data["drills"] = None
        data["drills_error"] = f"drill log unreadable: {exc}"
    return [SourceEvidence("backups", "backups", scope.environment, Record(data=data))]
