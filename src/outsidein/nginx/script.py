"""What an nginx variable can hold: a small taint model over ``set``, ``map``, ``geo``, regex captures, builtins.

A value answers four questions (can it contain a character, must it, can or must it start with one), which
is what the response-splitting, SSRF and alias checks ask. User-controlled builtins (``$uri``, ``$arg_*``,
``$http_*`` …) carry the character set nginx lets through; everything else is a constant an attacker cannot
steer. Captures take their regex group, bounded by the variable the regex was matched against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from outsidein.nginx import regex as rx
from outsidein.nginx.config import Directive, NginxConfig, location_match

VAR_RE = re.compile(r"\$([1-9]|[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z0-9_]+\})")
MAX_DEPTH = 12

# name (or prefix ending in "_") -> (regex of what it can hold, user-controlled?)
BUILTINS: dict[str, tuple[str, bool]] = {
    "uri": (r"/[^\x20\t]*", True),  # decoded: %0d%0a becomes CR LF
    "document_uri": (r"/[^\x20\t]*", True),
    "arg_": (r"[^\s&]+", True),
    "args": (r"[^\s]+", True),
    "query_string": (r"[^\s]+", True),
    "request_uri": (r"/[^\s]*", True),  # raw, still percent-encoded
    "http_": (r"[^\r\n]*", True),
    "cookie_": (r"[^;\s]*", True),
    "host": (r"[^\s/]*", False),  # validated by nginx; not treated as attacker input on its own
}


class Value:
    """What a variable (or a part of a script) may hold."""

    def can_contain(self, c: str) -> bool:
        return False

    def must_contain(self, c: str) -> bool:
        return False

    def can_startswith(self, c: str) -> bool:
        return False

    def must_startswith(self, c: str) -> bool:
        return False


SAFE = Value()


@dataclass(frozen=True)
class Literal(Value):
    text: str

    def must_contain(self, c: str) -> bool:
        return c in self.text

    def must_startswith(self, c: str) -> bool:
        return self.text[:1] == c


@dataclass(frozen=True)
class Pattern(Value):
    """Strings a regex sequence matches, within what the matched variable (``boundary``) can hold."""

    seq: rx.Seq = field(hash=False, compare=False)
    boundary: Value | None = None
    dotall: bool = False

    def can_contain(self, c: str) -> bool:
        return rx.can_contain(self.seq, c, self.dotall) and (self.boundary is None or self.boundary.can_contain(c))

    def must_contain(self, c: str) -> bool:
        return rx.must_contain(self.seq, c)  # a capture need not hold what its subject must

    def can_startswith(self, c: str) -> bool:
        return rx.can_startswith(self.seq, c, self.dotall) and (self.boundary is None or self.boundary.can_contain(c))

    def must_startswith(self, c: str) -> bool:
        return rx.must_startswith(self.seq, c)


@dataclass(frozen=True)
class Concat(Value):
    parts: tuple[Value, ...]

    def can_contain(self, c: str) -> bool:
        return any(p.can_contain(c) for p in self.parts)

    def must_contain(self, c: str) -> bool:
        return any(p.must_contain(c) for p in self.parts)

    def can_startswith(self, c: str) -> bool:
        return bool(self.parts) and self.parts[0].can_startswith(c)

    def must_startswith(self, c: str) -> bool:
        return bool(self.parts) and self.parts[0].must_startswith(c)


@dataclass(frozen=True)
class Choice(Value):
    """One of several values (a ``map``/``geo``); ``complete`` is False when the implicit default "" applies."""

    options: tuple[Value, ...]
    complete: bool

    def can_contain(self, c: str) -> bool:
        return any(o.can_contain(c) for o in self.options)

    def must_contain(self, c: str) -> bool:
        return self.complete and all(o.must_contain(c) for o in self.options)

    def can_startswith(self, c: str) -> bool:
        return any(o.can_startswith(c) for o in self.options)

    def must_startswith(self, c: str) -> bool:
        return self.complete and all(o.must_startswith(c) for o in self.options)


def builtin(name: str) -> tuple[str, bool] | None:
    for key, spec in BUILTINS.items():
        if name == key or (key.endswith("_") and name.startswith(key)):
            return spec
    return None


@dataclass(frozen=True)
class Captures:
    """Where ``$1``/``$name`` come from: a regex and the value it was matched against.

    ``escaped``: nginx escapes these captures where they are used (a rewrite's own captures in its
    redirect), so they are safe. An unreadable regex (``regex`` None) yields safe numbered captures.
    """

    regex: rx.Regex | None
    boundary: Value
    escaped: bool = False

    def get(self, ref: int | str) -> Value | None:
        if self.regex is None:
            return SAFE if isinstance(ref, int) else None
        seq = self.regex.group(ref)
        if seq is None:
            return None
        return SAFE if self.escaped else Pattern(seq, self.boundary, self.regex.dotall)


Part = tuple[str | None, Value]  # (variable name or None for literal text, its value)


class Scope:
    """Resolves variables anywhere in one configuration (maps and geos are global to the http block)."""

    def __init__(self, cfg: NginxConfig) -> None:
        self.tables: dict[str, Directive] = {}
        for d in cfg.walk():
            if d.name in ("map", "geo") and d.block is not None and d.args:
                self.tables[d.args[-1].lower().lstrip("$")] = d
        self._cache: dict[tuple[int, str], Value] = {}

    def script(self, text: str, at: Directive, captures: Captures | None = None, depth: int = 0) -> list[Part]:
        """The parts of an nginx script (``http://$host$uri``): literal text and resolved variables."""
        parts: list[Part] = []
        for i, piece in enumerate(VAR_RE.split(text)):
            if i % 2:
                name = piece.strip("{}").lower()
                parts.append((name, self.var(name, at, captures, depth)))
            elif piece:
                parts.append((None, Literal(piece)))
        return parts

    def value(self, text: str, at: Directive, captures: Captures | None = None, depth: int = 0) -> Value:
        parts = self.script(text, at, captures, depth)
        return parts[0][1] if len(parts) == 1 else Concat(tuple(v for _, v in parts))

    def var(self, name: str, at: Directive, captures: Captures | None = None, depth: int = 0) -> Value:
        if depth > MAX_DEPTH:
            return SAFE
        if name.isdigit() or captures is not None:
            found = self._capture(int(name) if name.isdigit() else name, at, captures)
            if found is not None or name.isdigit():
                return found or SAFE
        key = (id(at), name)
        if key not in self._cache:
            self._cache[key] = SAFE  # a variable defined through itself stays safe
            self._cache[key] = self._resolve(name, at, depth)
        return self._cache[key]

    def _resolve(self, name: str, at: Directive, depth: int) -> Value:
        for block in at.ancestors():
            sets = [d for d in block.find("set") if len(d.args) >= 2 and d.args[0].lower() == "$" + name]
            if sets:
                return self.value(sets[-1].args[1], sets[-1], None, depth + 1)
        named = self._capture(name, at, None)
        if named is not None:
            return named
        if name in self.tables:
            return self._table(self.tables[name], depth)
        spec = builtin(name)
        if spec and spec[1]:
            parsed = rx.parse_regex(spec[0])
            return Pattern(parsed.seq) if parsed else SAFE
        return SAFE

    def boundary(self, text: str, at: Directive, depth: int = 0) -> Value:
        """What the subject of a regex match can hold (a tainted builtin's set, or a safe one's charset)."""
        name = text.strip().lstrip("$").strip("{}").lower()
        spec = builtin(name)
        if spec is not None:
            parsed = rx.parse_regex(spec[0])
            return Pattern(parsed.seq) if parsed else SAFE
        return self.value(text, at, None, depth + 1)

    def _table(self, block: Directive, depth: int) -> Value:
        is_geo = block.name == "geo"
        source = block.args[0] if len(block.args) >= 2 else "$remote_addr"
        options: list[Value] = []
        complete = False
        for entry in block.children:
            key = entry.name
            value = entry.args[0] if entry.args else ""
            if key == "default":
                complete = True
            elif key in ("hostnames", "volatile", "ranges", "proxy_recursive", "proxy", "delete", "include"):
                continue
            if is_geo:
                options.append(Literal(value))
                continue
            captures = None
            if key.startswith("~"):
                icase = key.startswith("~*")
                parsed = rx.parse_regex(key[2:] if icase else key[1:], icase)
                captures = Captures(parsed, self.boundary(source, block, depth)) if parsed else Captures(None, SAFE)
            options.append(self.value(value, entry, captures, depth + 1))
        if not complete:
            options.append(Literal(""))
        return Choice(tuple(options), complete)

    def _capture(self, ref: int | str, at: Directive, captures: Captures | None) -> Value | None:
        if captures is not None:
            return captures.get(ref)
        for source in self.capture_sources(at):
            found = source.get(ref)
            if found is not None:
                return found
        return None

    def capture_sources(self, at: Directive) -> list[Captures]:
        """Regexes whose captures are visible at ``at``, innermost first (rewrite, if, location, server_name)."""
        sources: list[Captures] = []
        if at.name == "rewrite" and at.args:
            sources.append(Captures(rx.parse_regex(at.args[0]), SAFE, escaped=True))
        parent = at.parent
        if parent is not None:
            before = parent.children[:parent.children.index(at)] if at in parent.children else []
            rewrites = [d for d in before if d.name == "rewrite" and d.args]
            if rewrites:
                sources.append(self._regex_source(rewrites[-1].args[0], False, "$uri", at))
        for block in at.ancestors():
            if block.name == "if" and len(block.args) >= 3 and block.args[1] in ("~", "~*"):
                sources.append(self._regex_source(block.args[2], block.args[1] == "~*", block.args[0], block))
            elif block.name == "location":
                mod, path = location_match(block)
                if mod in ("~", "~*"):
                    sources.append(self._regex_source(path, mod == "~*", "$uri", block))
            elif block.name == "server":
                for sn in block.find("server_name"):
                    sources.extend(self._regex_source(n[1:], True, "$host", block) for n in sn.args if n[:1] == "~")
        return sources

    def _regex_source(self, pattern: str, icase: bool, subject: str, at: Directive) -> Captures:
        parsed = rx.parse_regex(pattern, icase)
        return Captures(parsed, self.boundary(subject, at)) if parsed else Captures(None, SAFE)


def splitting_value(d: Directive) -> str | None:
    """The part of a directive that ends up in a response or upstream request header, per directive."""
    if d.name == "proxy_pass":
        return d.args[0] if d.args else None
    if d.name == "return":
        if len(d.args) == 1:
            return d.args[0] if d.args[0].startswith(("http://", "https://", "$scheme")) else None
        if len(d.args) >= 2 and d.args[0] in ("301", "302", "303", "307", "308"):
            return d.args[1]
        return None
    return d.args[1] if len(d.args) >= 2 else None

