"""The local OSV database: download, import, status, and matching a package version against it.

Decisions:

- **Storage**: one SQLite file, ``<database>/osv.sqlite``. ``advisories`` holds each record's JSON once;
  ``packages`` indexes (ecosystem, normalized name) -> advisory id, so a lookup is one indexed query however
  large the export. ``ecosystems`` holds, per ecosystem, how many records were loaded, when, and from where.
  Writes happen in one transaction into the file, so a failed download leaves the previous data intact.
- **Names**: PyPI names are normalized as PEP 503 says (``Django``, ``django``, ``DJANGO_x`` all match);
  other ecosystems compare names exactly (npm names are lowercase by rule, Go module paths are case-sensitive).
- **Build time** of an ecosystem: when ``update`` downloaded it, or for an imported export zip the newest
  entry's timestamp in the zip (when it was exported, not when it was copied in); single records and folders
  count from the import. The database's age is the *oldest* ecosystem's: an audit is as current as its
  stalest source.
- **Withdrawn** records are kept out of matches (they stay in the file for ``status``). **Aliases**: one
  vulnerability is often published twice (``PYSEC-…`` and ``GHSA-…`` aliasing the same CVE); matches that share
  an id or alias are merged into one, keeping the record that carries a severity and the union of aliases.
- **Severity**: the highest CVSS base score among ``severity[]`` vectors (v3.x and v4.0, computed with the
  ``cvss`` library), else ``database_specific.severity`` (GitHub's CRITICAL/HIGH/MODERATE/LOW), else unknown.
  Scores map as CVSS does: 9.0+ CRITICAL, 7.0+ HIGH, 4.0+ MEDIUM, otherwise LOW.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from outsidein.aws.collect import CollectionError
from outsidein.components.versions import InvalidVersion, in_range, is_affected, version_key

DB_FILE = "osv.sqlite"
EXPORT_URL = "https://osv-vulnerabilities.storage.googleapis.com/{ecosystem}/all.zip"
DEFAULT_ECOSYSTEMS = ["PyPI", "npm", "Go"]
MAX_RECORD_BYTES = 16 * 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS advisories (id TEXT PRIMARY KEY, modified TEXT, withdrawn INTEGER, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packages (ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL,
                                     PRIMARY KEY (ecosystem, name, id));
CREATE TABLE IF NOT EXISTS ecosystems (name TEXT PRIMARY KEY, records INTEGER NOT NULL, built_at TEXT NOT NULL,
                                       origin TEXT NOT NULL);
"""


class OsvError(CollectionError):
    """The database cannot be read, or an import or download failed; the message says what to do.

    A ``CollectionError`` so the command line prints it as an error line, not a traceback."""


def normalize(ecosystem: str, name: str) -> str:
    if ecosystem == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def base_ecosystem(ecosystem: str) -> str:
    """``Debian:12`` -> ``Debian``; the package index is keyed by the base ecosystem."""
    return ecosystem.split(":", 1)[0]


def _connect(database: Path, create: bool = False) -> sqlite3.Connection:
    path = database / DB_FILE
    if not create and not path.is_file():
        raise OsvError(f"no OSV database at {database}: run `outsidein db update` (or `outsidein db import FILE`)")
    try:
        if create:
            database.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path)
        conn.executescript(SCHEMA)
        return conn
    except (OSError, sqlite3.Error) as exc:
        raise OsvError(f"OSV database {path} cannot be opened: {exc}") from None


# --- loading ---------------------------------------------------------------------------------------------


def _store(conn: sqlite3.Connection, records: Iterable[dict[str, Any]],
           skipped: list[str] | None = None) -> dict[str, int]:
    """Insert or replace records; returns how many were stored per base ecosystem. A record without a string
    ``id`` or whose ``affected`` is not a list is not stored and is named in ``skipped``."""
    counts: dict[str, int] = {}
    for index, record in enumerate(records):
        vuln_id = record.get("id")
        if not isinstance(vuln_id, str) or not isinstance(record.get("affected", []), list):
            if skipped is not None:
                name = vuln_id if isinstance(vuln_id, str) else f"record #{index + 1}"
                skipped.append(f"{name}: {'no id' if not isinstance(vuln_id, str) else 'affected is not a list'}")
            continue
        conn.execute("DELETE FROM packages WHERE id = ?", (vuln_id,))
        conn.execute("INSERT OR REPLACE INTO advisories VALUES (?, ?, ?, ?)",
                     (vuln_id, record.get("modified"), 1 if record.get("withdrawn") else 0, json.dumps(record)))
        seen: set[str] = set()
        for affected in record.get("affected") or []:
            package = affected.get("package") if isinstance(affected, dict) else None
            if not isinstance(package, dict) or not package.get("ecosystem") or not package.get("name"):
                continue
            ecosystem = base_ecosystem(str(package["ecosystem"]))
            conn.execute("INSERT OR IGNORE INTO packages VALUES (?, ?, ?)",
                         (ecosystem, normalize(ecosystem, str(package["name"])), vuln_id))
            seen.add(ecosystem)
        for ecosystem in seen:
            counts[ecosystem] = counts.get(ecosystem, 0) + 1
    return counts


def _mark(conn: sqlite3.Connection, counts: dict[str, int], built_at: datetime, origin: str, replace: bool) -> None:
    for ecosystem, count in counts.items():
        if not replace:
            row = conn.execute("SELECT COUNT(DISTINCT id) FROM packages WHERE ecosystem = ?", (ecosystem,)).fetchone()
            count = row[0]
        conn.execute("INSERT OR REPLACE INTO ecosystems VALUES (?, ?, ?, ?)",
                     (ecosystem, count, built_at.isoformat(timespec="seconds"), origin))


def _zip_records(data: bytes, where: str, skipped: list[str] | None = None) -> tuple[list[dict[str, Any]],
                                                                                    datetime]:
    """The JSON records of an export zip and its newest member's date; a member that is too large, not JSON
    (a truncated download) or not an object is named in ``skipped``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise OsvError(f"{where}: not a zip file") from None
    records: list[dict[str, Any]] = []
    newest: datetime | None = None
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".json"):
                continue
            if info.file_size > MAX_RECORD_BYTES:
                if skipped is not None:
                    skipped.append(f"{where}:{info.filename}: larger than {MAX_RECORD_BYTES} bytes")
                continue
            stamp = datetime(*info.date_time, tzinfo=UTC)
            newest = stamp if newest is None or stamp > newest else newest
            try:
                record = json.loads(archive.read(info))
            except (json.JSONDecodeError, UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as exc:
                if skipped is not None:
                    skipped.append(f"{where}:{info.filename}: not valid JSON ({type(exc).__name__})")
                continue
            if isinstance(record, dict):
                records.append(record)
            elif skipped is not None:
                skipped.append(f"{where}:{info.filename}: not a JSON object")
    return records, newest or datetime.now(UTC)


def _load(database: Path, records: list[dict[str, Any]], built_at: datetime, origin: str, replace: bool,
          only: str | None = None, skipped: list[str] | None = None) -> dict[str, int]:
    conn = _connect(database, create=True)
    try:
        with conn:
            if replace and only:
                conn.execute("DELETE FROM packages WHERE ecosystem = ?", (only,))
            counts = _store(conn, records, skipped)
            if only and only not in counts:
                counts[only] = 0
            _mark(conn, counts, built_at, origin, replace)
            conn.execute("DELETE FROM advisories WHERE id NOT IN (SELECT id FROM packages)")
    except sqlite3.Error as exc:
        raise OsvError(f"OSV database {database}: {exc}") from None
    finally:
        conn.close()
    return counts


def update(database: Path, ecosystems: list[str], mirror: str | None = None) -> str:
    """Download each ecosystem's full export (from OSV's bucket, or a ``mirror`` laid out the same way) and
    replace that ecosystem's records."""
    import httpx

    lines: list[str] = []
    for ecosystem in ecosystems:
        url = f"{mirror.rstrip('/')}/{ecosystem}/all.zip" if mirror else EXPORT_URL.format(ecosystem=ecosystem)
        try:
            with httpx.Client(timeout=httpx.Timeout(30.0, read=300.0), follow_redirects=True) as client:
                response = client.get(url)
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise OsvError(f"{ecosystem}: download of {url} failed ({exc}); "
                           "on an air-gapped host copy all.zip over and run `outsidein db import all.zip`") from None
        skipped: list[str] = []
        records, _stamp = _zip_records(response.content, url, skipped)
        counts = _load(database, records, datetime.now(UTC), url, replace=True, only=base_ecosystem(ecosystem),
                       skipped=skipped)
        lines.append(f"{ecosystem}: {counts.get(base_ecosystem(ecosystem), 0)} advisories")
        if skipped:
            lines.append(_skipped_line(skipped))
    return "\n".join(lines) + f"\nOSV database updated at {database}"


def _skipped_line(skipped: list[str]) -> str:
    shown = "; ".join(skipped[:5]) + (f"; … {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return f"skipped {len(skipped)} malformed record(s): {shown}"


def import_file(database: Path, file: Path) -> str:
    """Load an export zip (replacing its ecosystems), a single OSV JSON record, or a folder of them. Records
    that cannot be read or are malformed are counted and named in the returned text, never dropped silently."""
    skipped: list[str] = []
    if file.is_dir():
        records = []
        for path in sorted(file.rglob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                skipped.append(f"{path}: not readable JSON ({type(exc).__name__})")
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                skipped.append(f"{path}: not a JSON object")
        counts = _load(database, records, datetime.now(UTC), str(file), replace=False, skipped=skipped)
    else:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise OsvError(f"{file}: cannot read ({exc.strerror or exc})") from None
        if data[:2] == b"PK":
            records, built_at = _zip_records(data, str(file), skipped)
            conn = _connect(database, create=True)
            try:
                with conn:
                    ecosystems = {base_ecosystem(str(a["package"]["ecosystem"])) for r in records
                                  for a in r.get("affected") or [] if isinstance(a, dict)
                                  and isinstance(a.get("package"), dict) and a["package"].get("ecosystem")}
                    for ecosystem in ecosystems:
                        conn.execute("DELETE FROM packages WHERE ecosystem = ?", (ecosystem,))
            finally:
                conn.close()
            counts = _load(database, records, built_at, str(file), replace=True, skipped=skipped)
        else:
            try:
                record = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise OsvError(f"{file}: neither an OSV export zip nor an OSV JSON record") from None
            records = record if isinstance(record, list) else [record]
            skipped += [f"{file}: entry #{i + 1} is not a JSON object" for i, r in enumerate(records)
                        if not isinstance(r, dict)]
            counts = _load(database, [r for r in records if isinstance(r, dict)], datetime.now(UTC), str(file),
                           replace=False, skipped=skipped)
    if not counts:
        raise OsvError(f"{file}: no OSV records found" + (f" ({_skipped_line(skipped)})" if skipped else ""))
    total = ", ".join(f"{eco} {n}" for eco, n in sorted(counts.items()))
    out = f"imported {file} into {database}: {total}"
    return out + (f"\n{_skipped_line(skipped)}" if skipped else "")


def status(database: Path) -> str:
    info = database_info(database)
    if info.get("error"):
        return str(info["error"])
    lines = [f"OSV database {database}"]
    now = datetime.now(UTC)
    for name, entry in sorted(info["ecosystems"].items()):
        built = datetime.fromisoformat(entry["built_at"])
        lines.append(f"  {name:<12} {entry['records']:>7} advisories  built {entry['built_at']} "
                     f"({(now - built).days} days ago)  from {entry['origin']}")
    if info["built_at"]:
        age = (now - datetime.fromisoformat(info["built_at"])).days
        lines.append(f"oldest ecosystem built {info['built_at']}: {age} days old")
    return "\n".join(lines)


def database_info(database: Path) -> dict[str, Any]:
    """What the snapshot records about the database: its path, ecosystems and build time, or the error."""
    try:
        conn = _connect(database)
    except OsvError as exc:
        return {"path": str(database), "error": str(exc), "ecosystems": {}, "built_at": None}
    try:
        rows = conn.execute("SELECT name, records, built_at, origin FROM ecosystems").fetchall()
    except sqlite3.Error as exc:
        return {"path": str(database), "error": f"OSV database {database} is unreadable: {exc}", "ecosystems": {},
                "built_at": None}
    finally:
        conn.close()
    ecosystems = {name: {"records": records, "built_at": built, "origin": origin}
                  for name, records, built, origin in rows}
    if not ecosystems:
        return {"path": str(database), "error": f"the OSV database at {database} is empty: run `outsidein db update`",
                "ecosystems": {}, "built_at": None}
    return {"path": str(database), "error": None, "ecosystems": ecosystems,
            "built_at": min(e["built_at"] for e in ecosystems.values())}


# --- matching --------------------------------------------------------------------------------------------

CVSS_BANDS = ((9.0, "CRITICAL"), (7.0, "HIGH"), (4.0, "MEDIUM"), (0.0, "LOW"))
GHSA_SEVERITY = {"CRITICAL": "CRITICAL", "HIGH": "HIGH", "MODERATE": "MEDIUM", "MEDIUM": "MEDIUM", "LOW": "LOW"}


def cvss_score(vector: str) -> float | None:
    """The base score of a CVSS v3.x or v4.0 vector, or None when it does not parse."""
    from cvss import CVSS3, CVSS4  # the `cvss` library: the FIRST calculators, v2 to v4

    try:
        if vector.startswith("CVSS:4."):
            return float(CVSS4(vector).base_score)
        if vector.startswith("CVSS:3."):
            return float(CVSS3(vector).base_score)
    except Exception:  # the library raises its own error types for malformed vectors
        return None
    return None


def severity_of(record: dict[str, Any]) -> tuple[str | None, float | None, str | None]:
    """(severity, base score, vector) of a record; severity None when the record gives none."""
    best: tuple[float, str] | None = None
    for entry in record.get("severity") or []:
        if isinstance(entry, dict) and str(entry.get("type", "")).startswith("CVSS_"):
            score = cvss_score(str(entry.get("score", "")))
            if score is not None and (best is None or score > best[0]):
                best = (score, str(entry["score"]))
    if best is not None:
        band = next(name for floor, name in CVSS_BANDS if best[0] >= floor)
        return band, best[0], best[1]
    specific = record.get("database_specific") or {}
    label = GHSA_SEVERITY.get(str(specific.get("severity", "")).upper()) if isinstance(specific, dict) else None
    return label, None, None


class OsvDatabase:
    """A read-only handle for matching: ``lookup`` returns the advisories of one package version."""

    def __init__(self, database: Path) -> None:
        self.path = database
        self.info = database_info(database)
        self._conn: sqlite3.Connection | None = None if self.info["error"] else _connect(database)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def covers(self, ecosystem: str) -> bool:
        return ecosystem in self.info["ecosystems"]

    def _records(self, ecosystem: str, name: str) -> Iterator[dict[str, Any]]:
        if self._conn is None:
            return
        rows = self._conn.execute(
            "SELECT a.record FROM packages p JOIN advisories a ON a.id = p.id "
            "WHERE p.ecosystem = ? AND p.name = ? AND a.withdrawn = 0 ORDER BY a.id",
            (ecosystem, normalize(ecosystem, name))).fetchall()
        for (text,) in rows:
            yield json.loads(text)

    def lookup(self, ecosystem: str, name: str, version: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The advisories affecting ``name@version`` (merged by alias) and problems met while matching.

        Raises ``InvalidVersion`` when ``version`` itself does not parse in the ecosystem.
        """
        matches: list[dict[str, Any]] = []
        problems: list[str] = []
        wanted = normalize(ecosystem, name)
        for record in self._records(ecosystem, name):
            record_id = record.get("id", "?") if isinstance(record, dict) else "?"
            try:
                problems += self._match_record(ecosystem, wanted, version, record, matches)
            except InvalidVersion:
                raise  # the installed version itself does not parse (is_affected lets only that through)
            except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:
                problems.append(f"malformed OSV record {record_id} ({type(exc).__name__}: {str(exc)[:120]})")
        return merge_aliases(matches), problems

    @staticmethod
    def _match_record(ecosystem: str, wanted: str, version: str, record: dict[str, Any],
                      matches: list[dict[str, Any]]) -> list[str]:
        """Append ``record`` to ``matches`` when it affects the version; returns the problems met. A malformed
        ``affected`` entry (not an object) is skipped and reported, the record's other entries still count."""
        problems: list[str] = []
        record_id = record.get("id", "?")
        for index, affected in enumerate(record.get("affected") or []):
            if not isinstance(affected, dict) or not isinstance(affected.get("package") or {}, dict):
                problems.append(f"malformed OSV record {record_id}: affected[{index}] is not an object")
                continue
            package = affected.get("package") or {}
            if (base_ecosystem(str(package.get("ecosystem", ""))) != ecosystem
                    or normalize(ecosystem, str(package.get("name", ""))) != wanted):
                continue
            hit, issues = is_affected(ecosystem, affected, version)
            problems += [f"{record_id}: {issue}" for issue in issues]
            if hit:
                matches.append(summarize(record, _fixes(ecosystem, affected, version)))
                break
        return problems


def _fixes(ecosystem: str, affected: dict[str, Any], version: str) -> list[str]:
    """The upgrade target of each range that affects ``version``: its lowest ``fixed`` above the version (the
    fix of the release line installed, not of other lines), lowest first."""
    found: list[tuple[Any, str]] = []
    for entry in affected.get("ranges") or []:
        range_type = str(entry.get("type", ""))
        if range_type not in ("SEMVER", "ECOSYSTEM"):
            continue
        try:
            if not in_range(ecosystem, range_type, entry.get("events") or [], version):
                continue
            installed = version_key(ecosystem, range_type, version)
            above = sorted((version_key(ecosystem, range_type, str(e["fixed"])), str(e["fixed"]))
                           for e in entry.get("events") or [] if "fixed" in e)
            nearest = next(((k, t) for k, t in above if k > installed), None)
        except InvalidVersion:
            continue
        if nearest and nearest[1] not in [t for _k, t in found]:
            found.append(nearest)
    return [text for _key, text in sorted(found, key=lambda item: item[0])]


def summarize(record: dict[str, Any], fixed: list[str]) -> dict[str, Any]:
    severity, score, vector = severity_of(record)
    summary = record.get("summary") or (record.get("details") or "").strip().split("\n", 1)[0][:200]
    return {"id": record["id"], "aliases": sorted(str(a) for a in record.get("aliases") or []),
            "summary": summary, "severity": severity, "score": score, "vector": vector, "fixed": fixed,
            "published": record.get("published")}


def merge_aliases(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per vulnerability: records sharing an id or alias merge (the one with a severity leads)."""
    groups: list[list[dict[str, Any]]] = []
    for match in matches:
        names = {match["id"], *match["aliases"]}
        joined = [g for g in groups if any(names & {m["id"], *m["aliases"]} for m in g)]
        merged = [match] + [m for g in joined for m in g]
        groups = [g for g in groups if g not in joined] + [merged]
    out: list[dict[str, Any]] = []
    for group in groups:
        group.sort(key=lambda m: (m["score"] is None, m["severity"] is None, not m["id"].startswith("GHSA"),
                                  m["id"]))
        lead = dict(group[0])
        ids = {m["id"] for m in group}
        lead["aliases"] = sorted(({a for m in group for a in m["aliases"]} | ids) - {lead["id"]})
        lead["fixed"] = lead["fixed"] or next((m["fixed"] for m in group if m["fixed"]), [])
        out.append(lead)
    return sorted(out, key=lambda m: m["id"])
