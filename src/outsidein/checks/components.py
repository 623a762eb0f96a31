"""Layer 10: dependency CVEs (OWASP A06:2021), image pinning and ops tools' versions.

The checks read ``ComponentsFacts`` (``outsidein.components.facts``): package inventories from lockfiles with the
OSV advisories matched at collection, image references, and ops tools' running versions.

Decisions, where the playbook leaves room:

- **Vulnerable package** (one result per package version and advisory): the advisory's own severity (CVSS base
  score of its vector, else GitHub's label), HIGH when the record gives none (the playbook's gate is HIGH+;
  an unrated advisory is not waved through). The detail names path:line, the advisory and its aliases, and
  the lowest fixed version above the one installed, or says no fix is published.
- **No database** makes the package checks NOT_ASSESSED ("run outsidein db update"), never PASS; a package
  whose ecosystem is missing from the database, whose version does not parse, or a lockfile that does not
  parse, is NOT_ASSESSED on its own. A source with no lockfile at all is NOT_ASSESSED: nothing was audited.
- **Database age** (MEDIUM): older than ``[osv] max_age_days`` (7, as the playbook demands of Trivy's DB) at
  collection time is a finding. The age is measured at collection, so an offline re-audit agrees.
- **Image pinning**: ``:latest`` or no tag (which means latest) is HIGH in an environment named prod/production
  (the playbook's "never use :latest in production") and MEDIUM elsewhere; a digest pin (``@sha256:``) passes
  whatever the tag. A Dockerfile or YAML file that does not parse (named with path:line) makes the image check
  NOT_ASSESSED for it, never PASS; so does a walk stopped at its file cap.
- **Unpinned requirement** (LOW): a ``requirements*.txt`` line without ``==`` cannot be audited — what gets
  installed changes with every release.
- **Ops tools**: the running version (Grafana ``/api/health``, SonarQube ``/api/server/version``) matched against
  OSV; an unreachable tool, or one with no OSV package (SonarQube), is NOT_ASSESSED with the version reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from outsidein.checks.registry import COMPONENTS, target_check
from outsidein.components.facts import INVENTORY, OPS_TOOL, OSV_DATABASE, Advisory, ComponentsFacts
from outsidein.components.inventory import parse_dockerfile, parse_yaml_images, parser_for
from outsidein.models import Result, Severity, fail, not_assessed, passed

PRODUCTION = {"prod", "production", "prd", "live"}
DB_HINT = "run `outsidein db update`"


def _severity(advisory: Advisory) -> Severity:
    return Severity.parse(advisory.severity) if advisory.severity else Severity.HIGH


def _advisory_detail(advisory: Advisory, installed: str) -> str:
    score = f", CVSS {advisory.score:g}" if advisory.score is not None else ""
    rating = advisory.severity or "unrated"
    fix = f"fixed in {advisory.fixed[0]}" if advisory.fixed else "no fixed version published"
    summary = f": {advisory.summary}" if advisory.summary else ""
    return f"{advisory.label} [{rating}{score}]{summary}; {installed} installed, {fix}"


@target_check(
    source=COMPONENTS, id="components-vulnerable-package", layer=10,
    title="Dependency with a known vulnerability (OSV)",
    severity=Severity.HIGH,
    remediation="Upgrade the package to the fixed version named in the finding, regenerate the lockfile, run the "
                "test suite on a branch (not `npm audit fix --force`), and deploy within the severity's SLA.",
    verify="outsidein db update && outsidein audit   # or: npm audit --audit-level=high; "
           "pip-audit -r requirements.txt",
    requires=(INVENTORY,),
)
def vulnerable_package(facts: ComponentsFacts) -> Iterator[Result]:
    check = "components-vulnerable-package"
    if facts.kind == "ops_tool":
        return
    if OSV_DATABASE in facts.missing:
        yield not_assessed(check, facts.name, f"{facts.missing[OSV_DATABASE]} ({DB_HINT})")
        return
    for error in facts.errors:
        yield not_assessed(check, error.split(": ", 1)[0], error)
    failed = False
    for package in facts.packages:
        where = ", ".join(package.locations[:3]) + (" …" if len(package.locations) > 3 else "")
        if package.error:
            yield not_assessed(check, package.resource, f"{package.ecosystem} {package.resource} ({where}): "
                                                        f"{package.error}")
            continue
        for advisory in package.advisories:
            failed = True
            yield fail(check, package.resource, f"{where}: {_advisory_detail(advisory, package.version)}",
                       environment=facts.environment, severity=_severity(advisory))
    for image in facts.images:
        if image.package is None:
            continue
        if image.error:
            yield not_assessed(check, image.ref, f"{image.location}: {image.error}")
            continue
        for advisory in image.advisories:
            failed = True
            yield fail(check, image.ref, f"{image.location}: {_advisory_detail(advisory, image.package[2])}",
                       environment=facts.environment, severity=_severity(advisory))
    audited = [p for p in facts.packages if not p.error] + [i for i in facts.images if i.package and not i.error]
    if not facts.packages and not any(i.package for i in facts.images):
        yield not_assessed(check, facts.name, "no lockfile, pinned requirement or go.mod was found: "
                                              "nothing was matched against OSV")
    elif not failed and audited:
        yield passed(check, facts.name, environment=facts.environment)


@target_check(
    source=COMPONENTS, id="components-osv-database-stale", layer=10,
    title="Vulnerability database older than 7 days",
    severity=Severity.MEDIUM,
    remediation="Refresh the OSV database before auditing (`outsidein db update`, or `outsidein db import all.zip` "
                "on an air-gapped host) and schedule it daily; advisories published since it was built are missed.",
    verify="outsidein db status",
)
def database_stale(facts: ComponentsFacts) -> Iterator[Result]:
    check = "components-osv-database-stale"
    if INVENTORY in facts.missing or OPS_TOOL in facts.missing:
        return  # nothing was matched; the other checks say why
    if OSV_DATABASE in facts.missing:
        yield not_assessed(check, facts.database_path or facts.name, f"{facts.missing[OSV_DATABASE]} ({DB_HINT})")
        return
    built, checked = facts.database_built_at, facts.database_checked_at
    if built is None or checked is None:
        yield not_assessed(check, facts.database_path or facts.name, "the database's build time was not recorded")
        return
    age = checked - built
    if age.days >= facts.database_max_age_days:
        yield fail(check, facts.database_path,
                   f"OSV database built {built.date().isoformat()}, {age.days} days before the audit of "
                   f"{facts.name} (limit {facts.database_max_age_days} days)", environment=facts.environment)
    else:
        yield passed(check, facts.database_path, environment=facts.environment)


def _image_gaps(facts: ComponentsFacts) -> list[tuple[str, str]]:
    """(resource, error) of the inventory errors that may hide an image: a Dockerfile or YAML file that could
    not be read or parsed, a missing root, a walk stopped at its cap (lockfile errors hide no image)."""
    gaps = []
    for error in facts.errors:
        source = error.split(": ", 1)[0]
        parser = parser_for(Path(re.sub(r"(?::\d+){1,2}$", "", source)))
        if parser is None or parser is parse_dockerfile or parser is parse_yaml_images:
            gaps.append((source, error))
    return gaps


@target_check(
    source=COMPONENTS, id="components-image-latest", layer=10,
    title="Image pinned to :latest or untagged",
    severity=Severity.HIGH,
    remediation="Pin the image to an exact version tag (grafana/grafana:10.4.2) or, better, a digest "
                "(@sha256:…) in the Dockerfile, compose file, manifest or Helm values; update it deliberately "
                "(staging first).",
    verify="grep -rnE '^FROM |image:' .   # every image carries a version tag or an @sha256 digest",
    requires=(INVENTORY,),
)
def image_latest(facts: ComponentsFacts) -> Iterator[Result]:
    check = "components-image-latest"
    if facts.kind == "ops_tool":
        return
    gaps = _image_gaps(facts)
    if not facts.images and not gaps:
        return
    for resource, error in gaps:
        yield not_assessed(check, resource, error)
    production = (facts.environment or "").lower() in PRODUCTION
    severity = Severity.HIGH if production else Severity.MEDIUM
    failed = False
    for image in facts.images:
        if image.digest:
            continue
        if image.tag is None or image.tag == "latest":
            failed = True
            how = "untagged (pulls :latest)" if image.tag is None else "pinned to :latest"
            yield fail(check, image.ref, f"{image.location}: {image.ref} is {how}"
                       + (" in production" if production else ""), environment=facts.environment, severity=severity)
    if not failed and not gaps:
        yield passed(check, facts.name, environment=facts.environment)


@target_check(
    source=COMPONENTS, id="components-unpinned-requirement", layer=10,
    title="Python requirement not pinned to an exact version",
    severity=Severity.LOW,
    remediation="Pin every requirement with == (pip-compile or `uv pip compile` produce a pinned file with hashes) "
                "so the audited versions are the installed ones.",
    verify="grep -rnvE '^\\s*(#|$)|==' requirements*.txt",
    requires=(INVENTORY,),
)
def unpinned_requirement(facts: ComponentsFacts) -> Iterator[Result]:
    check = "components-unpinned-requirement"
    if facts.kind == "ops_tool":
        return
    pypi = [u for u in facts.unpinned if u.get("ecosystem") == "PyPI"]
    for entry in pypi:
        yield fail(check, entry["name"], f"{entry['location']}: {entry['name']} {entry['spec']} is not pinned "
                                         "with ==, so the installed version cannot be audited",
                   environment=facts.environment)
    if not pypi and any(p.ecosystem == "PyPI" for p in facts.packages):
        yield passed(check, facts.name, environment=facts.environment)


@target_check(
    source=COMPONENTS, id="components-ops-tool-vulnerable", layer=10,
    title="Ops tool (Grafana, SonarQube) runs a version with known vulnerabilities",
    severity=Severity.HIGH,
    remediation="Upgrade the tool to the fixed version (staging first: validate dashboards and quality gates), "
                "pin it in compose or Helm, and subscribe to the vendor's security advisories.",
    verify="curl -s https://grafana.example/api/health | jq .version   # SonarQube: /api/server/version",
    requires=(OPS_TOOL,),
)
def ops_tool_vulnerable(facts: ComponentsFacts) -> Iterator[Result]:
    check = "components-ops-tool-vulnerable"
    if facts.kind != "ops_tool":
        return
    resource = f"{facts.name} ({facts.tool_kind} {facts.tool_version})"
    if OSV_DATABASE in facts.missing:
        yield not_assessed(check, resource, f"{facts.missing[OSV_DATABASE]} ({DB_HINT})")
        return
    if facts.tool_error:
        yield not_assessed(check, resource, facts.tool_error)
        return
    for advisory in facts.tool_advisories:
        yield fail(check, resource, _advisory_detail(advisory, str(facts.tool_version)),
                   environment=facts.environment, severity=_severity(advisory))
    if not facts.tool_advisories:
        yield passed(check, resource, environment=facts.environment)
