"""Version ordering per ecosystem, and the OSV range algorithm.

Decisions:

- **PyPI** versions compare by PEP 440 (``packaging.version``): ``1.0.dev1 < 1.0a1 < 1.0 < 1.0.post1``, and a
  local version ``1.0+ubuntu1`` sorts after ``1.0`` (so ``fixed: 1.0`` means ``1.0+local`` is fixed too).
- **npm**, **crates.io** and every range of type ``SEMVER`` compare by SemVer 2.0 precedence: numeric
  major.minor.patch, then a pre-release sorts *before* its release (``1.0.0-rc.1 < 1.0.0``), pre-release
  identifiers compare numerically when both are numbers, lexically (ASCII) otherwise, a numeric identifier
  sorts before an alphanumeric one, and a shorter list of identifiers sorts first when it is a prefix. Build
  metadata (``+...``) is ignored. npm's own range syntax (``^1.2``, which excludes pre-releases) is never
  needed: OSV ranges are events, and a lockfile holds exact versions. The ``semver`` PyPI package does the
  same, but is strict about a leading ``v`` and the Go forms below; 40 lines here avoid a dependency.
- **Go** versions are SemVer with a ``v`` prefix (stripped: OSV writes Go ranges without it). Pseudo-versions
  (``v0.0.0-20210226172049-e18ecbb05110``, ``v1.2.4-0.20191109021931-daa7c04131f5``) are SemVer pre-releases
  and order correctly as such; ``+incompatible`` is build metadata.
- **Ranges** follow the OSV schema's evaluation: a version is affected when it is listed in ``versions``, or
  when, in any non-GIT range, it is below some ``limit`` (if the range has limits) and the last event at or
  below it, walking the events sorted by version (``introduced: "0"`` first), was an ``introduced``
  (``version >= introduced``) rather than a ``fixed`` (``version >= fixed``) or a ``last_affected``
  (``version > last_affected``). ``fixed`` is exclusive, ``last_affected`` inclusive.
- A version that cannot be parsed in its ecosystem raises ``InvalidVersion``: "could not tell" is not
  "not affected". A bad event inside an advisory only disables that range (recorded, never a silent pass for
  the package: the caller reports it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from packaging.version import InvalidVersion as _PepInvalid
from packaging.version import Version

ECOSYSTEMS_PEP440 = {"PyPI"}
ECOSYSTEMS_SEMVER = {"npm", "crates.io", "Go", "Packagist", "Pub", "Hex", "NuGet"}


class InvalidVersion(ValueError):
    """A version string that does not parse in its ecosystem."""


_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$")

SemverKey = tuple[int, int, int, tuple[int, tuple[tuple[int, int, str], ...]]]


def semver_key(text: str) -> SemverKey:
    """A sort key by SemVer 2.0 precedence; a leading ``v`` or ``=`` is accepted, build metadata ignored."""
    match = _SEMVER.match(text.strip().lstrip("="))
    if not match:
        raise InvalidVersion(f"{text!r} is not a semantic version")
    major, minor, patch, pre, _build = match.groups()
    if pre is None:
        pre_key: tuple[int, tuple[tuple[int, int, str], ...]] = (1, ())  # a release sorts after its pre-releases
    else:
        parts = pre.split(".")
        if any(p == "" for p in parts):
            raise InvalidVersion(f"{text!r} has an empty pre-release identifier")
        pre_key = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts))
    return int(major), int(minor), int(patch), pre_key


def pep440_key(text: str) -> Version:
    try:
        return Version(text)
    except _PepInvalid:
        raise InvalidVersion(f"{text!r} is not a PEP 440 version") from None


def version_key(ecosystem: str, range_type: str, text: str) -> Any:
    """The sort key of ``text`` in a range of ``range_type`` (SEMVER or ECOSYSTEM) for ``ecosystem``."""
    base = ecosystem.split(":", 1)[0]
    if range_type == "SEMVER" or base in ECOSYSTEMS_SEMVER:
        return semver_key(text)
    if base in ECOSYSTEMS_PEP440:
        return pep440_key(text)
    raise InvalidVersion(f"versions of the {ecosystem} ecosystem are not compared by outsidein")


def same_version(ecosystem: str, a: str, b: str) -> bool:
    """Whether two version strings name the same release (PEP 440 ``1.0 == 1.0.0``; otherwise exact)."""
    if a == b:
        return True
    try:
        return bool(version_key(ecosystem, "ECOSYSTEM", a) == version_key(ecosystem, "ECOSYSTEM", b))
    except InvalidVersion:
        return False


_INTRODUCED, _FIXED, _LAST = 0, 1, 2


def _events(ecosystem: str, range_type: str, events: Iterable[Mapping[str, Any]]) -> tuple[
        list[tuple[Any, int, Any]], list[Any]]:
    """The range's events as (sort key, kind, version key) and its limits; ``"0"`` sorts below everything."""
    out: list[tuple[Any, int, Any]] = []
    limits: list[Any] = []
    for event in events:
        if "introduced" in event:
            value = str(event["introduced"])
            if value == "0":
                out.append(((0,), _INTRODUCED, None))
            else:
                key = version_key(ecosystem, range_type, value)
                out.append(((1, key), _INTRODUCED, key))
        elif "fixed" in event:
            key = version_key(ecosystem, range_type, str(event["fixed"]))
            out.append(((1, key), _FIXED, key))
        elif "last_affected" in event:
            key = version_key(ecosystem, range_type, str(event["last_affected"]))
            out.append(((1, key), _LAST, key))
        elif "limit" in event:
            value = str(event["limit"])
            limits.append(None if value == "*" else version_key(ecosystem, range_type, value))
    out.sort(key=lambda item: (item[0], item[1]))
    return out, limits


def in_range(ecosystem: str, range_type: str, events: Iterable[Mapping[str, Any]], version: str) -> bool:
    """Whether ``version`` is affected by one OSV range (see the module docstring for the algorithm)."""
    key = version_key(ecosystem, range_type, version)
    sorted_events, limits = _events(ecosystem, range_type, events)
    if limits and not any(limit is None or key < limit for limit in limits):
        return False
    affected = False
    for _sort, kind, event_key in sorted_events:
        if kind == _INTRODUCED and (event_key is None or key >= event_key):
            affected = True
        elif (kind == _FIXED and key >= event_key) or (kind == _LAST and key > event_key):
            affected = False
    return affected


def is_affected(ecosystem: str, affected: Mapping[str, Any], version: str) -> tuple[bool, list[str]]:
    """Whether ``version`` is affected by one ``affected[]`` entry, and the problems met in its ranges.

    The package's own version is parsed first and an ``InvalidVersion`` for it propagates. A range whose
    events do not parse is skipped and named in the returned problems.
    """
    version_key(ecosystem, "ECOSYSTEM" if ecosystem.split(":", 1)[0] != "Go" else "SEMVER", version)
    problems: list[str] = []
    if any(same_version(ecosystem, version, str(listed)) for listed in affected.get("versions") or []):
        return True, problems
    for entry in affected.get("ranges") or []:
        range_type = str(entry.get("type", ""))
        if range_type not in ("SEMVER", "ECOSYSTEM"):
            continue  # GIT ranges name commits, not releases; the versions list covers them
        try:
            if in_range(ecosystem, range_type, entry.get("events") or [], version):
                return True, problems
        except InvalidVersion as exc:
            problems.append(str(exc))
    return False, problems


def fixed_versions(affected: Mapping[str, Any]) -> list[str]:
    """Every ``fixed`` event of an ``affected[]`` entry, in the record's order, without duplicates."""
    found: list[str] = []
    for entry in affected.get("ranges") or []:
        if entry.get("type") in ("SEMVER", "ECOSYSTEM"):
            for event in entry.get("events") or []:
                if "fixed" in event and str(event["fixed"]) not in found:
                    found.append(str(event["fixed"]))
    return found
