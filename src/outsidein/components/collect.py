"""Collect layer-10 evidence: package and image inventories matched against the local OSV database, and the
running versions of ops tools.

Matching happens here, at collection, so a snapshot holds the matched advisories and an offline audit
(``outsidein audit --from snapshot.json``) gives the same result without the database. The evidence JSON of a
repository or manifest set (``SourceEvidence.kind`` "repository" / "manifests")::

    {"roots": ["/srv/app"], "files": ["requirements.txt", ...], "errors": ["web/yarn.lock: cannot parse ..."],
     "database": {"path": ..., "error": null, "built_at": "2026-05-01T00:00:00+00:00", "max_age_days": 7,
                  "ecosystems": {"PyPI": {"records": 1234, "built_at": ..., "origin": ...}}},
     "packages": [{"ecosystem": "PyPI", "name": "Django", "version": "3.2.12", "locations": ["requirements.txt:3"],
                   "advisories": [{"id", "aliases", "summary", "severity", "score", "vector", "fixed",
                                   "published"}], "error": null}],
     "unpinned": [{"ecosystem", "name", "spec", "location"}],
     "images": [{"ref", "name", "tag", "digest", "location", "package": {"ecosystem", "name", "version"} | null,
                 "advisories": [...]}]}

A package's ``error`` is why it could not be matched (its ecosystem is not in the database, its version does
not parse): the check reports it NOT_ASSESSED. An ops tool ("ops_tool")::

    {"kind": "grafana", "url": ..., "version": "10.2.3", "package": {"ecosystem": "Go",
     "name": "github.com/grafana/grafana"} | null, "advisories": [...], "error": null, "database": {...}}

An unreachable tool is a ``Record(error=...)``: NOT_ASSESSED. Grafana publishes its advisories in OSV as the Go
module ``github.com/grafana/grafana``; SonarQube has no OSV package, so its version is reported and the
advisory match is NOT_ASSESSED. Images of known tools (``grafana/grafana:10.2.3``) are matched the same way;
other images are OS layers only a scanner such as Trivy can read, so only their pinning is checked.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from outsidein.components.inventory import Inventory, read_inventory
from outsidein.components.osvdb import OsvDatabase
from outsidein.components.versions import InvalidVersion
from outsidein.evidence import Record, SourceEvidence
from outsidein.scope import ManifestsScope, OpsToolScope, OsvScope, RepositoryScope, Scope

TOOL_PACKAGES = {"grafana": ("Go", "github.com/grafana/grafana")}
IMAGE_TOOLS = {"grafana/grafana": "grafana", "grafana/grafana-oss": "grafana", "grafana/grafana-enterprise": "grafana",
               "docker.io/grafana/grafana": "grafana", "docker.io/grafana/grafana-oss": "grafana"}
TIMEOUT = 10.0


def collect_components(scope: Scope) -> list[SourceEvidence]:
    database = OsvDatabase(scope.osv.database)
    try:
        sources: list[RepositoryScope | ManifestsScope] = [*scope.repositories, *scope.manifests]
        out = [collect_source(entry, database, scope.osv) for entry in sources]
        out += [collect_ops_tool(tool, database, scope.osv) for tool in scope.ops_tools]
    finally:
        database.close()
    return out


def _database_json(database: OsvDatabase, osv: OsvScope) -> dict[str, Any]:
    """The database's state at collection; ``checked_at`` makes the age check reproducible offline."""
    return {**database.info, "max_age_days": osv.max_age_days,
            "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _match(database: OsvDatabase, ecosystem: str, name: str, version: str) -> tuple[list[dict[str, Any]],
                                                                                   str | None]:
    """(advisories, why not matched) for one package version."""
    if database.info["error"]:
        return [], database.info["error"]
    if not database.covers(ecosystem):
        return [], f"the OSV database has no {ecosystem} advisories: run `outsidein db update`"
    try:
        advisories, problems = database.lookup(ecosystem, name, version)
    except InvalidVersion as exc:
        return [], f"version not comparable: {exc}"
    except Exception as exc:  # one package's bad data must never stop the matching of the others
        return [], f"matching failed ({type(exc).__name__}: {str(exc)[:160]})"
    if problems and not advisories:
        return [], "an advisory's ranges could not be evaluated: " + "; ".join(problems[:3])
    return advisories, None


def _inventory_json(inv: Inventory, database: OsvDatabase) -> dict[str, Any]:
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for package in inv.packages:
        entry = merged.setdefault(package.key(), {"ecosystem": package.ecosystem, "name": package.name,
                                                  "version": package.version, "locations": []})
        if package.location not in entry["locations"]:
            entry["locations"].append(package.location)
    for entry in merged.values():
        entry["advisories"], entry["error"] = _match(database, entry["ecosystem"], entry["name"], entry["version"])
    images = []
    for image in inv.images:
        item: dict[str, Any] = {"ref": image.ref, "name": image.name, "tag": image.tag, "digest": image.digest,
                                "location": image.location, "package": None, "advisories": [], "error": None}
        tool = IMAGE_TOOLS.get(image.name)
        version = re.match(r"^v?(\d+\.\d+\.\d+)", image.tag or "")
        if tool and version:
            ecosystem, name = TOOL_PACKAGES[tool]
            item["package"] = {"ecosystem": ecosystem, "name": name, "version": version.group(1)}
            item["advisories"], item["error"] = _match(database, ecosystem, name, version.group(1))
        images.append(item)
    return {"files": inv.files, "errors": inv.errors, "packages": list(merged.values()), "unpinned": inv.unpinned,
            "images": images}


def collect_source(entry: RepositoryScope | ManifestsScope, database: OsvDatabase, osv: OsvScope) -> SourceEvidence:
    if isinstance(entry, RepositoryScope):
        roots, base, kind = [entry.path], entry.path, "repository"
    else:
        roots, base, kind = list(entry.paths), None, "manifests"
    if isinstance(entry, RepositoryScope) and not entry.path.is_dir():
        return SourceEvidence(entry.name, kind, entry.environment,
                              Record(error=f"{entry.path}: not a directory"))
    inv = read_inventory(roots, base)
    data = {"roots": [str(r) for r in roots], **_inventory_json(inv, database),
            "database": _database_json(database, osv)}
    return SourceEvidence(entry.name, kind, entry.environment, Record(data=data))


def read_tool_version(tool: OpsToolScope) -> str:
    """The running version from the tool's API; raises ``OSError``-like ``RuntimeError`` with a reason."""
    import httpx

    path = "/api/health" if tool.kind == "grafana" else "/api/server/version"
    url = tool.url.rstrip("/") + path
    try:
        with httpx.Client(timeout=TIMEOUT, verify=tool.verify_tls, follow_redirects=False) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"{url} unreachable ({type(exc).__name__}: {exc})") from None
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered HTTP {response.status_code}")
    if tool.kind == "grafana":
        try:
            version = response.json().get("version")
        except ValueError:
            version = None
    else:
        version = response.text.strip()
    if not isinstance(version, str) or not re.match(r"^v?\d+(\.\d+)+", version):
        raise RuntimeError(f"{url} did not report a version")
    return version


def collect_ops_tool(tool: OpsToolScope, database: OsvDatabase, osv: OsvScope) -> SourceEvidence:
    try:
        version = read_tool_version(tool)
    except RuntimeError as exc:
        return SourceEvidence(tool.name, "ops_tool", tool.environment, Record(error=str(exc)))
    data: dict[str, Any] = {"kind": tool.kind, "url": tool.url, "version": version, "package": None,
                            "advisories": [], "error": None, "database": _database_json(database, osv)}
    if tool.kind in TOOL_PACKAGES:
        ecosystem, name = TOOL_PACKAGES[tool.kind]
        semver = re.match(r"^v?(\d+\.\d+\.\d+)", version)
        data["package"] = {"ecosystem": ecosystem, "name": name}
        if semver:
            data["advisories"], data["error"] = _match(database, ecosystem, name, semver.group(1))
        else:
            data["error"] = f"version {version} is not a semantic version"
    else:
        data["error"] = f"no OSV package is published for {tool.kind}; running version {version} is reported only"
    return SourceEvidence(tool.name, "ops_tool", tool.environment, Record(data=data))
