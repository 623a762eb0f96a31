"""Layer-5 evidence parsed into typed facts for the checks: repositories (``parse_repository``, never raises) and
live process environments (``parse_environ``, which the host parser calls). Pure: no collection code here, so
the checks import only this module and ``outsidein.secrets.rules``.

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
class SkippedFile:
    """A file of the working tree that was not scanned, and why (too large, unreadable)."""

    file: str
    reason: str


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
    skipped: list[SkippedFile] = field(default_factory=list)  # tree files not scanned: the tree is not all read
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
        facts.skipped = [SkippedFile(str(s["file"]), str(s["reason"])) for s in tree.get("skipped", [])]
    if HISTORY not in facts.missing:
        history = data[HISTORY]
        facts.history = [_hit(f) for f in history.get("findings", [])]
        facts.env_files_history = {str(e["path"]): str(e["commit"]) for e in history.get("env_files", [])}
        facts.commits = int(history.get("commits", 0))
    if GITIGNORE not in facts.missing:
        facts.gitignore = {str(k): bool(v) for k, v in data[GITIGNORE].get("ignored", {}).items()}
        facts.gitignore_present = bool(data[GITIGNORE].get("gitignore_present"))


# ------------------------------------------------------------------------------------------ process environments
#
# Evidence ``HostEvidence.files[ENVIRON_KEY]``: lines ``<pid>\t<process>\t<NAME>=<masked>``, then ``#read <n>``
# (processes whose environment was read) and ``#unreadable <n>`` (see ``outsidein.secrets.environ``).

ENVIRON_KEY = "/proc/*/environ"


@dataclass(frozen=True)
class EnvSecret:
    pid: int | None
    process: str
    name: str
    masked: str


@dataclass(frozen=True)
class EnvironReading:
    """What the process-environment evidence says: the masked secret-named variables, how many processes were
    read and could not be read, and the /proc mount options when hidepid hid processes from the collector.

    ``read`` tells a clean result from an empty one: with /proc mounted ``hidepid`` (or an empty saved file)
    nothing is read and nothing is unreadable, which is not a clean host.
    """

    secrets: tuple[EnvSecret, ...] = ()
    unreadable: int = 0
    read: int | None = None  # None: the evidence has no ``#read <n>`` line
    hidden: str | None = None

    def not_read(self) -> str | None:
        """Why the environments were not all read although none is reported unreadable, or None."""
        if self.hidden:
            return f"/proc is mounted with {self.hidden}: other users' processes are invisible to the collector; " \
                   "run as root or allow sudo"
        if not self.read:
            return ("no process environment was read (the evidence has no '#read <n>' line)" if self.read is None
                    else "no process environment was read (#read 0)") + ": collect again as root or with sudo"
        return None


def parse_environ(text: str) -> EnvironReading:
    """The process-environment evidence: its masked variables and how many processes were (not) read."""
    found: list[EnvSecret] = []
    unreadable = 0
    read: int | None = None
    hidden: str | None = None
    for line in text.splitlines():
        if line.startswith("#hidepid "):
            hidden = line[1:].strip()[:100]
            continue
        if line.startswith(("#unreadable ", "#read ")):
            word, _, count = line.partition(" ")
            if count.strip().isdigit():
                if word == "#read":
                    read = int(count)
                else:
                    unreadable = int(count)
            continue
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t", 2)
        pid, process, pair = (parts if len(parts) == 3 else ("", "", line))
        name, _, value = pair.partition("=")
        found.append(EnvSecret(int(pid) if pid.isdigit() else None, process, name, value))
    return EnvironReading(tuple(found), unreadable, read, hidden)
