"""Does an Origin/Referer validation regex let a foreign site through? Ask the regex itself.

From each alternative of the regex a legitimate sample is generated (``https://example.com``); attacker
variants of it are built (a suffix domain, a prefix in the host label, userinfo, a dot that is really
"any character", the sample pushed into a path or query of another site) and matched with the regex. A
variant that matches while its host is outside the sample's registrable domain is the proof returned.
For ``Origin`` only values a browser can send (``scheme://host[:port]``) count.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from outsidein.nginx.regex import parse_regex, sample

EVIL = "evil.example.net"
_ORIGIN_SHAPE = re.compile(r"[a-z][a-z0-9+.-]*://[a-z0-9.-]+(?::\d+)?", re.I)
_URL_PARTS = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)?([^/?#:@]*)(.*)$", re.S)
_SECOND_LEVEL = {"co", "com", "net", "org", "gov", "edu", "ac", "ne", "or", "go"}


def registrable(host: str) -> str:
    """``a.b.example.co.uk`` → ``example.co.uk`` (a small public-suffix heuristic: enough to tell sites apart)."""
    labels = host.lower().strip(".").split(".")
    if re.fullmatch(r"[\d.]+|\[.*\]", host):
        return host
    keep = 3 if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2 else 2
    return ".".join(labels[-keep:])


def _variants(text: str) -> list[str]:
    m = _URL_PARTS.match(text)
    if not m or not m.group(2):
        return []
    scheme, host, rest = m.group(1) or "", m.group(2), m.group(3)
    full = scheme or "https://"
    out = [
        f"{scheme}{host}.{EVIL}{rest}", f"{scheme}evil{host}{rest}", f"{scheme}{host}@{EVIL}{rest}",
        f"{scheme}{host}{EVIL}{rest}", f"https://{EVIL}/{text}", f"https://{EVIL}/?{text}", f"https://{EVIL}#{text}",
        f"{full}{host}.{EVIL}", f"{full}evil{host}",
    ]
    for i, ch in enumerate(host):
        if ch == ".":
            out.append(f"{scheme}{host[:i]}x{host[i + 1:]}{rest}")
    return out


def bypass(pattern: str, ignore_case: bool, header: str) -> str | None:
    """An attacker value from a foreign site that the regex accepts, or None (also for unreadable regexes)."""
    parsed = parse_regex(pattern, ignore_case)
    if parsed is None:
        return None
    compiled = parsed.compiled()
    samples = {sample(parsed.seq, k, once) for k in range(4) for once in (False, True)}
    for legit in sorted(samples):
        if not compiled.search(legit):
            continue
        m = _URL_PARTS.match(legit)
        if not m or not m.group(2) or "." not in m.group(2):
            continue
        home = registrable(m.group(2))
        for candidate in _variants(legit):
            if header == "origin" and not _ORIGIN_SHAPE.fullmatch(candidate):
                continue
            try:
                host = urlsplit(candidate).hostname
            except ValueError:
                continue
            if host and host != home and not host.endswith("." + home) and compiled.search(candidate):
                return candidate
    return None
