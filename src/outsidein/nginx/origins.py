"""Does an Origin/Referer validation regex let a foreign site through? Ask the regex itself.

From each alternative of the regex a legitimate sample is generated (``https://example.com``); attacker
variants of it are built (a suffix domain, a prefix in the host label, userinfo, a dot that is really
"any character", the sample pushed into a path or query of another site) and matched with the regex. A
variant that matches while its host is outside the sample's registrable domain is the proof returned.
For ``Origin`` only values a browser can send (``scheme://host[:port]``) count.

A regex no foreign value passes can still be wrong: ``weakness`` says how. It rebuilds, from each legitimate
sample, the value a browser really sends for that site (an Origin is ``scheme://host[:port]``, no path; a
Referer is a URL with a scheme, a path of at least ``/`` and never a ``#fragment``) and asks whether the regex
accepts it, and whether it also accepts text before the scheme (no ``^``, or ``^(…)?`` in front of it).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from outsidein.nginx.regex import Seq, parse_regex, sample

EVIL = "evil.example.net"
_ORIGIN_SHAPE = re.compile(r"[a-z][a-z0-9+.-]*://[a-z0-9.-]+(?::\d+)?", re.I)
_URL_PARTS = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)?([^/?#:@]*)(.*)$", re.S)
_SAMPLE_PARTS = re.compile(r"(?:([a-z][a-z0-9+.-]*)://)?([^/?#:@]*)(:\d*)?([^?#]*)(\?[^#]*)?(#.*)?", re.I | re.S)
_HOSTNAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+", re.I)
_OPTIONAL_SLASH = re.compile(r"(?<!\\)/\?(?=[\w=&])")
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


def weakness(pattern: str, ignore_case: bool, header: str) -> str | None:
    """Why a regex that lets no other site through is still wrong, or None: it rejects the legitimate site's
    real header (no scheme, a path in an Origin, a fragment or no path in a Referer), or it lets any text
    precede the scheme. Only samples whose host is a host name count (else no legitimate site is known)."""
    parsed = parse_regex(pattern, ignore_case)
    if parsed is None:
        return None
    compiled = parsed.compiled()
    legit: list[re.Match[str]] = []
    samples = {sample(parsed.seq, k, once) for k in range(4) for once in (False, True)}
    for text in sorted(samples, key=lambda t: (len(t), t)):
        m = _SAMPLE_PARTS.fullmatch(text)
        if m and _HOSTNAME.fullmatch(m.group(2)) and compiled.search(text):
            legit.append(m)
    if not legit:
        return None
    reasons: list[str] = []
    sent = sorted((value for m in legit for value in _browser_values(m, header)),
                  key=lambda value: not value.startswith("https://"))
    if not any(compiled.search(value) for value in sent):
        why = next((w for m in legit if (w := _why_rejected(compiled, m, header))), "")
        hint = "; note `/?` makes the `/` optional (a literal `?` is `\\?`)" if _OPTIONAL_SLASH.search(pattern) else ""
        reasons.append(f"rejects the legitimate {header} {sent[0]}{why}{hint}")
    prefixed = next((f"evil{m.group(0)}" for m in legit if m.group(1) and compiled.search(f"evil{m.group(0)}")), None)
    if prefixed:
        where = "lets any text precede the scheme" if _anchored(parsed.seq) else "is not anchored at the start (no ^)"
        reasons.append(f"{where}: {prefixed} passes")
    return "; it also ".join(reasons) or None


def _browser_values(m: re.Match[str], header: str) -> list[str]:
    """What a browser sends for the sample's site: ``scheme://host[:port]`` for Origin; for Referer the URL
    without fragment, and with a path of at least ``/`` for http(s). Without a scheme in the sample, https
    and http."""
    scheme, host, port, path, query, _ = (g or "" for g in m.groups())
    tail = "" if header == "origin" else (path or ("/" if _special(scheme) else "")) + query
    return [f"{s}://{host}{port}{tail}" for s in ([scheme] if scheme else ["https", "http"])]


def _why_rejected(compiled: re.Pattern[str], m: re.Match[str], header: str) -> str:
    """What in the sample a browser never sends, each difference tested alone: the fix the regex refuses."""
    scheme, host, port, path, query, fragment = (g or "" for g in m.groups())
    text, why = m.group(0), []
    if not scheme and not compiled.search(f"https://{text}"):
        why.append(f"no scheme (a browser's {header.capitalize()} always starts with one)")
    if header == "origin":
        rest = path + query + fragment
        if rest and not compiled.search(text[:len(text) - len(rest)]):
            why.append(f"`{rest}` required after the host (an Origin is scheme://host[:port], with no path)")
        return ": " + ", ".join(why) if why else ""
    if fragment and not compiled.search(text[:len(text) - len(fragment)]):
        why.append(f"a fragment `{fragment}` required (browsers never send one in a Referer)")
    prefix = f"{scheme}://{host}{port}" if scheme else f"{host}{port}"
    if not path and _special(scheme) and not compiled.search(f"{prefix}/{query}{fragment}"):
        why.append(f"{'a query right after' if query else 'nothing allowed after'} the host (a Referer always has "
                   "a path, at least /)")
    return ": " + ", ".join(why) if why else ""


def _special(scheme: str) -> bool:
    """http(s), or none (a browser adds one): URLs whose serialisation always has a path, at least ``/``."""
    return scheme.lower() in ("", "http", "https")


def _anchored(seq: Seq) -> bool:
    """Whether every alternative of the regex starts with ``^`` (or ``\\A``)."""
    for op, av in seq:
        name = str(op)
        if name == "AT":
            return str(av) in ("AT_BEGINNING", "AT_BEGINNING_STRING")
        if name == "SUBPATTERN":
            return _anchored(list(av[3]))
        if name == "BRANCH":
            return all(_anchored(list(s)) for s in av[1])
        return False
    return False
