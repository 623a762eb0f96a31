"""Who owns a finding: the scope's ``[[owners]]`` rules, first match wins.

A rule matches a finding when every key it gives matches: ``layer`` (a number or a list), ``environment`` (a
name or a list), ``check`` (a glob on the check id), ``resource`` (a glob on the resource), ``codeowners`` (a
repository's CODEOWNERS file: the finding's resource, a file path with an optional ``:line``, is matched against
the file's patterns with GitHub's rule, the last matching line wins, and that line's owners own the finding).
A rule with no match keys matches everything: put it last as the catch-all. A finding no rule matches is owned
by ``[store] default_owner`` ("unassigned").
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from outsidein.models import Finding
from outsidein.scope import OwnerRule

UNASSIGNED = "unassigned"
_LINE = re.compile(r":\d+(?::\d+)?$")


@dataclass(frozen=True)
class CodeOwnersLine:
    pattern: str
    owners: tuple[str, ...]
    regex: re.Pattern[str]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A CODEOWNERS (gitignore-style) pattern as a regex over a repository-relative path."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out = ""
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif body.startswith("**", i):
            out += ".*"
            i += 2
        elif body[i] == "*":
            out += "[^/]*"
            i += 1
        elif body[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(body[i])
            i += 1
    prefix = "^" if anchored else "^(?:.*/)?"
    # A pattern names a file or a folder: a folder owns everything under it.
    return re.compile(prefix + out + "(?:/.*)?$")


def parse_codeowners(text: str) -> list[CodeOwnersLine]:
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("\\#") else raw.strip()
        if not line:
            continue
        pattern, *owners = line.split()
        if owners:
            lines.append(CodeOwnersLine(pattern, tuple(owners), _pattern_regex(pattern)))
    return lines


def codeowners_for(lines: list[CodeOwnersLine], path: str) -> tuple[str, ...] | None:
    """The owners of the last matching line (GitHub's rule), or None."""
    path = path.removeprefix("./").lstrip("/")
    found = None
    for line in lines:
        if line.regex.match(path):
            found = line.owners
    return found


class Owners:
    """Resolves findings to owners with the scope's rules; CODEOWNERS files are read once."""

    def __init__(self, rules: tuple[OwnerRule, ...] | list[OwnerRule] = (), default: str = UNASSIGNED) -> None:
        self.rules = tuple(rules)
        self.default = default
        self._codeowners: dict[Path, list[CodeOwnersLine]] = {}

    def _lines(self, path: Path) -> list[CodeOwnersLine]:
        if path not in self._codeowners:
            try:
                self._codeowners[path] = parse_codeowners(path.read_text(encoding="utf-8"))
            except OSError:
                self._codeowners[path] = []  # a missing file matches nothing; the next rule decides
        return self._codeowners[path]

    def _match(self, rule: OwnerRule, finding: Finding) -> str | None:
        if rule.layers and finding.layer not in rule.layers:
            return None
        if rule.environments and (finding.environment or "") not in rule.environments:
            return None
        if rule.check and not fnmatch.fnmatchcase(finding.check_id, rule.check):
            return None
        if rule.resource and not fnmatch.fnmatchcase(finding.resource, rule.resource):
            return None
        if rule.codeowners is not None:
            owners = codeowners_for(self._lines(rule.codeowners), _file_of(finding.resource))
            if not owners:
                return None
            return rule.owner or " ".join(owners)
        return rule.owner

    def owner(self, finding: Finding) -> str:
        for rule in self.rules:
            owner = self._match(rule, finding)
            if owner:
                return owner
        return self.default


def _file_of(resource: str) -> str:
    """``src/app/settings.py:12`` -> ``src/app/settings.py``; a ``repo:path`` prefix without a slash is kept."""
    return _LINE.sub("", resource)
