"""The findings history: every audit stored, each finding's lifecycle kept by its stable fingerprint.

States: ``new`` (first seen in this audit), ``open`` (seen again), ``reopened`` (seen again after it was
resolved), ``resolved`` (absent from a later audit that assessed it), ``accepted`` (a person accepted the risk
with a reason and an expiry, or the reviewed baseline suppressed it; past the expiry it is open again).

A finding is resolved by its absence only when the later audit really looked: the same check gave a PASS or FAIL
verdict in the same region (and, when that check's verdicts carry environments, the same environment), no
verdict of that check was NOT_ASSESSED for that resource or place, and every target of the finding's kind
(regions, hosts, NGINX configurations, TLS endpoints, captures) that was in the audit where it was last seen is
in the later audit too: a shrinking scope resolves nothing.

One audit is one transaction: SQLite in WAL mode with ``BEGIN IMMEDIATE`` and a busy timeout, PostgreSQL under a
transaction-scoped advisory lock; concurrent audits queue, and a process killed mid-write leaves no trace.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    any_,
    bindparam,
    case,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from outsidein.audit import AuditReport
from outsidein.models import Finding, Severity
from outsidein.owners import Owners
from outsidein.store.schema import SchemaError, audits, findings, migrate, observations, row_dict

OPEN_STATES = ("new", "open", "reopened")
STATES = (*OPEN_STATES, "resolved", "accepted")
SEEN_EVENTS = ("new", "open", "reopened", "accepted", "expired")
_LOCK_KEY = 0x6F75747369646569  # "outsidei": the advisory lock every PostgreSQL writer takes
_BATCH = 5000


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message names it (never its password)."""


@dataclass(frozen=True)
class StoredFinding:
    fingerprint: str
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
    owner: str
    status: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    due: dt.datetime | None
    first_audit: int
    last_audit: int
    resolved_at: dt.datetime | None = None
    times_reopened: int = 0
    accepted_reason: str | None = None
    accepted_by: str | None = None
    accepted_until: dt.datetime | None = None

    def effective_status(self, now: dt.datetime) -> str:
        """``accepted`` past its expiry date is ``open`` again."""
        if self.status == "accepted" and acceptance_expired(self.accepted_until, now):
            return "open"
        return self.status

    def is_open(self, now: dt.datetime) -> bool:
        return self.effective_status(now) in OPEN_STATES

    def overdue(self, now: dt.datetime) -> bool:
        return self.is_open(now) and self.due is not None and self.due < now

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "fingerprint": self.fingerprint, "check_id": self.check_id, "layer": self.layer,
            "severity": self.severity.value, "title": self.title, "resource": self.resource, "region": self.region,
            "environment": self.environment, "detail": self.detail, "remediation": self.remediation,
            "verify": self.verify, "owner": self.owner, "status": self.effective_status(now),
            "overdue": self.overdue(now), "first_seen": iso(self.first_seen), "last_seen": iso(self.last_seen),
            "due": iso(self.due), "first_audit": self.first_audit, "last_audit": self.last_audit,
            "resolved_at": iso(self.resolved_at), "times_reopened": self.times_reopened,
            "accepted": {"reason": self.accepted_reason, "by": self.accepted_by,
                         "until": self.accepted_until.date().isoformat() if self.accepted_until else None}
            if self.status == "accepted" else None,
        }


def acceptance_expired(until: dt.datetime | None, now: dt.datetime) -> bool:
    """An acceptance holds through its expiry date (UTC) and ends the day after."""
    return until is not None and now.astimezone(dt.UTC).date() > until.date()


def _stored(row: Any) -> StoredFinding:
    d = row_dict(row)
    return StoredFinding(
        fingerprint=d["fingerprint"], check_id=d["check_id"], layer=d["layer"], severity=Severity(d["severity"]),
        title=d["title"], resource=d["resource"], region=d["region"], environment=d["environment"],
        detail=d["detail"], remediation=d["remediation"], verify=d["verify"], owner=d["owner"], status=d["status"],
        first_seen=d["first_seen"], last_seen=d["last_seen"], due=d["due"], first_audit=d["first_audit"],
        last_audit=d["last_audit"], resolved_at=d["resolved_at"], times_reopened=d["times_reopened"],
        accepted_reason=d["accepted_reason"], accepted_by=d["accepted_by"], accepted_until=d["accepted_until"],
    )


@dataclass(frozen=True)
class AuditRecord:
    """One stored audit and its counts."""

    id: int
    evaluated_at: dt.datetime
    stored_at: dt.datetime
    source: str
    scope: str
    findings: int
    new: int
    reopened: int
    resolved: int
    accepted: int
    not_assessed: int
    overdue: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "evaluated_at": self.evaluated_at.isoformat(), "stored_at": self.stored_at.isoformat(),
                "source": self.source, "scope": self.scope, "findings": self.findings, "new": self.new,
                "reopened": self.reopened, "resolved": self.resolved, "accepted": self.accepted,
                "not_assessed": self.not_assessed, "overdue": self.overdue}


def _record(row: Any) -> AuditRecord:
    d = row_dict(row)
    return AuditRecord(**{k: d[k] for k in AuditRecord.__dataclass_fields__})


@dataclass
class Diff:
    """What changed between two stored audits (``before`` may be None: everything is new)."""

    before: AuditRecord | None
    after: AuditRecord
    new: list[StoredFinding] = field(default_factory=list)
    fixed: list[StoredFinding] = field(default_factory=list)
    reopened: list[StoredFinding] = field(default_factory=list)
    overdue: list[StoredFinding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        now = self.after.evaluated_at
        return {
            "schema": "outsidein-diff/1",
            "before": self.before.to_json() if self.before else None, "after": self.after.to_json(),
            "summary": {"new": len(self.new), "fixed": len(self.fixed), "reopened": len(self.reopened),
                        "overdue": len(self.overdue)},
            "new": [f.to_json(now) for f in self.new], "fixed": [f.to_json(now) for f in self.fixed],
            "reopened": [f.to_json(now) for f in self.reopened], "overdue": [f.to_json(now) for f in self.overdue],
        }


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def masked_store_value(value: str) -> str:
    """A store value as an error may name it: the password between ``user:`` and the last ``@`` replaced."""
    head, sep, rest = value.partition("://")
    if not sep:
        head, rest = "", value
    at = rest.rfind("@")
    if at == -1:
        return value
    user, colon, _ = rest[:at].partition(":")
    return head + sep + (f"{user}:***" if colon else rest[:at]) + rest[at:]


def _normalise_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _due(first_seen: dt.datetime, severity: Severity) -> dt.datetime | None:
    sla = severity.sla
    return first_seen + sla if sla else None


def _targets(report: AuditReport) -> dict[str, list[str]]:
    return {"aws": sorted({*report.regions, *([report.account_id] if report.account_id else [])}),
            "host": sorted(report.hosts), "nginx": sorted(report.nginx), "tls": sorted(report.tls),
            "capture": sorted(report.captures)}


def _chunks(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# Temporary tables for set-based reads and writes inside one audit's transaction: created, filled in bulk, used
# by one statement, dropped. A rolled-back transaction takes them with it (DDL is transactional on both
# SQLite and PostgreSQL). UPDATE … FROM needs SQLite 3.33 or later.
_TEMP = MetaData()
_KEYS = Table("outsidein_tmp_keys", _TEMP, Column("fingerprint", String(64), primary_key=True),
              prefixes=["TEMPORARY"])
_CHANGES = Table(
    "outsidein_tmp_changes", _TEMP,
    Column("fp", String(64), primary_key=True),
    *(Column(c.name, c.type) for c in findings.columns
      if c.name in ("status", "severity", "due", "owner", "resolved_at", "resolved_audit", "accepted_reason",
                    "accepted_by", "accepted_until", "accepted_at")),
    prefixes=["TEMPORARY"],
)


def _fill(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Create the temporary table and insert ``rows`` in batches (executemany: multi-row INSERTs)."""
    table.create(conn)
    for chunk in _chunks(rows):
        conn.execute(table.insert(), list(chunk))


class _Assessed:
    """Which (check, resource, place) the audit really looked at; see the module docstring."""

    def __init__(self, report: AuditReport) -> None:
        from outsidein.models import Status

        self.verdicts: set[tuple[str, str, str | None]] = set()
        self.places: set[tuple[str, str | None]] = set()
        self.environments: dict[str, set[str]] = {}
        self.na_resources: set[tuple[str, str]] = set()
        self.na_places: set[tuple[str, str | None]] = set()
        for result in report.results:
            if result.status is Status.NOT_ASSESSED:
                self.na_resources.add((result.check_id, result.resource))
                self.na_places.add((result.check_id, result.region))
                continue
            self.verdicts.add((result.check_id, result.resource, result.region))
            self.places.add((result.check_id, result.region))
            if result.environment:
                self.environments.setdefault(result.check_id, set()).add(result.environment)
        for _, result in report.not_assessed:  # results may be empty in reports built by hand
            self.na_resources.add((result.check_id, result.resource))
            self.na_places.add((result.check_id, result.region))
        self.targets = _targets(report)

    def covers(self, row: dict[str, Any], before: dict[str, list[str]]) -> bool:
        check, resource, region = row["check_id"], row["resource"], row["region"]
        if (check, resource) in self.na_resources:
            return False
        if (check, None) in self.na_places or (region is not None and (check, region) in self.na_places):
            return False
        if (check, resource, region) not in self.verdicts:
            if (check, region) not in self.places:
                return False
            envs = self.environments.get(check)
            if envs and row["environment"] and row["environment"] not in envs:
                return False
        kind = row["source_kind"]
        return set(before.get(kind, [])) <= set(self.targets.get(kind, []))


@dataclass(frozen=True)
class Stored:
    """What storing one audit did."""

    audit_id: int
    new: int
    reopened: int
    resolved: int
    accepted: int
    expired: int
    overdue: int
    findings: int


class Store:
    """A findings history in SQLite (a file) or PostgreSQL (a URL)."""

    def __init__(self, url: str, *, busy_timeout: float = 60.0) -> None:
        self.url = _normalise_url(url)
        try:
            parsed = make_url(self.url)
            self.dialect = parsed.get_backend_name()
        except (ValueError, ArgumentError) as exc:  # a bad port, an unknown form: name the value, not its password
            reason = str(exc).replace(self.url, masked_store_value(self.url)).replace(url, masked_store_value(url))
            raise StoreError(f"{masked_store_value(url)}: not a valid store URL ({reason}); expected a file path, "
                             "sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE") from None
        self.display = parsed.render_as_string(hide_password=True)
        try:
            if self.dialect == "sqlite":
                database = parsed.database
                if database and database != ":memory:":
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                self.engine: Engine = create_engine(self.url, connect_args={"timeout": busy_timeout})
                self._sqlite_events(busy_timeout)
            else:
                self.engine = create_engine(self.url, pool_pre_ping=True)
            with self._write() as conn:
                migrate(conn)
        except SchemaError as exc:
            raise StoreError(f"{self.display}: {exc}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.display}: cannot open the store: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0]}") from None

    def _sqlite_events(self, busy_timeout: float) -> None:
        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's begin event below issues BEGIN itself
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(self.engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("outsidein_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction: SQLite takes the write lock up front, PostgreSQL a transaction advisory lock."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(outsidein_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
                yield conn

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- writing

    def record(self, report: AuditReport, *, owners: Owners | None = None, scope: str = "",
               progress: Callable[[int], None] | None = None, stored_at: dt.datetime | None = None) -> Stored:
        """Store one audit and move every finding's lifecycle on, in one transaction."""
        owners = owners or Owners()
        at = report.evaluated_at.astimezone(dt.UTC)
        kinds = {c.meta.id: c.source for c in report.checks}
        seen: dict[str, tuple[Finding, Any]] = {f.fingerprint: (f, None) for f in report.findings}
        for s in report.suppressed:
            seen[s.finding.fingerprint] = (s.finding, s.entry)
        assessed = _Assessed(report)
        try:
            with self._write() as conn:
                return self._record(conn, report, at, seen, kinds, assessed, owners, scope, progress,
                                    stored_at or dt.datetime.now(dt.UTC))
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.display}: cannot store the audit: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0]}") from None

    def _record(self, conn: Connection, report: AuditReport, at: dt.datetime,
                seen: dict[str, tuple[Finding, Any]], kinds: dict[str, str], assessed: _Assessed, owners: Owners,
                scope: str, progress: Callable[[int], None] | None, stored_at: dt.datetime) -> Stored:
        audit_id = int(conn.execute(audits.insert().values(
            evaluated_at=at, stored_at=stored_at, source=report.source, scope=scope,
            targets=json.dumps(assessed.targets), not_assessed=len(report.not_assessed),
        ).returning(audits.c.id)).scalar_one())
        cols = [findings.c.fingerprint, findings.c.check_id, findings.c.source_kind, findings.c.resource,
                findings.c.region, findings.c.environment, findings.c.status, findings.c.severity,
                findings.c.first_seen, findings.c.owner, findings.c.last_audit, findings.c.accepted_until,
                findings.c.accepted_reason, findings.c.accepted_by]
        unresolved = conn.execute(select(*cols).where(findings.c.status != "resolved"))
        existing = {r.fingerprint: row_dict(r) for r in unresolved}
        missing = [fp for fp in seen if fp not in existing]  # new, or resolved before and back now
        if missing and self.dialect == "postgresql":  # one statement, the fingerprints as one array parameter
            for r in conn.execute(select(*cols).where(
                    findings.c.fingerprint == any_(bindparam("fps", missing, type_=ARRAY(String))))):
                existing[r.fingerprint] = row_dict(r)
        elif missing:  # elsewhere through a temporary table: one join, however many fingerprints
            _fill(conn, _KEYS, [{"fingerprint": fp} for fp in missing])
            for r in conn.execute(select(*cols).select_from(
                    findings.join(_KEYS, findings.c.fingerprint == _KEYS.c.fingerprint))):
                existing[r.fingerprint] = row_dict(r)
            _KEYS.drop(conn)

        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        counts = dict.fromkeys(("new", "reopened", "resolved", "accepted", "expired"), 0)
        for fp, (finding, entry) in seen.items():
            owner = owners.owner(finding)
            old = existing.get(fp)
            accepted = _baseline_acceptance(entry, at)
            if old is None:
                status = "accepted" if accepted else "new"
                inserts.append({
                    "fingerprint": fp, "check_id": finding.check_id, "source_kind": kinds.get(finding.check_id, ""),
                    "layer": finding.layer, "severity": finding.severity.value, "title": finding.title,
                    "resource": finding.resource, "region": finding.region, "environment": finding.environment,
                    "detail": finding.detail, "remediation": finding.remediation, "verify": finding.verify,
                    "owner": owner, "status": status, "first_seen": at, "last_seen": at,
                    "due": _due(at, finding.severity), "first_audit": audit_id, "last_audit": audit_id,
                    "times_reopened": 0, "resolved_at": None, "resolved_audit": None,
                    **(accepted or {"accepted_reason": None, "accepted_by": None, "accepted_until": None,
                                    "accepted_at": None}),
                })
                events.append({"audit_id": audit_id, "fingerprint": fp, "event": "new",
                               "severity": finding.severity.value})
                counts["new"] += 1
                if accepted:
                    counts["accepted"] += 1
                continue
            change: dict[str, Any] = {}
            status = old["status"]
            if status == "resolved":
                event_name, change["status"] = "reopened", "reopened"
                change["resolved_at"] = None
                change["resolved_audit"] = None
                change["times_reopened"] = findings.c.times_reopened + 1
                counts["reopened"] += 1
            elif accepted:
                event_name = "accepted"
                if status != "accepted" or old["accepted_reason"] != accepted["accepted_reason"]:
                    change.update(status="accepted", **accepted)
            elif status == "accepted":
                if acceptance_expired(old["accepted_until"], at):
                    event_name, change["status"] = "expired", "open"
                    counts["expired"] += 1
                else:
                    event_name = "accepted"
            else:
                event_name = "open"  # new -> open is one set-based UPDATE below, not a row each
            if event_name == "accepted":
                counts["accepted"] += 1
            if old["severity"] != finding.severity.value:
                change["severity"] = finding.severity.value
                change["due"] = _due(old["first_seen"], finding.severity)
            if old["owner"] != owner:
                change["owner"] = owner
            if change:
                updates.append({"fp": fp, **change})
            events.append({"audit_id": audit_id, "fingerprint": fp, "event": event_name,
                           "severity": finding.severity.value})

        audit_targets: dict[int, dict[str, list[str]]] = {}
        for fp, old in existing.items():
            if fp in seen or old["status"] == "resolved":
                continue
            before_id = old["last_audit"]
            if before_id not in audit_targets:
                raw = conn.execute(select(audits.c.targets).where(audits.c.id == before_id)).scalar()
                audit_targets[before_id] = json.loads(raw) if raw else {}
            if assessed.covers(old, audit_targets[before_id]):
                updates.append({"fp": fp, "status": "resolved", "resolved_at": at, "resolved_audit": audit_id})
                events.append({"audit_id": audit_id, "fingerprint": fp, "event": "resolved",
                               "severity": old["severity"]})
                counts["resolved"] += 1

        written = 0
        for chunk in _chunks(inserts):
            conn.execute(findings.insert(), list(chunk))
            written += len(chunk)
            if progress:
                progress(written)
        # Set-based: each group of like changes (every "resolved", every "reopened" …) goes into a temporary
        # table in bulk, then one UPDATE … FROM applies it; no statement per finding.
        for group in _group_updates(updates):
            values: dict[str, Any] = {k: _CHANGES.c[k] for k in group[0] if k not in ("fp", "times_reopened")}
            if "times_reopened" in group[0]:
                values["times_reopened"] = findings.c.times_reopened + 1
            rows = [{k: v for k, v in u.items() if k != "times_reopened"} for u in group]
            _fill(conn, _CHANGES, rows)
            conn.execute(update(findings).where(findings.c.fingerprint == _CHANGES.c.fp).values(**values))
            _CHANGES.drop(conn)
            written += len(rows)
            if progress:
                progress(written)
        for chunk in _chunks(events):
            conn.execute(observations.insert(), list(chunk))
            written += len(chunk)
            if progress:
                progress(written)
        seen_now = select(observations.c.fingerprint).where(
            observations.c.audit_id == audit_id, observations.c.event.in_(SEEN_EVENTS))
        # One pass over every finding seen again (those inserted above already say so): last seen now, and
        # "new" is "open" (the changes above already moved reopened, accepted and expired ones off "new").
        again = case((findings.c.status == "new", "open"), else_=findings.c.status)
        conn.execute(update(findings).where(findings.c.first_audit != audit_id, findings.c.fingerprint.in_(seen_now))
                     .values(last_seen=at, last_audit=audit_id, status=again))
        overdue = int(conn.execute(select(func.count()).select_from(findings).where(
            findings.c.status.in_(OPEN_STATES), findings.c.due < at,
            findings.c.fingerprint.in_(seen_now))).scalar_one())
        conn.execute(update(audits).where(audits.c.id == audit_id).values(
            findings=len(seen), new=counts["new"], reopened=counts["reopened"], resolved=counts["resolved"],
            accepted=counts["accepted"], overdue=overdue))
        return Stored(audit_id=audit_id, new=counts["new"], reopened=counts["reopened"], resolved=counts["resolved"],
                      accepted=counts["accepted"], expired=counts["expired"], overdue=overdue, findings=len(seen))

    def accept(self, fingerprint: str, *, reason: str, by: str, expires: dt.date,
               now: dt.datetime | None = None) -> StoredFinding:
        """Accept the risk of one finding (a unique fingerprint prefix will do) until ``expires``."""
        if not reason.strip() or not by.strip():
            raise StoreError("accepting a risk needs a reason and who accepts it")
        now = now or dt.datetime.now(dt.UTC)
        if expires < now.date():
            raise StoreError(f"--expires {expires} is in the past")
        with self._write() as conn:
            rows = conn.execute(select(findings.c.fingerprint).where(
                findings.c.fingerprint.like(fingerprint.replace("%", "").replace("_", "") + "%")).limit(2)).all()
            if not rows:
                raise StoreError(f"no finding with fingerprint {fingerprint} in {self.display}")
            if len(rows) > 1:
                raise StoreError(f"fingerprint {fingerprint} is ambiguous: give more of it")
            fp = rows[0].fingerprint
            conn.execute(update(findings).where(findings.c.fingerprint == fp).values(
                status="accepted", accepted_reason=reason.strip(), accepted_by=by.strip(),
                accepted_until=dt.datetime.combine(expires, dt.time(), dt.UTC), accepted_at=now))
            return _stored(conn.execute(select(findings).where(findings.c.fingerprint == fp)).one())

    # ---------------------------------------------------------------------------------------------- reading

    def audits(self, limit: int | None = None) -> list[AuditRecord]:
        with self.engine.connect() as conn:
            query = select(audits).order_by(audits.c.id.desc())
            if limit:
                query = query.limit(limit)
            return [_record(r) for r in reversed(conn.execute(query).all())]

    def audit(self, audit_id: int) -> AuditRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(audits).where(audits.c.id == audit_id)).first()
        if row is None:
            raise StoreError(f"no audit {audit_id} in {self.display}")
        return _record(row)

    def findings(self, statuses: Iterable[str] | None = None, now: dt.datetime | None = None) -> list[StoredFinding]:
        """Findings by effective status (an expired acceptance counts as open); overdue first, then by due date."""
        now = now or dt.datetime.now(dt.UTC)
        with self.engine.connect() as conn:
            rows = [_stored(r) for r in conn.execute(select(findings))]
        wanted = set(statuses) if statuses is not None else None
        out = [f for f in rows if wanted is None or f.effective_status(now) in wanted]
        return sort_findings(out, now)

    def open_findings(self, now: dt.datetime | None = None) -> list[StoredFinding]:
        return self.findings(OPEN_STATES, now)

    def seen_in(self, audit_id: int) -> dict[str, StoredFinding]:
        """Every finding that audit saw (open or accepted), by fingerprint, as stored now: its first-seen, due
        date, owner and state (what the report of the audit just stored shows)."""
        seen = select(observations.c.fingerprint).where(
            observations.c.audit_id == audit_id, observations.c.event.in_(SEEN_EVENTS))
        with self.engine.connect() as conn:
            return {r.fingerprint: _stored(r) for r in conn.execute(
                select(findings).where(findings.c.fingerprint.in_(seen)))}

    def get(self, fingerprint: str) -> StoredFinding | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(findings).where(findings.c.fingerprint == fingerprint)).first()
        return _stored(row) if row else None

    def diff(self, before: int | None = None, after: int | None = None) -> Diff:
        """New, fixed, reopened and overdue between two audits (default: the last two)."""
        with self.engine.connect() as conn:
            if after is None:
                after = conn.execute(select(func.max(audits.c.id))).scalar()
                if after is None:
                    raise StoreError(f"no audit stored in {self.display} yet")
            after_rec = self.audit(after)
            if before is None:
                before = conn.execute(select(func.max(audits.c.id)).where(audits.c.id < after)).scalar()
            before_rec = self.audit(before) if before is not None else None
            low = before if before is not None else 0
            if low >= after:
                raise StoreError(f"audit {before} is not before audit {after}")
            events: dict[str, set[str]] = {}
            for r in conn.execute(select(observations.c.fingerprint, observations.c.event).where(
                    observations.c.audit_id > low, observations.c.audit_id <= after)):
                events.setdefault(r.event, set()).add(r.fingerprint)
            last: dict[str, str] = {r.fingerprint: r.event for r in conn.execute(
                select(observations.c.fingerprint, observations.c.event).where(observations.c.audit_id == after))}
            wanted = set().union(*events.values()) | set(last)
            rows: dict[str, StoredFinding] = {}
            wanted_list = sorted(wanted)
            for chunk in _chunks(wanted_list, 900):
                for r in conn.execute(select(findings).where(findings.c.fingerprint.in_(chunk))):
                    rows[r.fingerprint] = _stored(r)
        now = after_rec.evaluated_at
        seen_after = {fp for fp, e in last.items() if e in SEEN_EVENTS}
        open_after = {fp for fp, e in last.items() if e in ("new", "open", "reopened", "expired")}

        def pick(fps: Iterable[str]) -> list[StoredFinding]:
            return sort_findings([rows[fp] for fp in fps if fp in rows], now)

        return Diff(
            before=before_rec, after=after_rec,
            new=pick(events.get("new", set()) & seen_after),
            reopened=pick(events.get("reopened", set()) & seen_after),
            fixed=pick(events.get("resolved", set()) - seen_after),
            overdue=pick(fp for fp in open_after if fp in rows and _past(rows[fp].due, now)),
        )

    def integrity_check(self) -> str:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar())
            conn.execute(select(func.count()).select_from(findings)).scalar()
            return "ok"


def _past(due: dt.datetime | None, now: dt.datetime) -> bool:
    return due is not None and due < now


def _baseline_acceptance(entry: Any, at: dt.datetime) -> dict[str, Any] | None:
    """A reviewed-baseline entry as an acceptance (a false positive never expires)."""
    if entry is None:
        return None
    until = dt.datetime.combine(entry.expires, dt.time(), dt.UTC) if entry.expires else None
    return {"accepted_reason": f"{entry.status.replace('_', ' ')}: {entry.reason}", "accepted_by": "baseline",
            "accepted_until": until, "accepted_at": at}


def _group_updates(updates: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """executemany needs the same keys in every row: group the updates by their key set."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for u in updates:
        groups.setdefault(tuple(sorted(u)), []).append(u)
    return list(groups.values())


def sort_findings(items: list[StoredFinding], now: dt.datetime) -> list[StoredFinding]:
    """Escalation order: overdue first, then worst severity, then earliest due date."""
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(items, key=lambda f: (not f.overdue(now), -f.severity.rank, f.due or far, f.layer, f.check_id,
                                        f.environment or "", f.resource, f.fingerprint))
