"""YAML with line numbers: ``yaml.compose`` nodes, merge keys (``<<``) expanded, tags kept as text.

Custom tags (GitLab's ``!reference``) compose fine because nothing is constructed. Keys are read as their
source text, so GitHub's ``on:`` stays ``"on"`` (YAML 1.1 would make it ``True``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
INT = "tag:yaml.org,2002:int"
MERGE = "tag:yaml.org,2002:merge"


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it: ~10x faster


def compose(text: str) -> Node | None:
    return yaml.compose(text, Loader=LOADER)


def line(node: Node | None) -> int:
    """1-based line of a node (0 for none)."""
    return node.start_mark.line + 1 if node is not None else 0


def items(node: Node | None) -> Iterator[tuple[str, Node, Node]]:
    """(key text, key node, value node) of a mapping; merged mappings first, overridden by explicit keys."""
    if not isinstance(node, MappingNode):
        return
    seen: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        if key.tag == MERGE or (isinstance(key, ScalarNode) and key.value == "<<"):
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for src in sources:
                for k, kn, vn in items(src):
                    seen.setdefault(k, (kn, vn))
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.tag != MERGE and key.value != "<<":
            seen[key.value] = (key, value)
    for k, (kn, vn) in seen.items():
        yield k, kn, vn


def get(node: Node | None, key: str) -> Node | None:
    for k, _kn, vn in items(node):
        if k == key:
            return vn
    return None


def seq(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def py(node: Node | None) -> Any:
    """The plain Python value (scalars resolved: bools, null, ints; everything else a string)."""
    if node is None:
        return None
    if isinstance(node, ScalarNode):
        if node.tag == BOOL:
            return node.value.lower() in ("true", "yes", "on", "y")
        if node.tag == NULL:
            return None
        if node.tag == INT:
            try:
                return int(node.value, 0)
            except ValueError:
                return node.value
        return node.value
    if isinstance(node, SequenceNode):
        return [py(n) for n in node.value]
    return {k: py(v) for k, _kn, v in items(node)}


def text_lines(node: Node | None) -> list[tuple[int, str]]:
    """A scalar's lines with their 1-based file lines (block scalars start on the line after ``|``)."""
    if not isinstance(node, ScalarNode):
        return []
    first = line(node) + (1 if node.style in ("|", ">") else 0)
    return [(first + i, text) for i, text in enumerate(node.value.split("\n"))]
