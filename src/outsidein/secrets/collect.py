"""Collect a repository's secrets evidence (layer 5): working tree, whole git history, hygiene files.

The history is read as ONE stream — ``git log --all -p -U0`` over every ref — and only added lines are
scanned, so each secret is seen in the commit that introduced it. The stream is scanned in blocks of a few
megabytes (whole file diffs): the pre-filter runs over each block at once and only the lines it points at are cut
out, located (file, commit, line number in the new file) and fed to the rules; a thread drains git's pipe
meanwhile, so that git need not wait while a block is scanned. The working tree is every file git tracks
plus untracked files that are not ignored (a plain folder is walked). Nothing raw is kept: each candidate is
stored as its rule, file, line (and commit), masked value and fingerprint (see ``outsidein.secrets.rules``).

What is kept, under ``SourceEvidence.data.data``:

- ``tree``: files and bytes scanned, ``findings`` [{rule, file, line, masked, fingerprint}], ``skipped``
  [{file, reason}] (not scanned: over ``MAX_FILE_BYTES``, unreadable), ``binary`` (known binary formats, not
  scanned), ``nul_removed`` (text files scanned without their NUL bytes), ``tracked`` env
  files (``.env``, ``.env.*``, ``*.env``; ``.env.example``/``.sample``/``.template``/``.dist`` are templates).
- ``history``: commits and bytes scanned, seconds, ``findings`` (with ``commit``, the oldest that added the
  secret to that file, and ``commits``, how many did), ``env_files`` [{path, commit}] ever added.
- ``gitignore``: ``ignored``: for each non-negotiable pattern of the playbook, whether git would ignore a
  probe path (``git check-ignore --no-index``, so negations and equivalent patterns count).
- ``precommit``: hook configuration files read and the secret scanners they name.
- ``errors``: evidence key (``tree``, ``history``, ``gitignore``) -> why it could not be read.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

from outsidein.evidence import Record, SourceEvidence
from outsidein.scope import RepositoryScope
from outsidein.secrets.rules import Candidate, hit_offsets
from outsidein.secrets.scan import LineScanner, scan_text

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


def is_env_file(path: str) -> bool:
    return bool(ENV_FILE.search(path)) and not ENV_TEMPLATE.search(path)


def _git(path: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-c", "safe.directory=*", "-c", "core.quotepath=off", "-C", str(path), *args],
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _git_error(done: subprocess.CompletedProcess[bytes]) -> str:
    text = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return text[-1][:200] if text else f"exit code {done.returncode}"


def _finding(path: str, line: int, cand: Candidate, **extra: Any) -> dict[str, Any]:
    return {"rule": cand.rule, "file": path, "line": line, "masked": cand.masked, "fingerprint": cand.fingerprint,
            **extra}


_DIFF = b"\ndiff --git "
_COMMIT = b"\n\x01"
_COMMITS = re.compile(rb"\x01(?<=\n\x01)")  # counted by re: it jumps between \x01 bytes, bytes.count does not
_HUNK = b"\n@@ "
_HUNK_NEW = re.compile(rb"\+(\d+)")
_NEW_ENV_FILE = re.compile(rb"\ndiff --git ([^\n]*\.env[^\n]*)\nnew file mode")  # ENV_FILE needs ".env"
BLOCK_BYTES = 4 << 20  # history is scanned in blocks of whole file diffs of about this size


def _diff_path(block: bytes, at: int) -> str:
    """The path of the file whose ``diff --git`` line starts at ``at`` (its new name)."""
    head = block[at + len(_DIFF):block.find(b"\n", at + 1)].decode("utf-8", "replace")
    return head.rpartition(" b/")[2] if " b/" in head else head


def _commit_line(block: bytes, at: int) -> str:
    return block[at + 2:block.find(b"\n", at + 1)].decode("ascii", "replace").strip()


class _History:
    """Parses ``git log -p -U0 --format=%x01%H`` output block by block (see ``scan_history_stream``)."""

    def __init__(self) -> None:
        self.commits = 0
        self.commit = ""  # the commit whose diffs are being read (it may have started in an earlier block)
        self.findings: dict[tuple[str, str], dict[str, Any]] = {}
        self.env_files: dict[str, str] = {}

    def _record(self, path: str, commit: str, hits: Iterable[tuple[int, Candidate]]) -> None:
        for line, cand in hits:
            key = (cand.fingerprint, path)
            seen = self.findings.get(key)
            # git log lists newest first: the last commit seen is the oldest that added it.
            self.findings[key] = _finding(path, line, cand, commit=commit,
                                          commits=(seen["commits"] + 1) if seen else 1)

    def block(self, block: bytes) -> None:
        """One block: starts with ``\\n`` before a commit or ``diff --git`` line, holds whole file diffs.

        Hits arrive in order, so the file, commit and hunk of each are found by searching backwards only over
        the bytes since the previous hit (each byte is searched once), never from the start of the block.
        """
        size = len(block)
        for match in _NEW_ENV_FILE.finditer(block):
            path = _diff_path(block, match.start())
            if is_env_file(path):
                at = block.rfind(_COMMIT, 0, match.start() + 1)
                self.env_files[path] = _commit_line(block, at) if at >= 0 else self.commit  # ends on the oldest
        commit, searched = self.commit, 0  # the commit of block[searched:]'s start
        section_end = next_commit = -1  # where the current file's diff ends; where the next commit begins
        path = ""
        scanner: LineScanner | None = None
        hunk = hunk_start = counted = plus = 0
        last = 0  # the previous scanned line's start
        done = -1
        for at in hit_offsets(block):
            if at <= done:
                continue
            start = block.rfind(b"\n", 0, at) + 1
            end = block.find(b"\n", at)
            done = end = size if end < 0 else end
            if block[start] != 43:  # only added lines ("+"); removed ones and headers are skipped
                continue
            if start >= section_end:  # a hit in a later file
                diff = block.rfind(_DIFF, max(section_end, 0), start)
                if diff < 0:
                    continue
                if scanner is not None:
                    self._record(path, commit, scanner.close())
                at_commit = block.rfind(_COMMIT, searched, diff + 1)
                if at_commit >= 0:
                    commit = _commit_line(block, at_commit)
                searched = diff
                path = _diff_path(block, diff)
                scanner = LineScanner(path)
                if next_commit <= diff:
                    next_commit = block.find(_COMMIT, diff + 1) % (size + 1)  # -1: none, the block's end
                next_diff = block.find(_DIFF, diff + 1, next_commit)
                section_end = next_commit if next_diff < 0 else next_diff
                hunk, last = -1, diff
            assert scanner is not None
            while True:
                at_hunk = block.rfind(_HUNK, last, start)
                if at_hunk >= 0 and at_hunk != hunk:
                    new = _HUNK_NEW.search(block, at_hunk + 4, block.find(b"\n", at_hunk + 1))
                    hunk, hunk_start, counted, plus = at_hunk, int(new.group(1)) if new else 0, at_hunk + 1, 0
                if hunk < 0:
                    break  # "+++ b/path": a header, not an added line
                plus += block.count(b"\n+", counted, start)  # added lines before this one in the hunk
                counted = start - 1  # this line's own "\n+" is counted by the next hit in the hunk
                last = start
                self._record(path, commit, scanner.feed(block[start + 1:end], hunk_start + plus))
                if not scanner.pending:
                    break
                # A private-key header: the next added line of this file names the key.
                following = block.find(b"\n+", end, section_end)
                if following < 0:
                    break  # closed with the file below
                start = following + 1
                end = block.find(b"\n", start)
                done = end = size if end < 0 else end
        if scanner is not None:
            self._record(path, commit, scanner.close())
        self.commits += len(_COMMITS.findall(block))
        at = block.rfind(_COMMIT)
        if at >= 0:
            self.commit = _commit_line(block, at)


def scan_history_stream(chunks: Iterable[bytes], block_bytes: int = BLOCK_BYTES) -> dict[str, Any]:
    """Parse ``git log -p -U0 --format=%x01%H`` output (any chunking: lines, pipe reads): secrets in added lines,
    .env files ever added.

    The stream is cut into blocks that end where a commit or a file's diff begins, so every hunk is whole in its
    block; a single file diff larger than ``block_bytes`` makes one larger block.
    """
    history = _History()
    total = 0
    parts: list[bytes] = [b"\n"]  # every block starts with the newline before its first line
    size = 1
    for chunk in chunks:
        total += len(chunk)
        parts.append(chunk)
        size += len(chunk)
        if size < block_bytes:
            continue
        data = b"".join(parts)
        cut = max(data.rfind(_DIFF, max(1, size - len(chunk) - len(_DIFF))),
                  data.rfind(_COMMIT, max(1, size - len(chunk) - len(_COMMIT))))
        if cut <= 0:  # no boundary in the last chunk: keep reading (one file diff larger than a block)
            parts = [data]
            continue
        history.block(data[:cut + 1])
        parts = [data[cut:]]
        size = len(parts[0])
    if size > 1:
        history.block(b"".join(parts))
    return {"commits": history.commits, "bytes": total,
            "findings": sorted(history.findings.values(), key=lambda f: (f["file"], f["line"])),
            "env_files": [{"path": p, "commit": c} for p, c in sorted(history.env_files.items())]}


def _pipe_chunks(stream: IO[bytes], size: int = 1 << 20, depth: int = 64) -> Generator[bytes, None, None]:
    """Reads ``stream`` on a thread, so that git keeps writing while the block before is being scanned."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            while chunk := stream.read(size):  # unbuffered: one read(2), whatever the pipe holds
                if not put(chunk):
                    return
        except BaseException as exc:  # handed to the reader
            put(exc)
            return
        put(None)

    reader = threading.Thread(target=pump, name="git-log-reader", daemon=True)
    reader.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _grow_pipe(stream: IO[bytes], size: int = 1 << 20) -> None:
    """A 1 MiB pipe (Linux) instead of 64 KiB: git blocks less often while a block is scanned."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setsize is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), setsize, size)


GIT_LOG = ("log", "--all", "-p", "-U0", "--irreversible-delete", "--no-color", "--no-ext-diff",
           "--no-textconv", "--format=%x01%H")


def scan_history(path: Path) -> dict[str, Any]:
    """Every commit reachable from any ref, as one ``git log`` stream.

    ``-U0``: no context lines; ``--irreversible-delete``: a deleted file's lines are not printed (only added
    lines are scanned).
    """
    started = time.monotonic()
    argv = ["git", "-c", "safe.directory=*", "-c", "core.quotepath=off", "-C", str(path), *GIT_LOG]
    with tempfile.TemporaryFile() as err:  # a file: git never blocks on a full stderr pipe
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, bufsize=0)
        assert proc.stdout is not None
        _grow_pipe(proc.stdout)
        chunks = _pipe_chunks(proc.stdout)
        try:
            result = scan_history_stream(chunks)
        except BaseException:
            proc.kill()  # and so the reader thread's read() returns
            raise
        finally:
            chunks.close()
            proc.stdout.close()
            try:
                code = proc.wait(timeout=GIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        if code != 0:
            err.seek(0)
            text = err.read().decode("utf-8", "replace").strip()
            raise OSError(text.splitlines()[-1][:200] if text else f"git log exit code {code}")
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


# Known binary formats, by their first bytes: not scanned, and not counted as skipped (no secret is written in a
# PNG). Anything else with NUL bytes (UTF-16 text, a SQL dump with a stray NUL, SQLite) is scanned without them.
BINARY_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"\x00\x00\x01\x00",
                b"RIFF", b"wOFF", b"wOF2", b"\x00\x01\x00\x00\x00", b"OTTO", b"PK\x03\x04", b"PK\x05\x06",
                b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"(\xb5/\xfd", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07",
                b"\x7fELF", b"MZ", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\x00asm",
                b"\x00\x00\x00\x1cftyp", b"\x00\x00\x00\x18ftyp", b"\x00\x00\x00\x20ftyp", b"OggS", b"fLaC",
                b"ID3", b"\x1aE\xdf\xa3")


def is_binary(head: bytes) -> bool:
    """A known binary format by its magic bytes, with a NUL byte early on (a text file never has one)."""
    return head.startswith(BINARY_MAGIC) and b"\0" in head[:8000]


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _read_tree_file(root: Path, rel: str) -> tuple[bytes | None, str | None]:
    """The file's content, or None and why it was not read (None: nothing to scan, not a gap in the evidence)."""
    full = root / rel
    try:
        if not full.is_file():
            return None, None  # a submodule, a tracked file deleted from the working tree, a dangling link
        size = full.stat().st_size
        if size > MAX_FILE_BYTES:
            with full.open("rb") as handle:
                if is_binary(handle.read(8000)):
                    return None, None
            return None, f"{_size(size)}, over the {_size(MAX_FILE_BYTES)} limit"
        return full.read_bytes(), None
    except OSError as exc:
        return None, f"not readable: {exc.strerror or type(exc).__name__}"


def scan_tree(root: Path, files: Sequence[str]) -> dict[str, Any]:
    """Every file's secrets. Files not scanned are listed under ``skipped`` ({file, reason}): the check is then
    NOT_ASSESSED for them, never clean. Known binary formats are counted under ``binary``; a text file with NUL
    bytes is scanned with them removed (counted under ``nul_removed``), its line numbers unchanged."""
    findings: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    total = scanned = binary = nul_removed = 0
    for rel in files:
        content, reason = _read_tree_file(root, rel)
        if content is None:
            if reason:
                skipped.append({"file": rel, "reason": reason})
            continue
        if b"\0" in content:
            if is_binary(content[:8000]):
                binary += 1
                continue
            content = content.replace(b"\0", b"")
            nul_removed += 1
        scanned += 1
        total += len(content)
        findings += [_finding(rel, at, cand) for at, cand in scan_text(content, rel)]
    return {"files": scanned, "bytes": total, "findings": findings, "skipped": skipped, "binary": binary,
            "nul_removed": nul_removed, "tracked_env_files": [f for f in files if is_env_file(f)]}


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
