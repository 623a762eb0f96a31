"""botocore's XML response parsers, reading a large response's lists one item at a time.

botocore turns a query/EC2 response into a whole ElementTree first and converts it afterwards, so
a 13 MB ``DescribeSecurityGroups`` answer (4,500 groups) briefly costs the body, a tree of ~80 MiB
and the resulting dicts at once. These parsers feed the body to an incremental XML parser and hand
each item of a top-level list to botocore's own shape parser as soon as it is complete, then drop
its elements; the rest of the response (tokens, request id, scalars) goes through botocore's normal
path. Equal strings and numbers (protocols, CIDRs, group ids, account ids) are parsed into one
shared object, as the parsed evidence is kept for the whole audit.

The result is the dict botocore returns (tested on real moto responses) except that, inside list
items, empty lists are left out: 45,000 security group rules carry ~110,000 empty ``Ipv6Ranges``,
``PrefixListIds`` … (12 MB), and every reader of the evidence treats an absent list as an empty
one (``.get(key, [])``). Responses under ``stream_threshold`` bytes and error responses take
botocore's path unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from botocore.parsers import EC2QueryParser, QueryParser, ResponseParserError, ResponseParserFactory

from outsidein.allocator import cyclic_gc_paused

STREAM_THRESHOLD = 256 * 1024  # bytes of body from which the lists are streamed
_CHUNK = 1 << 20

# (output shape, list member, item) -> what to keep of the item, or None to drop it
ItemReducer = Callable[[str, str, Any], Any]


def _without_empty_lists(node: Any) -> Any:
    """``node`` rebuilt without the empty lists of its dicts (rebuilt dicts and lists are also compact)."""
    if type(node) is dict:
        return {key: _without_empty_lists(value) if type(value) is dict or type(value) is list else value
                for key, value in node.items() if value != []}
    if type(node) is list:
        return [_without_empty_lists(value) if type(value) is dict or type(value) is list else value
                for value in node]
    return node


class _StreamingLists:
    """Mixin for botocore's QueryParser/EC2QueryParser (see the module docstring)."""

    stream_threshold = STREAM_THRESHOLD
    item_reducer: ItemReducer | None = None
    _shared: dict[Any, Any]  # equal strings and integers parsed by this parser, shared (setdefault is atomic)

    def _handle_string(self, shape: Any, node: Any) -> Any:
        value = super()._handle_string(shape, node)  # type: ignore[misc]
        return self._shared.setdefault(value, value) if type(value) is str else value

    def _handle_integer(self, shape: Any, node: Any) -> Any:
        value = super()._handle_integer(shape, node)  # type: ignore[misc]
        return self._shared.setdefault(value, value)

    _handle_long = _handle_integer

    def _do_parse(self, response: dict[str, Any], shape: Any) -> dict[str, Any]:
        body = response.get("body") or b""
        if shape is None or len(body) < self.stream_threshold:
            return super()._do_parse(response, shape)  # type: ignore[misc, no-any-return]
        try:
            with cyclic_gc_paused():
                return self._parse_streaming(body, shape)
        except (AttributeError, TypeError):
            # The streamed path uses botocore parser internals (_parse_shape, _member_key_name …); if a
            # botocore release changes them, take botocore's own whole-tree path: more memory, same answer.
            return super()._do_parse(response, shape)  # type: ignore[misc, no-any-return]

    def _parse_streaming(self, body: bytes, shape: Any) -> dict[str, Any]:
        parser: Any = self
        wrapper = shape.serialization.get("resultWrapper")
        lists = {parser._member_key_name(member, name): (name, member)
                 for name, member in shape.members.items()
                 if member.type_name == "list" and not member.serialization.get("flattened")}
        streamed: dict[str, list[Any]] = {}
        created: list[ElementTree.Element] = []

        def element(tag: str, attrib: dict[str, str]) -> ElementTree.Element:
            node = ElementTree.Element(tag, attrib)
            if not created:
                created.append(node)  # the document's root
            return node

        xml = ElementTree.XMLParser(target=ElementTree.TreeBuilder(element_factory=element))
        try:
            for offset in range(0, len(body), _CHUNK):
                xml.feed(body[offset:offset + _CHUNK])
                if created:
                    self._drain(created[0], wrapper, lists, shape.name, streamed, final=False)
            xml.close()
        except ElementTree.ParseError as exc:
            raise ResponseParserError(
                f"Unable to parse response ({exc}), invalid XML received. Further retries may succeed") from exc
        if not created:
            raise ResponseParserError("Unable to parse response: empty XML document")
        root = created[0]
        self._drain(root, wrapper, lists, shape.name, streamed, final=True)
        start = parser._find_result_wrapped_shape(wrapper, root) if wrapper else root
        parsed: dict[str, Any] = parser._parse_shape(shape, start)
        parsed.update(streamed)
        parser._inject_response_metadata(root, parsed)
        return parsed

    def _drain(self, root: ElementTree.Element, wrapper: str | None, lists: dict[str, tuple[str, Any]],
               operation: str, streamed: dict[str, list[Any]], final: bool) -> None:
        """Parse and drop every list item that is complete (the tree builder appends an element at its
        start, so only the last child of the last open element may still be growing)."""
        parser: Any = self
        start: ElementTree.Element | None = root
        if wrapper:
            start = next((child for child in root if parser._node_tag(child) == wrapper), None)
        if start is None:
            return
        children = list(start)
        for position, holder in enumerate(children):
            found = lists.get(parser._node_tag(holder))
            if found is None:
                continue
            items = list(holder)
            if not final and position == len(children) - 1:
                items = items[:-1]  # this list may still be open: its last item may be incomplete
            name, member = found
            reduce = self.item_reducer
            for node in items:
                item = _without_empty_lists(parser._parse_shape(member.member, node))
                if reduce is not None:
                    item = reduce(operation, name, item)
                if item is not None:
                    streamed.setdefault(name, []).append(item)
            del holder[:len(items)]


class StreamingQueryParser(_StreamingLists, QueryParser):  # type: ignore[misc]
    """botocore's query-protocol parser (IAM, RDS, ElastiCache …) with streamed lists."""


class StreamingEC2QueryParser(_StreamingLists, EC2QueryParser):  # type: ignore[misc]
    """botocore's EC2 parser with streamed lists."""


class StreamingParserFactory(ResponseParserFactory):  # type: ignore[misc]
    """Hands out the streaming parsers for the query and EC2 protocols, botocore's for the rest."""

    def __init__(self, item_reducer: ItemReducer | None = None, stream_threshold: int = STREAM_THRESHOLD) -> None:
        super().__init__()
        self.item_reducer = item_reducer
        self.stream_threshold = stream_threshold

    def create_parser(self, protocol_name: str) -> Any:
        classes: dict[str, type[_StreamingLists]] = {"query": StreamingQueryParser, "ec2": StreamingEC2QueryParser}
        if protocol_name not in classes:
            return super().create_parser(protocol_name)
        parser = classes[protocol_name](**self._defaults)
        parser._shared = {}
        parser.item_reducer = self.item_reducer
        parser.stream_threshold = self.stream_threshold
        return parser
