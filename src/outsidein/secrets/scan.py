"""The secrets in a file's content: the pre-filter, then the rules on the lines it points at (pure, no I/O).

Shared by the repository collector (``outsidein.secrets.collect``: working tree, git history) and the AWS
sanitizer (``outsidein.secrets.aws``: EC2 user data), so neither reaches into the other.
"""

from __future__ import annotations

from collections.abc import Iterator

from outsidein.secrets.rules import Candidate, hit_offsets, placeholder, private_key_body, scan_line


class LineScanner:
    """Scans the lines of one file in order; joins a private-key header with the body line that names it.

    Only lines that the block pre-filter points at need to be fed (``scan_text``, the history stream), plus,
    while ``pending``, the line after a private-key header; feeding every line gives the same findings.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._pending: tuple[int, Candidate] | None = None

    @property
    def pending(self) -> bool:
        """A private-key header waits for the next line: feed it whatever it holds."""
        return self._pending is not None

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


def scan_text(content: bytes, path: str) -> Iterator[tuple[int, Candidate]]:
    """The secrets in one file's content, with 1-based line numbers: only pre-filter hits are cut into lines."""
    scanner = LineScanner(path)
    size = len(content)
    number, counted, done = 1, 0, -1
    for at in hit_offsets(content):
        if at <= done:
            continue  # on a line already scanned
        start = content.rfind(b"\n", 0, at) + 1
        number += content.count(b"\n", counted, start)
        counted = start
        end = content.find(b"\n", at)
        done = end = size if end < 0 else end
        yield from scanner.feed(content[start:end], number)
        while scanner.pending and end < size:  # the line after a private-key header names the key
            start, number, counted = end + 1, number + 1, end + 1
            end = content.find(b"\n", start)
            done = end = size if end < 0 else end
            yield from scanner.feed(content[start:end], number)
    yield from scanner.close()
