"""The store's tables and its versioned migrations (``schema_version`` plus ordered migration functions).

A migration is a function of a connection, applied once, in order, inside the transaction that records its
version: a crash mid-migration leaves the previous version in place. A store written by a newer outsidein
(a version above the last one known here) is refused rather than guessed at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    select,
)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored as naive UTC (SQLite has no time zones) and read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None else None


metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

audits = Table(
    "audits", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("evaluated_at", UtcDateTime, nullable=False),  # the evidence's collection time: the audit clock
    Column("stored_at", UtcDateTime, nullable=False),
    Column("source", Text, nullable=False, default=""),
    Column("scope", Text, nullable=False, default=""),  # the scope file audited, if any
    Column("targets", Text, nullable=False, default="{}"),  # JSON: kind -> names (regions, hosts, nginx …)
    Column("findings", Integer, nullable=False, default=0),
    Column("new", Integer, nullable=False, default=0),
    Column("reopened", Integer, nullable=False, default=0),
    Column("resolved", Integer, nullable=False, default=0),
    Column("accepted", Integer, nullable=False, default=0),
    Column("not_assessed", Integer, nullable=False, default=0),
    Column("overdue", Integer, nullable=False, default=0),
)

findings = Table(
    "findings", metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("check_id", String(200), nullable=False),
    Column("source_kind", String(40), nullable=False, default=""),  # the check's evidence source (aws, host …)
    Column("layer", Integer, nullable=False),
    Column("severity", String(10), nullable=False),
    Column("title", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("region", String(64)),
    Column("environment", String(200)),
    Column("detail", Text, nullable=False),
    Column("remediation", Text, nullable=False),
    Column("verify", Text, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("status", String(12), nullable=False),  # new, open, reopened, resolved, accepted
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("due", UtcDateTime),  # first_seen + the severity's SLA; None for REVIEW
    Column("first_audit", Integer, ForeignKey("audits.id"), nullable=False),
    Column("last_audit", Integer, ForeignKey("audits.id"), nullable=False),
    Column("resolved_at", UtcDateTime),
    Column("resolved_audit", Integer),
    Column("times_reopened", Integer, nullable=False, default=0),
    Column("accepted_reason", Text),
    Column("accepted_by", String(200)),
    Column("accepted_until", UtcDateTime),
    Column("accepted_at", UtcDateTime),
    Index("ix_findings_status", "status"),
)

# One row per finding per audit it was seen in or changed state in: the history `diff` reads.
observations = Table(
    "observations", metadata,
    Column("audit_id", Integer, ForeignKey("audits.id"), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    # new, open (seen again), reopened, accepted (seen, but accepted), resolved, expired (acceptance ended)
    Column("event", String(12), nullable=False),
    Column("severity", String(10), nullable=False),
    Index("ix_observations_fingerprint", "fingerprint"),
)


def _v1(conn: Connection) -> None:
    for table in (audits, findings, observations):
        table.create(conn, checkfirst=True)


Migration = Callable[[Connection], None]
MIGRATIONS: list[tuple[int, Migration]] = [
    (1, _v1),
]
LATEST = MIGRATIONS[-1][0]


class SchemaError(RuntimeError):
    """The store's schema is newer than this outsidein, or cannot be migrated."""


def current_version(conn: Connection) -> int:
    schema_version.create(conn, checkfirst=True)
    row = conn.execute(select(schema_version.c.version)).first()
    return int(row[0]) if row else 0


def migrate(conn: Connection, migrations: list[tuple[int, Migration]] | None = None) -> int:
    """Apply every migration above the stored version, in order, in the caller's transaction."""
    steps = MIGRATIONS if migrations is None else migrations
    version = current_version(conn)
    last = steps[-1][0] if steps else 0
    if version > last:
        raise SchemaError(f"the store's schema is version {version}; this outsidein knows up to {last}: upgrade it")
    for number, step in steps:
        if number <= version:
            continue
        step(conn)
        if version == 0:
            conn.execute(schema_version.insert().values(version=number))
        else:
            conn.execute(schema_version.update().values(version=number))
        version = number
    return version


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)
