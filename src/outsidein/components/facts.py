"""Layer-10 evidence parsed into typed facts for ``outsidein.checks.components``. ``parse_components`` never
raises: malformed evidence becomes a ``missing`` reason (NOT_ASSESSED), never an empty inventory that passes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from outsidein.evidence import SourceEvidence

INVENTORY = "inventory"  # the packages and images of a repository or manifest set
OSV_DATABASE = "osv-database"  # the local OSV database the inventory was matched against
OPS_TOOL = "ops-tool"  # the running version of an ops tool


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str | None  # CRITICAL/HIGH/MEDIUM/LOW, None when the record gives none
    score: float | None
    fixed: tuple[str, ...]

    @property
    def label(self) -> str:
        cves = [a for a in self.aliases if a.startswith("CVE-")]
        return self.id + (f" ({', '.join(cves)})" if cves else "")


@dataclass(frozen=True)
class PackageFacts:
    ecosystem: str
    name: str
    version: str
    locations: tuple[str, ...]
    advisories: tuple[Advisory, ...]
    error: str | None

    @property
    def resource(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class ImageFacts:
    ref: str
    name: str
    tag: str | None
    digest: str | None
    location: str
    advisories: tuple[Advisory, ...] = ()
    error: str | None = None
    package: tuple[str, str, str] | None = None  # (ecosystem, name, version) of a known tool


@dataclass
class ComponentsFacts:
    name: str
    kind: str  # "repository", "manifests" or "ops_tool"
    environment: str | None
    packages: list[PackageFacts] = field(default_factory=list)
    images: list[ImageFacts] = field(default_factory=list)
    unpinned: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    database_path: str = ""
    database_built_at: datetime | None = None
    database_max_age_days: int = 7
    database_checked_at: datetime | None = None  # when the collection looked at the database
    tool_kind: str | None = None
    tool_version: str | None = None
    tool_advisories: tuple[Advisory, ...] = ()
    tool_error: str | None = None
    missing: dict[str, str] = field(default_factory=dict)


def _advisory(raw: Any) -> Advisory:
    return Advisory(id=str(raw["id"]), aliases=tuple(str(a) for a in raw.get("aliases") or []),
                    summary=str(raw.get("summary") or ""), severity=raw.get("severity"),
                    score=float(raw["score"]) if isinstance(raw.get("score"), int | float) else None,
                    fixed=tuple(str(v) for v in raw.get("fixed") or []))


def _database(facts: ComponentsFacts, raw: Any) -> None:
    if not isinstance(raw, dict):
        facts.missing[OSV_DATABASE] = "no OSV database information was collected: run `outsidein db update`"
        return
    facts.database_path = str(raw.get("path", ""))
    facts.database_max_age_days = int(raw.get("max_age_days") or 7)
    if raw.get("error"):
        facts.missing[OSV_DATABASE] = str(raw["error"])
    elif raw.get("built_at"):
        facts.database_built_at = datetime.fromisoformat(str(raw["built_at"]))
    if raw.get("checked_at"):
        facts.database_checked_at = datetime.fromisoformat(str(raw["checked_at"]))


def parse_components(evidence: SourceEvidence) -> ComponentsFacts:
    facts = ComponentsFacts(name=evidence.name, kind=evidence.kind, environment=evidence.environment)
    key = OPS_TOOL if evidence.kind == "ops_tool" else INVENTORY
    record = evidence.data
    if record.error or not isinstance(record.data, dict):
        facts.missing[key] = record.error or f"{evidence.name}: no components were collected"
        return facts
    data = record.data
    try:
        _database(facts, data.get("database"))
        if evidence.kind == "ops_tool":
            facts.tool_kind = str(data.get("kind"))
            facts.tool_version = str(data.get("version"))
            facts.tool_advisories = tuple(_advisory(a) for a in data.get("advisories") or [])
            facts.tool_error = data.get("error")
            return facts
        for raw in data.get("packages") or []:
            facts.packages.append(PackageFacts(
                ecosystem=str(raw["ecosystem"]), name=str(raw["name"]), version=str(raw["version"]),
                locations=tuple(str(loc) for loc in raw.get("locations") or []),
                advisories=tuple(_advisory(a) for a in raw.get("advisories") or []), error=raw.get("error")))
        for raw in data.get("images") or []:
            package = raw.get("package")
            facts.images.append(ImageFacts(
                ref=str(raw["ref"]), name=str(raw["name"]), tag=raw.get("tag"), digest=raw.get("digest"),
                location=str(raw.get("location", "")),
                advisories=tuple(_advisory(a) for a in raw.get("advisories") or []), error=raw.get("error"),
                package=(str(package["ecosystem"]), str(package["name"]), str(package["version"]))
                if isinstance(package, dict) else None))
        facts.unpinned = [dict(u) for u in data.get("unpinned") or [] if isinstance(u, dict)]
        facts.errors = [str(e) for e in data.get("errors") or []]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        facts.missing[key] = f"{evidence.name}: the components evidence is malformed ({exc})"
    return facts
