"""Collect a repository's secrets evidence (layer 5): working tree, whole git history, hygiene files.

The history is read as ONE stream — ``git log --all -p -U0`` over every ref — and only added lines are
scanned, so each secret is seen in the commit that introduced it. The working tree is every file git tracks
plus untracked files that are not ignored (a plain folder is walked). Nothing raw is kept: each candidate is
stored as its rule, file, line (and commit), masked value and fingerprint (see ``outsidein.secrets.rules``).

What is kept, under ``SourceEvidence.data.data``:

- ``tree``: files and bytes scanned, ``findings`` [{rule, file, line, masked, fingerprint}], ``tracked`` env
  files (``.env``, ``.env.*``, ``*.env``; ``.env.example``/``.sample``/``.template``/``.dist`` are templates).
- ``history``: commits and bytes scanned, seconds, ``findings`` (with ``commit``, the oldest that added the
  secret to that file, and ``commits``, how many did), ``env_files`` [{path, commit}] ever added.
- ``gitignore``: ``ignored``: for each non-negotiable pattern of the playbook, whether git would ignore a
  probe path (``git check-ignore --no-index``, so negations and equivalent patterns count).
- ``precommit``: hook configuration files read and the secret scanners they name.
- ``dockerfiles``: ENV/ARG instructions with a secret-named variable (value masked, or None without one).
- ``errors``: evidence key (``tree``, ``history``, ``gitignore``) -> why it could not be read.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from outsidein.evidence import Record, SourceEvidence
from outsidein.redact import mask
from outsidein.scope import RepositoryScope
from outsidein.secrets.rules import Candidate, placeholder, private_key_body, scan_line, secret_name

MAX_FILE_BYTES = 5_000_000
GIT_TIMEOUT = 1800.0
ENV_FILE = re.compile(r"(?:^|/)(?:\.env(?:\.[\w.-]+)?|[\w.-]+\.env)$")
ENV_TEMPLATE = re.compile(r"(?i)\.(?:example|sample|template|dist|defaults?|tmpl|tpl)$")
GITIGNORE_PROBES: dict[str, tuple[str, ...]] = {  # the playbook's non-negotiable .gitignore lines
    ".env": (".env", "app/.env"),
    ".env.*": (".env.production", "app/.env.local"),
    "*.pem": ("server.pem", "certs/server.pem"),
    "*.key": ("server.key", "certs/server.key"),
    "*.p12": ("client.p12",),
    "*.pfx": ("client.pfx",),
    "secrets.yaml": ("secrets.yaml", "config/secrets.yaml"),
    "secrets.json": ("secrets.json", "config/secrets.json"),
}
PRECOMMIT_FILES = (".pre-commit-config.yaml", ".pre-commit-config.yml", "lefthook.yml", ".lefthook.yml",
                   "lefthook.yaml", ".husky/pre-commit", ".git/hooks/pre-commit")
SCANNERS = ("gitleaks", "trufflehog", "detect-secrets", "ggshield", "kingfisher", "talisman", "git-secrets",
            "secretlint")
DOCKERFILE = re.compile(r"(?:^|/)(?:Dockerfile|Containerfile)(?:\.[\w.-]+)?$|\.(?:Dockerfile|dockerfile)$")
_DOCKER_INSTR = re.compile(r"^\s*(ENV|ARG)\s+(.+)$", re.IGNORECASE)


def is_env_file(path: str) -> bool:
    return bool(ENV_FILE.search(path)) and not ENV_TEMPLATE.search(path)


def _git(path: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-c", "safe.directory=*", "-c", "core.quotepath=off", "-C", str(path), *args],
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _git_error(done: subprocess.CompletedProcess[bytes]) -> str:
    text = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return text[-1][:200] if text else f"exit code {done.returncode}"


class LineScanner:
    """Scans the lines of one file in order; joins a private-key header with the body line that names it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pending: tuple[int, Candidate] | None = None

    def feed(self, line: bytes, number: int) -> Iterator[tuple[int, Candidate]]:
        if self._pending is not None:
            at, header = self._pending
            self._pending = None
            body = private_key_body(line)
            if body is not None:
                yield at, body
                return
            if not line.strip() or placeholder(line.strip().decode("utf-8", "replace")):
                return  # "-----BEGIN PRIVATE KEY-----" followed by "..." is documentation
            yield at, header
        for found in scan_line(line, self.path):
            if found.rule == "private-key":
                self._pending = (number, found)
            else:
                yield number, found

    def close(self) -> Iterator[tuple[int, Candidate]]:
        if self._pending is not None:
            yield self._pending
            self._pending = None


def _finding(path: str, line: int, cand: Candidate, **extra: Any) -> dict[str, Any]:
    return {"rule": cand.rule, "file": path, "line": line, "masked": cand.masked, "fingerprint": cand.fingerprint,
            **extra}


def scan_history_stream(lines: Iterable[bytes]) -> dict[str, Any]:
    """Parse ``git log -p -U0 --format=%x01%H`` output: secrets in added lines, .env files ever added."""
    commits = 0
    total = 0
    commit = ""
    path = ""
    in_hunk = False
    number = 0
    scanner: LineScanner | None = None
    findings: dict[tuple[str, str], dict[str, Any]] = {}
    env_files: dict[str, str] = {}

    def record(hits: Iterable[tuple[int, Candidate]]) -> None:
        for at, cand in hits:
            key = (cand.fingerprint, path)
            seen = findings.get(key)
            # git log lists newest first: the last commit seen is the oldest that added it.
            findings[key] = _finding(path, at, cand, commit=commit, commits=(seen["commits"] + 1) if seen else 1)

    for raw in lines:
        total += len(raw)
        line = raw.rstrip(b"\n")
        if in_hunk and line[:1] == b"+":
            if scanner is not None:
                number += 1
                record(scanner.feed(line[1:], number - 1))
            continue
        if line[:1] == b"\x01":
            if scanner is not None:
                record(scanner.close())
            commits += 1
            commit, scanner, in_hunk = line[1:].decode().strip(), None, False
        elif line.startswith(b"diff --git "):
            if scanner is not None:
                record(scanner.close())
            in_hunk = False
            head = line[len(b"diff --git "):].decode("utf-8", "replace")
            path = head.rpartition(" b/")[2] if " b/" in head else head
            scanner = LineScanner(path)
        elif line.startswith(b"new file mode") and is_env_file(path):
            env_files[path] = commit  # newest first: ends on the oldest commit that added it
        elif line.startswith(b"@@ "):
            in_hunk = True
            match = re.search(rb"\+(\d+)", line[3:])
            number = int(match.group(1)) if match else 0
        elif line.startswith(b"+++ /dev/null"):
            scanner = None
    if scanner is not None:
        record(scanner.close())
    return {"commits": commits, "bytes": total, "findings": sorted(findings.values(), key=lambda f: (f["file"],
                                                                                                    f["line"])),
            "env_files": [{"path": p, "commit": c} for p, c in sorted(env_files.items())]}


def scan_history(path: Path) -> dict[str, Any]:
    """Every commit reachable from any ref, as one ``git log`` stream."""
    started = time.monotonic()
    argv = ["git", "-c", "safe.directory=*", "-c", "core.quotepath=off", "-C", str(path), "log", "--all", "-p",
            "-U0", "--no-color", "--no-ext-diff", "--no-textconv", "--format=%x01%H"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            bufsize=1 << 20)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        result = scan_history_stream(proc.stdout)
        err = proc.stderr.read()
    finally:
        proc.stdout.close()
        code = proc.wait(timeout=GIT_TIMEOUT)
    if code != 0:
        raise OSError(err.decode("utf-8", "replace").strip().splitlines()[-1][:200] if err.strip()
                      else f"git log exit code {code}")
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def tree_files(root: Path, git: bool) -> list[str]:
    """Tracked plus untracked-not-ignored files (git), or every file under a plain folder."""
    if git:
        done = _git(root, "ls-files", "-z", "-co", "--exclude-standard")
        if done.returncode != 0:
            raise OSError(f"git ls-files: {_git_error(done)}")
        return sorted({p for p in done.stdout.decode("utf-8", "replace").split("\0") if p})
    out: list[str] = []
    for base, dirs, files in os.walk(root, onerror=_raise):
        dirs[:] = [d for d in dirs if d not in (".git", "node_modules", ".venv", "__pycache__")]
        out += [os.path.relpath(os.path.join(base, f), root) for f in files]
    return sorted(out)


def _raise(exc: OSError) -> None:
    raise exc


def _read(root: Path, rel: str) -> bytes | None:
    full = root / rel
    try:
        if not full.is_file() or full.stat().st_size > MAX_FILE_BYTES:
            return None
        return full.read_bytes()
    except OSError:
        return None


def scan_tree(root: Path, files: Sequence[str]) -> dict[str, Any]:
    findings: list[dict[str, Any]] = []
    total = scanned = 0
    for rel in files:
        content = _read(root, rel)
        if content is None or b"\0" in content[:8000]:
            continue
        scanned += 1
        total += len(content)
        scanner = LineScanner(rel)
        for number, line in enumerate(content.split(b"\n"), 1):
            for at, cand in scanner.feed(line, number):
                findings.append(_finding(rel, at, cand))
        findings += [_finding(rel, at, cand) for at, cand in scanner.close()]
    return {"files": scanned, "bytes": total, "findings": findings,
            "tracked_env_files": [f for f in files if is_env_file(f)]}


def gitignore_coverage(root: Path) -> dict[str, Any]:
    probes = [p for paths in GITIGNORE_PROBES.values() for p in paths]
    done = _git(root, "check-ignore", "--no-index", "--", *probes)
    if done.returncode not in (0, 1):
        raise OSError(f"git check-ignore: {_git_error(done)}")
    ignored = set(done.stdout.decode("utf-8", "replace").splitlines())
    return {"ignored": {pattern: all(p in ignored for p in paths) for pattern, paths in GITIGNORE_PROBES.items()},
            "gitignore_present": (root / ".gitignore").is_file()}


def precommit(root: Path) -> dict[str, Any]:
    read: list[str] = []
    scanners: set[str] = set()
    for rel in PRECOMMIT_FILES:
        content = _read(root, rel)
        if content is None:
            continue
        read.append(rel)
        text = content.decode("utf-8", "replace").lower()
        scanners |= {s for s in SCANNERS if s in text}
    return {"files": read, "scanners": sorted(scanners)}


def dockerfile_secrets(root: Path, files: Sequence[str]) -> list[dict[str, Any]]:
    """ENV/ARG instructions naming a secret: baked into the image layers (ENV) or its history (ARG)."""
    out: list[dict[str, Any]] = []
    for rel in files:
        if not DOCKERFILE.search(rel):
            continue
        content = _read(root, rel)
        if content is None:
            continue
        for number, line in enumerate(content.decode("utf-8", "replace").splitlines(), 1):
            match = _DOCKER_INSTR.match(line)
            if not match:
                continue
            instruction, rest = match.group(1).upper(), match.group(2).strip()
            if "=" in rest.split()[0]:
                pairs = re.findall(r"([\w.-]+)=(\"[^\"]*\"|'[^']*'|\S*)", rest)
            else:
                name, _, value = rest.partition(" ")
                pairs = [(name, value.strip())]
            for name, value in pairs:
                if not secret_name(name):
                    continue
                value = value.strip("\"'")
                literal = bool(value) and not placeholder(value)
                out.append({"file": rel, "line": number, "instruction": instruction, "name": name,
                            "value": mask(value) if literal else None})
    return out


def collect_repository(scope: RepositoryScope) -> SourceEvidence:
    evidence = SourceEvidence(name=scope.name, kind="repository", environment=scope.environment)
    root = scope.path
    if not root.is_dir():
        evidence.data = Record(error=f"{root}: no such directory")
        return evidence
    if not os.access(root, os.R_OK | os.X_OK):
        evidence.data = Record(error=f"{root}: not readable")
        return evidence
    errors: dict[str, str] = {}
    data: dict[str, Any] = {"path": str(root), "git": False, "errors": errors}
    probe = _git(root, "rev-parse", "--show-toplevel")
    git = probe.returncode == 0
    if git:
        data["git"] = True
        head = _git(root, "rev-parse", "--verify", "-q", "HEAD")
        data["head"] = head.stdout.decode().strip() or None
    else:
        reason = f"{root}: not a git repository ({_git_error(probe)})"
        errors["history"] = errors["gitignore"] = reason
    try:
        files = tree_files(root, git)
        data["tree"] = scan_tree(root, files)
        data["precommit"] = precommit(root)
        data["dockerfiles"] = dockerfile_secrets(root, files)
    except OSError as exc:
        errors["tree"] = f"{root}: cannot read the working tree: {exc.strerror or exc}"
    if git:
        if scope.history:
            try:
                data["history"] = scan_history(root)
            except (OSError, subprocess.SubprocessError) as exc:
                errors["history"] = f"git history of {root} not read: {exc}"
        else:
            errors["history"] = "history scanning is off for this repository (history = false in the scope)"
        try:
            data["gitignore"] = gitignore_coverage(root)
        except (OSError, subprocess.SubprocessError) as exc:
            errors["gitignore"] = str(exc)
    evidence.data = Record(data=data)
    return evidence


def collect_repositories(scopes: Sequence[RepositoryScope], max_workers: int = 4) -> list[SourceEvidence]:
    """Every repository in scope, concurrently; one unreadable repository never stops the others."""

    def one(scope: RepositoryScope) -> SourceEvidence:
        try:
            return collect_repository(scope)
        except Exception as exc:  # a scanner bug costs one repository, not the audit
            return SourceEvidence(scope.name, "repository", scope.environment,
                                  Record(error=f"{scope.path}: not scanned ({type(exc).__name__}: {exc})"))

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(one, scopes))
