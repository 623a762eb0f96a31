"""What an nginx (PCRE) regex can match, answered on its parse tree: can a capture contain CR, LF, a dot?

The pattern is read by Python's own regex parser (``re._parser``) after the few PCRE spellings it lacks are
rewritten (``(?<name>…)``). The questions asked are the ones the gixy-style checks need: can a sequence
contain a character, must it, can or must it start with one; plus a minimal matching string per branch
choice (to build attacker inputs for origin checks) and the text position of a capture group.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_parser: Any = importlib.import_module("re._parser")

Seq = list[tuple[Any, Any]]  # a parsed sequence: (opcode, argument) items
_SPACE = " \t\n\r\f\v"
_FILL = "abz01-_.:/"


def to_python(pattern: str) -> str:
    """PCRE spellings Python lacks: ``(?<name>`` and ``(?'name'`` become ``(?P<name>``."""
    pattern = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)
    return re.sub(r"\(\?'([A-Za-z_]\w*)'", r"(?P<\1>", pattern)


@dataclass(frozen=True)
class Regex:
    """A parsed nginx regex: the raw text, its Python form, its tree and named groups."""

    raw: str
    ignore_case: bool
    tree: Any
    names: dict[str, int]
    dotall: bool

    @property
    def seq(self) -> Seq:
        return list(self.tree.data)

    @property
    def groups(self) -> int:
        return int(self.tree.state.groups) - 1

    def group(self, ref: int | str) -> Seq | None:
        """The sequence inside capture group ``ref`` (a number or a name), or None."""
        number = self.names.get(ref) if isinstance(ref, str) else ref
        return _find_group(self.seq, number) if number else None

    def compiled(self) -> re.Pattern[str]:
        return re.compile(to_python(self.raw), re.IGNORECASE if self.ignore_case else 0)


@lru_cache(maxsize=4096)
def parse_regex(pattern: str, ignore_case: bool = False) -> Regex | None:
    """The parsed regex, or None when Python's parser cannot read it (then nothing is claimed about it)."""
    try:
        text = to_python(pattern)
        tree = _parser.parse(text, re.IGNORECASE if ignore_case else 0)
        re.compile(text)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    dotall = bool(tree.state.flags & re.DOTALL)
    return Regex(pattern, ignore_case, tree, dict(tree.state.groupdict), dotall)


def _name(op: Any) -> str:
    return str(op)


def _find_group(seq: Seq, number: int) -> Seq | None:
    for op, av in seq:
        name = _name(op)
        if name == "SUBPATTERN":
            if av[0] == number:
                return list(av[3])
            found = _find_group(list(av[3]), number)
        elif name == "BRANCH":
            found = next((f for s in av[1] if (f := _find_group(list(s), number)) is not None), None)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            found = _find_group(list(av[2]), number)
        elif name == "ATOMIC_GROUP":
            found = _find_group(list(av), number)
        elif name in ("ASSERT", "ASSERT_NOT"):
            found = _find_group(list(av[1]), number)
        else:
            found = None
        if found is not None:
            return found
    return None


def _category(cat: str, c: str) -> bool:
    negate = "_NOT_" in cat
    if "DIGIT" in cat:
        hit = c.isdigit()
    elif "SPACE" in cat:
        hit = c in _SPACE
    elif "WORD" in cat:
        hit = c.isalnum() or c == "_"
    elif "LINEBREAK" in cat:
        hit = c == "\n"
    else:
        hit = True
    return hit != negate


def _in_class(items: Any, c: str) -> bool:
    negate, hit = False, False
    for op, val in items:
        name = _name(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            hit = hit or chr(val) == c
        elif name == "RANGE":
            hit = hit or val[0] <= ord(c) <= val[1]
        elif name == "CATEGORY":
            hit = hit or _category(_name(val), c)
    return hit != negate


def char_matches(op: Any, av: Any, c: str, dotall: bool = False) -> bool | None:
    """Whether a one-character atom matches ``c``; None when the item is not a one-character atom."""
    name = _name(op)
    if name == "LITERAL":
        return chr(av) == c
    if name == "NOT_LITERAL":
        return chr(av) != c
    if name == "ANY":
        return dotall or c != "\n"
    if name == "IN":
        return _in_class(av, c)
    return None


def _subseqs(op: Any, av: Any) -> list[Seq]:
    name = _name(op)
    if name == "BRANCH":
        return [list(s) for s in av[1]]
    if name == "SUBPATTERN":
        return [list(av[3])]
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return [list(av[2])] if av[1] else []
    if name == "ATOMIC_GROUP":
        return [list(av)]
    if name == "GROUPREF_EXISTS":
        return [list(av[1])] + ([list(av[2])] if av[2] else [])
    return []


def can_contain(seq: Seq, c: str, dotall: bool = False) -> bool:
    for op, av in seq:
        hit = char_matches(op, av, c, dotall)
        if hit if hit is not None else any(can_contain(s, c, dotall) for s in _subseqs(op, av)):
            return True
    return False


def _single_char(op: Any, av: Any) -> str | None:
    name = _name(op)
    if name == "LITERAL":
        return chr(av)
    if name == "IN" and av and all(_name(o) == "LITERAL" for o, _ in av) and len({v for _, v in av}) == 1:
        return chr(av[0][1])
    return None


def must_contain(seq: Seq, c: str) -> bool:
    return any(_item_must_contain(op, av, c) for op, av in seq)


def _item_must_contain(op: Any, av: Any, c: str) -> bool:
    name = _name(op)
    if _single_char(op, av) is not None:
        return _single_char(op, av) == c
    if name == "BRANCH":
        return all(must_contain(list(s), c) for s in av[1])
    if name == "SUBPATTERN":
        return must_contain(list(av[3]), c)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return av[0] >= 1 and must_contain(list(av[2]), c)
    if name == "ATOMIC_GROUP":
        return must_contain(list(av), c)
    return False


def can_be_empty(seq: Seq) -> bool:
    return all(_item_can_be_empty(op, av) for op, av in seq)


def _item_can_be_empty(op: Any, av: Any) -> bool:
    name = _name(op)
    if name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
        return False
    if name == "BRANCH":
        return any(can_be_empty(list(s)) for s in av[1])
    if name == "SUBPATTERN":
        return can_be_empty(list(av[3]))
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return av[0] == 0 or can_be_empty(list(av[2]))
    if name == "ATOMIC_GROUP":
        return can_be_empty(list(av))
    return True  # anchors, lookarounds, back references


def can_startswith(seq: Seq, c: str, dotall: bool = False) -> bool:
    for op, av in seq:
        hit = char_matches(op, av, c, dotall)
        if hit if hit is not None else any(can_startswith(s, c, dotall) for s in _subseqs(op, av)):
            return True
        if not _item_can_be_empty(op, av):
            return False
    return False


def must_startswith(seq: Seq, c: str) -> bool:
    for op, av in seq:
        name = _name(op)
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        if _item_can_be_empty(op, av):
            return False
        single = _single_char(op, av)
        if single is not None:
            return single == c
        if name == "BRANCH":
            return all(must_startswith(list(s), c) for s in av[1])
        if name == "SUBPATTERN":
            return must_startswith(list(av[3]), c)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            return must_startswith(list(av[2]), c)
        if name == "ATOMIC_GROUP":
            return must_startswith(list(av), c)
        return False
    return False


def sample(seq: Seq, branch: int = 0, repeat_once: bool = False) -> str:
    """A short string the sequence matches, taking the ``branch``-th alternative at every alternation."""
    out: list[str] = []
    for op, av in seq:
        name = _name(op)
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "ANY":
            out.append(".")  # an unescaped dot in a host name was meant as a dot
        elif name in ("NOT_LITERAL", "IN"):
            out.append(next((ch for ch in _FILL if char_matches(op, av, ch)), "a"))
        elif name == "BRANCH":
            alts = av[1]
            out.append(sample(list(alts[min(branch, len(alts) - 1)]), branch, repeat_once))
        elif name == "SUBPATTERN":
            out.append(sample(list(av[3]), branch, repeat_once))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            count = max(av[0], 1 if repeat_once and av[1] else 0)
            out.append(sample(list(av[2]), branch, repeat_once) * count)
        elif name == "ATOMIC_GROUP":
            out.append(sample(list(av), branch, repeat_once))
        elif name == "GROUPREF_EXISTS":
            out.append(sample(list(av[1]), branch, repeat_once))
    return "".join(out)


def group_offset(pattern: str, number: int) -> int | None:
    """Index in ``pattern`` of the ``(`` that opens capture group ``number`` (PCRE text, escapes respected)."""
    count, i, in_class = 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]" or pattern[i + 1:i + 3] == "^]":
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif ch == "(":
            rest = pattern[i + 1:i + 4]
            capturing = not rest.startswith("?") or rest.startswith(("?P<", "?'")) or (
                rest.startswith("?<") and rest[2:3] not in ("=", "!"))
            if capturing:
                count += 1
                if count == number:
                    return i
        i += 1
    return None
