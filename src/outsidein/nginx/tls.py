"""TLS settings of an nginx server: protocol defaults by version, and weak parts of an OpenSSL cipher string.

The cipher string is judged by its tokens, not expanded with the local OpenSSL (the audited server's
OpenSSL may enable suites this machine's does not): a token that enables a weak class, or a broad token
(``ALL``, ``MEDIUM`` …) whose weak members are not excluded with ``!``/``-``, is reported.
"""

from __future__ import annotations

import re

WEAK_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
MODERN_DEFAULT_SINCE = (1, 23, 4)  # nginx's default ssl_protocols became "TLSv1.2 TLSv1.3"
OLD_DEFAULT = ("TLSv1", "TLSv1.1", "TLSv1.2")
NEW_DEFAULT = ("TLSv1.2", "TLSv1.3")
DEFAULT_CIPHERS = "HIGH:!aNULL:!MD5"

# Weak classes (OpenSSL aliases, upper-cased) and how each can be excluded.
WEAK_CLASSES = {
    "NULL": ("NULL", "ENULL"), "ENULL": ("ENULL", "NULL"), "ANULL": ("ANULL",), "ADH": ("ADH", "ANULL"),
    "AECDH": ("AECDH", "ANULL"), "EXPORT": ("EXPORT", "EXP"), "EXP": ("EXP", "EXPORT"), "LOW": ("LOW",),
    "RC4": ("RC4",), "DES": ("DES",), "3DES": ("3DES", "DES"), "MD5": ("MD5",), "RC2": ("RC2",),
}
# Broad aliases and the weak classes they can pull in (on the OpenSSL versions still deployed).
BROAD = {
    "ALL": ("ANULL", "RC4", "3DES", "MD5", "EXPORT"),
    "COMPLEMENTOFALL": ("ENULL",),
    "MEDIUM": ("RC4", "3DES"),
}
_NAME_WEAK = re.compile(r"(?:^|-)(NULL|RC4|RC2|DES|EXP|EXPORT\d*|ADH|AECDH|MD5)(?:-|$)")
_DISPLAY = {"ANULL": "aNULL", "ENULL": "eNULL"}
_EQUIV = {"EXPORT40": "EXPORT", "EXPORT56": "EXPORT", "DES-CBC3": "3DES"}


def default_protocols(version: tuple[int, int, int] | None) -> tuple[str, ...]:
    """nginx's ``ssl_protocols`` when unset (unknown version: assume the old default)."""
    return NEW_DEFAULT if version is not None and version >= MODERN_DEFAULT_SINCE else OLD_DEFAULT


def weak_protocols(protocols: tuple[str, ...]) -> list[str]:
    return [p for p in WEAK_PROTOCOLS if p in protocols]


def _tokens(ciphers: str) -> list[str]:
    return [t for t in re.split(r"[:,\s]+", ciphers.strip()) if t]


def _classes(token: str) -> set[str]:
    """Weak classes a (positive) token names: an alias (``RC4``, ``EXP``) or a suite name (``DES-CBC3-SHA``)."""
    found: set[str] = set()
    for part in token.upper().split("+"):
        part = _EQUIV.get(part, part)
        if part in WEAK_CLASSES:
            found.add(part)
        elif "-" in part:
            if "DES-CBC3" in part:
                found.add("3DES")
                part = part.replace("DES-CBC3", "3DESCBC")
            for m in _NAME_WEAK.finditer(part):
                found.add(_EQUIV.get(m.group(1), "EXPORT" if m.group(1).startswith("EXPORT") else m.group(1)))
    return found


def weak_ciphers(ciphers: str) -> list[str]:
    """The weak classes the cipher string enables, as text (``RC4``, ``ALL without !3DES``…); [] if none."""
    excluded: set[str] = set()
    for token in _tokens(ciphers):
        if token[0] in "!-":
            excluded.update(part.upper() for part in token[1:].split("+"))
    weak: list[str] = []
    for token in _tokens(ciphers):
        if token[0] in "!-@":
            if token.upper().startswith("@SECLEVEL=0"):
                weak.append("@SECLEVEL=0")
            continue
        bare = token.lstrip("+")
        for cls in sorted(_classes(bare)):
            if not excluded.intersection(WEAK_CLASSES[cls]):
                weak.append(_DISPLAY.get(cls, cls))
        for cls in BROAD.get(bare.upper(), ()):
            if not excluded.intersection(WEAK_CLASSES[cls]):
                weak.append(f"{bare} without !{_DISPLAY.get(cls, cls)}")
    return list(dict.fromkeys(weak))
