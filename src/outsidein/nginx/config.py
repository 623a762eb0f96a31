"""Parse NGINX evidence into a typed tree: directives with file and line, includes expanded in place.

The texts come from the evidence, never from disk: each file is written under a private temporary directory
(mirroring its absolute path) and parsed there with crossplane, one file at a time, so an offline snapshot
re-parses exactly as it was collected. ``include`` globs are resolved against the files the evidence holds.
``parse_nginx`` never raises: what could not be read or parsed is a reason in ``NginxConfig.missing``.
"""

from __future__ import annotations

import glob
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import crossplane

from outsidein.evidence import NginxEvidence

# Blocks whose settings a nested block inherits (nginx merges configuration along this chain).
INHERITING = frozenset({"main", "http", "server", "location", "if", "limit_except"})
VERSION_RE = re.compile(r"nginx/(\d+)\.(\d+)\.(\d+)")
MAX_PROBLEMS_SHOWN = 3
ENVIRONMENT_ERRORS = ("(13: Permission denied)", "(2: No such file or directory)")


@dataclass(eq=False)
class Directive:
    """One directive: its name, arguments (quotes removed), where it is, and its block (None if simple)."""

    name: str
    args: tuple[str, ...]
    file: str
    line: int
    block: list[Directive] | None = None
    parent: Directive | None = field(default=None, repr=False)
    memo: dict[str, Any] = field(default_factory=dict, repr=False)  # per-block caches of derived values


    @property
    def where(self) -> str:
        """``path:line``: the resource of a finding about this directive."""
        return f"{self.file}:{self.line}"

    @property
    def children(self) -> list[Directive]:
        return self.block or []

    def find(self, name: str) -> list[Directive]:
        """Directives named ``name`` directly in this block (includes already expanded)."""
        index: dict[str, list[Directive]] | None = self.memo.get("_index")
        if index is None:
            index = {}
            for d in self.children:
                index.setdefault(d.name, []).append(d)
            self.memo["_index"] = index
        return index.get(name, [])

    def ancestors(self) -> Iterator[Directive]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def walk(self) -> Iterator[Directive]:
        """Every directive below this one, depth first, in file order."""
        for child in self.children:
            yield child
            yield from child.walk()

    @property
    def label(self) -> str:
        """A short human name: ``location /api/``, ``server example.com``, ``http``."""
        if self.name == "server":
            names = [n for d in self.find("server_name") for n in d.args if n]
            return f"server {names[0]}" if names else "server"
        return " ".join((self.name, *self.args)) if self.args else self.name


@dataclass(frozen=True)
class SyntaxTest:
    exit_code: int
    output: str


@dataclass(frozen=True)
class Probe:
    url: str
    status: int
    headers: tuple[tuple[str, str], ...]

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class NginxConfig:
    """A parsed NGINX configuration: the tree under ``root`` (the main file's context) and what is missing."""

    name: str
    main: str
    environment: str | None
    root: Directive
    missing: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # files the tree was built from, in include order
    syntax_test: SyntaxTest | None = None
    probe: Probe | None = None
    version: tuple[int, int, int] | None = None  # from ``nginx -v`` output or the live Server header

    @cached_property
    def directives(self) -> list[Directive]:
        """Every directive of the tree, depth first, in file order."""
        return list(self.root.walk())

    @cached_property
    def _by_name(self) -> dict[str, list[Directive]]:
        index: dict[str, list[Directive]] = {}
        for d in self.directives:
            index.setdefault(d.name, []).append(d)
        return index

    def walk(self) -> Iterator[Directive]:
        return iter(self.directives)

    def http_blocks(self) -> list[Directive]:
        return [d for d in self.find_all("http") if d.block is not None]

    @cached_property
    def _servers(self) -> list[Directive]:
        return [d for d in self.find_all("server") if d.block is not None and _in_http(d)]

    def servers(self) -> list[Directive]:
        """HTTP ``server`` blocks (not stream/mail servers, not upstream ``server`` lines)."""
        return list(self._servers)

    def find_all(self, name: str) -> list[Directive]:
        return list(self._by_name.get(name, []))


def _in_http(d: Directive) -> bool:
    for a in d.ancestors():
        if a.name in ("stream", "mail", "upstream"):
            return False
        if a.name == "http":
            return True
    return d.parent is not None and d.parent.name == "main"  # a fragment without an http block


# -- inheritance helpers -------------------------------------------------------------------------------

def levels(block: Directive) -> Iterator[Directive]:
    """The block and the blocks it inherits from, innermost first (location → server → http → main)."""
    node: Directive | None = block
    while node is not None:
        if node.name in INHERITING or node.parent is None:
            yield node
        node = node.parent


def effective(block: Directive, name: str) -> list[Directive]:
    """The ``name`` directives in effect in ``block``: those of the nearest level that has any.

    This is nginx's rule for both single-value directives and the array ones (``add_header``,
    ``proxy_set_header``, ``proxy_hide_header``, ``limit_req``): a level that sets any replaces all of the
    parent's.
    """
    for level in levels(block):
        found = level.find(name)
        if found:
            return found
    return []


def effective_one(block: Directive, name: str) -> Directive | None:
    found = effective(block, name)
    return found[-1] if found else None


def cumulative(block: Directive, name: str) -> list[Directive]:
    """``name`` directives of every level (for modules such as headers-more that add up across levels)."""
    return [d for level in levels(block) for d in level.find(name)]


def locations(block: Directive) -> list[Directive]:
    """Every ``location`` below ``block`` (nested ones included), in file order."""
    if "locations" not in block.memo:
        block.memo["locations"] = [d for d in block.walk() if d.name == "location" and d.block is not None]
    return list(block.memo["locations"])


def enclosing(d: Directive, *names: str) -> Directive | None:
    return next((a for a in d.ancestors() if a.name in names), None)


def location_match(loc: Directive) -> tuple[str, str]:
    """``(modifier, path)`` of a location: modifier is '', '=', '^~', '~', '~*' or '@'."""
    args = loc.args
    if len(args) >= 2:
        return args[0], args[1]
    path = args[0] if args else ""
    for mod in ("=", "^~", "~*", "~"):
        if path.startswith(mod) and len(path) > len(mod):
            return mod, path[len(mod):]
    return ("@", path[1:]) if path.startswith("@") else ("", path)


def is_tls(server: Directive) -> bool:
    """True when the server accepts TLS: ``listen ... ssl`` (or quic), or the old ``ssl on``."""
    for listen in server.find("listen"):
        if any(a in ("ssl", "quic", "http3") for a in listen.args[1:]):
            return True
    ssl = effective_one(server, "ssl")
    return ssl is not None and ssl.args[:1] == ("on",)


def listen_ports(server: Directive) -> list[int]:
    """The TCP ports the server listens on (nginx's default is 80 when there is no ``listen``)."""
    ports: list[int] = []
    for listen in server.find("listen"):
        spec = listen.args[0] if listen.args else ""
        if spec.startswith("unix:"):
            continue
        tail = spec.rsplit("]", 1)[-1].rsplit(":", 1)[-1] if ":" in spec else spec
        if tail.isdigit():
            ports.append(int(tail))
        elif "." in spec or spec.startswith("[") or spec == "localhost":
            ports.append(80)
    return ports or ([80] if not server.find("listen") else [])


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_TIME_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}
_TIME_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|M|y)?")


def parse_size(text: str) -> int | None:
    """``10m`` → bytes; None if not a size."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text.strip())
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()] if m else None


def parse_time(text: str) -> float | None:
    """``1m30s`` / ``75`` / ``500ms`` → seconds; None if not a time."""
    text = text.strip()
    if not text or not re.fullmatch(r"(?:\d+(?:ms|s|m|h|d|w|M|y)?)+", text):
        return None
    return sum(int(n) * _TIME_UNITS[u or "s"] for n, u in _TIME_PART.findall(text))


# -- parsing -------------------------------------------------------------------------------------------

@dataclass
class _Parser:
    texts: dict[str, str]
    unreadable: dict[str, str]
    conf_dir: str
    tmp: Path
    problems: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def statements(self, path: str) -> list[dict[str, Any]]:
        if path not in self.cache:
            disk = self.tmp / path.lstrip("/")
            disk.parent.mkdir(parents=True, exist_ok=True)
            disk.write_text(self.texts[path], encoding="utf-8")
            payload = crossplane.parse(str(disk), single=True, check_ctx=False, comments=False, catch_errors=True)
            tmp_prefix = str(self.tmp)
            for err in payload.get("errors", []):
                message = str(err.get("error", "parse error")).replace(tmp_prefix, "")
                if f"{path}:" not in message:
                    message = f"{path}:{err.get('line') or '?'}: {message}"
                self.problems.append(message)
            configs = payload.get("config") or [{}]
            self.cache[path] = list(configs[0].get("parsed") or [])
            self.used.append(path)
        return self.cache[path]

    def build(self, stmts: list[dict[str, Any]], path: str, parent: Directive,
              stack: tuple[str, ...]) -> list[Directive]:
        out: list[Directive] = []
        for stmt in stmts:
            name = str(stmt.get("directive", ""))
            args = tuple(str(a) for a in stmt.get("args", []))
            line = int(stmt.get("line") or 0)
            if name == "include" and args:
                for included in self.include(args[0], path, line):
                    if included in stack:
                        self.problems.append(f"{path}:{line}: include cycle through {included}")
                        continue
                    out.extend(self.build(self.statements(included), included, parent, (*stack, included)))
                continue
            d = Directive(name, args, path, line, parent=parent)
            if "block" in stmt:
                d.block = self.build(list(stmt["block"]), path, d, stack)
            out.append(d)
        return out

    def include(self, pattern: str, path: str, line: int) -> list[str]:
        full = pattern if pattern.startswith("/") else posixpath.normpath(posixpath.join(self.conf_dir, pattern))
        if glob.has_magic(full):
            names = sorted(p for p in set(self.texts) | set(self.unreadable) if _glob_match(p, full))
        else:
            names = [full]
        found = []
        for name in names:
            if name in self.texts:
                found.append(name)
            elif name in self.unreadable:
                self.problems.append(f"cannot read {name} (included at {path}:{line}): {self.unreadable[name]}")
            else:
                self.problems.append(f"{name} (included at {path}:{line}) is not in the evidence")
        return found


def _glob_match(path: str, pattern: str) -> bool:
    """glob(3) semantics on evidence paths: ``*`` stays within one path component, dot files need a dot."""
    p, pat = PurePosixPath(path), PurePosixPath(pattern)
    if len(p.parts) != len(pat.parts) or not p.match(pattern):
        return False
    return all(not part.startswith(".") or pp.startswith(".") for part, pp in zip(p.parts, pat.parts, strict=True))


def _version(syntax: SyntaxTest | None, probe: Probe | None) -> tuple[int, int, int] | None:
    texts = [syntax.output] if syntax else []
    if probe:
        texts += probe.values("server")
    for text in texts:
        m = VERSION_RE.search(text)
        if m:
            return int(m.group(1)), int(m.group(2)), int(m.group(3))
    return None


def _syntax(evidence: NginxEvidence, missing: dict[str, str]) -> SyntaxTest | None:
    rec = evidence.syntax_test
    if rec is None:
        missing["syntax_test"] = "nginx -t was not run (no nginx binary where the evidence was collected)"
        return None
    if not rec.ok:
        missing["syntax_test"] = f"nginx -t could not run: {rec.error}"
        return None
    data = rec.data if isinstance(rec.data, dict) else {}
    try:
        test = SyntaxTest(int(data["exit_code"]), str(data.get("output", "")))
    except (KeyError, TypeError, ValueError):
        missing["syntax_test"] = "nginx -t result is malformed in the evidence"
        return None
    if test.exit_code != 0 and any(e in test.output for e in ENVIRONMENT_ERRORS):
        # a file or folder nginx needs is missing or unreadable *here* (a copied configuration, a non-root
        # audit): that says nothing about the configuration itself
        missing["syntax_test"] = "nginx -t could not check the configuration where the evidence was collected " \
                                 "(run it as root on the host): " + _first_error(test.output)
    return test


def _first_error(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    picked = next((ln for ln in lines if "[emerg]" in ln), None) or next((ln for ln in lines if "[" in ln), "")
    return picked or (lines[-1] if lines else "no output")


def _probe(evidence: NginxEvidence, missing: dict[str, str]) -> Probe | None:
    rec = evidence.probe
    if rec is None:
        missing["probe"] = "no live URL in scope"
        return None
    if not rec.ok:
        missing["probe"] = f"live probe failed: {rec.error}"
        return None
    data = rec.data if isinstance(rec.data, dict) else {}
    try:
        headers = tuple((str(k), str(v)) for k, v in data.get("headers", []))
        return Probe(str(data["url"]), int(data["status"]), headers)
    except (KeyError, TypeError, ValueError):
        missing["probe"] = "live probe result is malformed in the evidence"
        return None


def _scratch_dir() -> str | None:
    """A memory-backed folder for the parser's private copies when there is one (/dev/shm), else the default."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def parse_nginx(evidence: NginxEvidence) -> NginxConfig:
    """Parse one configuration's evidence; never raises (problems go to ``missing``)."""
    missing: dict[str, str] = {}
    syntax = _syntax(evidence, missing)
    probe = _probe(evidence, missing)
    main = evidence.main
    root = Directive("main", (), main, 0, [])
    cfg = NginxConfig(evidence.name, main, evidence.environment, root, missing, syntax_test=syntax, probe=probe,
                      version=_version(syntax, probe))
    texts = {p: r.data for p, r in evidence.files.items() if r.ok and isinstance(r.data, str)}
    unreadable = {p: r.error or "unreadable" for p, r in evidence.files.items() if not r.ok}
    if main not in texts:
        reason = unreadable.get(main, "not in the evidence")
        missing["config"] = f"cannot read the main configuration file {main}: {reason}"
        return cfg
    try:
        with tempfile.TemporaryDirectory(prefix="outsidein-nginx-", dir=_scratch_dir()) as tmp:
            parser = _Parser(texts, unreadable, posixpath.dirname(main), Path(tmp))
            root.block = parser.build(parser.statements(main), main, root, (main,))
    except Exception as exc:  # crossplane on a pathological input, or a full /tmp: still never raise
        missing["config"] = f"{main}: cannot parse the configuration ({type(exc).__name__}: {exc})"
        return cfg
    cfg.files = parser.used
    if parser.problems:
        shown = "; ".join(parser.problems[:MAX_PROBLEMS_SHOWN])
        more = len(parser.problems) - MAX_PROBLEMS_SHOWN
        missing["config"] = "configuration not parsable: " + shown + (f" (and {more} more)" if more > 0 else "")
    return cfg


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)
