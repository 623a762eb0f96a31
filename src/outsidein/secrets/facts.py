"""Repository evidence parsed into typed facts for the layer-5 checks. ``parse_repository`` never raises.

``missing`` is keyed by ``tree`` (the working tree: secrets in HEAD, Dockerfiles, pre-commit), ``history``
(the git history: secrets and .env files ever committed) and ``gitignore``; a path that does not exist or
cannot be read misses all three, a folder that is not a git repository misses ``history`` and ``gitignore``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from outsidein.evidence import SourceEvidence

TREE, HISTORY, GITIGNORE = "tree", "history", "gitignore"
KEYS = (TREE, HISTORY, GITIGNORE)


@dataclass(frozen=True)
class SecretHit:
    rule: str
    file: str
    line: int
    masked: str
    fingerprint: str
    commit: str | None = None  # history: the oldest commit that added it to this file
    commits: int = 1


@dataclass(frozen=True)
class DockerSecret:
    file: str
    line: int
    instruction: str  # ENV or ARG
    name: str
    value: str | None  # masked literal, None without one (or a placeholder)


@dataclass
class RepositoryFacts:
    name: str
    environment: str | None
    path: str = ""
    head: str | None = None
    tree: list[SecretHit] = field(default_factory=list)
    history: list[SecretHit] = field(default_factory=list)
    tracked_env_files: list[str] = field(default_factory=list)
    env_files_history: dict[str, str] = field(default_factory=dict)  # path -> commit that added it
    gitignore: dict[str, bool] = field(default_factory=dict)  # playbook pattern -> covered
    gitignore_present: bool = False
    precommit_files: list[str] = field(default_factory=list)
    scanners: list[str] = field(default_factory=list)
    dockerfiles: list[DockerSecret] = field(default_factory=list)
    commits: int = 0
    missing: dict[str, str] = field(default_factory=dict)


def _hit(raw: dict[str, Any]) -> SecretHit:
    return SecretHit(rule=str(raw["rule"]), file=str(raw["file"]), line=int(raw["line"]), masked=str(raw["masked"]),
                     fingerprint=str(raw["fingerprint"]), commit=raw.get("commit"), commits=int(raw.get("commits", 1)))


def parse_repository(evidence: SourceEvidence) -> RepositoryFacts:
    facts = RepositoryFacts(evidence.name, evidence.environment)
    if not evidence.data.ok:
        facts.missing = dict.fromkeys(KEYS, evidence.data.error or "not collected")
        return facts
    try:
        _parse(evidence.data.data, facts)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        reason = f"repository evidence could not be parsed ({type(exc).__name__}: {exc})"
        for key in KEYS:
            facts.missing.setdefault(key, reason)
    return facts


def _parse(data: dict[str, Any], facts: RepositoryFacts) -> None:
    facts.path, facts.head = str(data.get("path", "")), data.get("head")
    facts.missing.update({str(k): str(v) for k, v in (data.get("errors") or {}).items()})
    for key in KEYS:
        if key not in data and key not in facts.missing:
            facts.missing[key] = f"{key} was not collected"
    if TREE not in facts.missing:
        tree = data[TREE]
        facts.tree = [_hit(f) for f in tree.get("findings", [])]
        facts.tracked_env_files = [str(p) for p in tree.get("tracked_env_files", [])]
        pre = data.get("precommit") or {}
        facts.precommit_files, facts.scanners = list(pre.get("files", [])), list(pre.get("scanners", []))
        facts.dockerfiles = [DockerSecret(str(d["file"]), int(d["line"]), str(d["instruction"]), str(d["name"]),
                                          d.get("value")) for d in data.get("dockerfiles") or []]
    if HISTORY not in facts.missing:
        history = data[HISTORY]
        facts.history = [_hit(f) for f in history.get("findings", [])]
        facts.env_files_history = {str(e["path"]): str(e["commit"]) for e in history.get("env_files", [])}
        facts.commits = int(history.get("commits", 0))
    if GITIGNORE not in facts.missing:
        facts.gitignore = {str(k): bool(v) for k, v in data[GITIGNORE].get("ignored", {}).items()}
        facts.gitignore_present = bool(data[GITIGNORE].get("gitignore_present"))
