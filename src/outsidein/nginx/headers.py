"""Which response headers nginx really sends in a location, with nginx's inheritance rules.

``add_header`` at a level replaces every ``add_header`` inherited from the levels above (nginx < 1.29.3, or
``add_header_inherit on``); ``add_header_inherit merge`` (1.29.3+) appends the parent's instead, ``off``
drops them. An empty value sends nothing. headers-more's ``more_set_headers`` / ``more_clear_headers``
add up across levels and apply to every status code.
"""

from __future__ import annotations

from dataclasses import dataclass

from outsidein.nginx.config import Directive, effective_one, levels, location_match, locations

# The seven headers of the playbook, by lower-case name.
SECURITY_HEADERS = {
    "strict-transport-security": "Strict-Transport-Security",
    "x-frame-options": "X-Frame-Options",
    "x-content-type-options": "X-Content-Type-Options",
    "x-xss-protection": "X-XSS-Protection",
    "referrer-policy": "Referrer-Policy",
    "content-security-policy": "Content-Security-Policy",
    "permissions-policy": "Permissions-Policy",
}
REDIRECT_CODES = frozenset({"301", "302", "303", "307", "308", "444"})


@dataclass(frozen=True)
class Header:
    name: str
    value: str
    always: bool  # sent on every status (add_header ... always; headers-more without -s)
    directive: Directive

    @property
    def key(self) -> str:
        return self.name.lower()


def own_add_headers(block: Directive, field: str = "add_header") -> list[Header]:
    """This level's ``add_header`` (or ``add_trailer``) fields with a non-empty value."""
    out = []
    for d in block.find(field):
        if len(d.args) >= 2 and d.args[1] != "":
            out.append(Header(d.args[0], d.args[1], len(d.args) > 2 and d.args[2] == "always", d))
    return out


def inherit_mode(block: Directive, field: str = "add_header") -> str:
    """``add_header_inherit`` in effect: ``on`` (replace, nginx's default), ``merge`` or ``off``."""
    d = effective_one(block, f"{field}_inherit")
    mode = d.args[0].lower() if d and d.args else "on"
    return mode if mode in ("on", "off", "merge") else "on"


def parent_level(block: Directive) -> Directive | None:
    chain = levels(block)
    next(chain, None)
    return next(chain, None)


def effective_add_headers(block: Directive, field: str = "add_header") -> list[Header]:
    """The ``add_header`` (or ``add_trailer``) fields nginx sends for a request handled in ``block``."""
    key = f"effective:{field}"
    if key not in block.memo:
        block.memo[key] = _effective_add_headers(block, field)
    return list(block.memo[key])


def _effective_add_headers(block: Directive, field: str) -> list[Header]:
    mode = inherit_mode(block, field)
    own = own_add_headers(block, field)
    parent = parent_level(block)
    inherited = effective_add_headers(parent, field) if parent is not None and mode != "off" else []
    if mode == "merge":
        return inherited + own
    if mode == "off":
        return own
    return own if own else inherited


def _more_headers(block: Directive) -> tuple[list[Header], set[str]]:
    """headers-more: fields set and names cleared, from every level (they accumulate)."""
    found: list[Header] = []
    cleared: set[str] = set()
    if "more" in block.memo:
        return block.memo["more"]  # type: ignore[no-any-return]
    for level in reversed(list(levels(block))):
        for d in level.find("more_set_headers") + level.find("more_clear_headers"):
            limited = False
            args = list(d.args)
            while args and args[0].startswith("-"):
                opt = args.pop(0)
                limited = limited or opt == "-s"
                if opt in ("-s", "-t") and args:
                    args.pop(0)
            for arg in args:
                name, _, value = arg.partition(":")
                if d.name == "more_clear_headers" or not value.strip():
                    cleared.add(name.strip().lower())
                else:
                    found.append(Header(name.strip(), value.strip(), not limited, d))
    block.memo["more"] = (found, cleared)
    return found, cleared


# What the third-party ngx_security_headers module sends with ``security_headers on``.
MODULE_HEADERS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains; preload", "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff", "x-xss-protection": "0", "referrer-policy": "strict-origin-when-cross-origin",
}


def effective_headers(block: Directive) -> dict[str, Header]:
    """Lower-case header name → the field sent (headers-more wins over add_header, as it runs later)."""
    if "headers" not in block.memo:
        block.memo["headers"] = _effective_headers(block)
    return dict(block.memo["headers"])


def _effective_headers(block: Directive) -> dict[str, Header]:
    result = {h.key: h for h in effective_add_headers(block)}
    module = effective_one(block, "security_headers")
    if module is not None and module.args[:1] == ("on",):
        for key, value in MODULE_HEADERS.items():
            result.setdefault(key, Header(SECURITY_HEADERS[key], value, True, module))
    more, cleared = _more_headers(block)
    for name in cleared:
        result.pop(name, None)
    result.update({h.key: h for h in more})
    return result


def cleared_headers(block: Directive) -> set[str]:
    return _more_headers(block)[1]


def defines_headers(block: Directive) -> bool:
    """True when this level's own ``add_header`` decides what it sends (it replaces the inherited set)."""
    return bool(own_add_headers(block)) or inherit_mode(block) == "off"


def is_redirect(block: Directive) -> bool:
    """A block whose own ``return`` sends a redirect (or closes the connection): no page to protect."""
    for d in block.find("return"):
        if d.args and (d.args[0] in REDIRECT_CODES or d.args[0].startswith(("http://", "https://", "$scheme"))):
            return True
    return False


def served_contexts(server: Directive) -> list[Directive]:
    """The blocks that produce responses in a server: its locations, and the server itself when no
    catch-all ``location /`` exists; redirect-only blocks are left out."""
    if is_redirect(server):
        return []
    locs = [loc for loc in locations(server) if not is_redirect(loc)]
    catch_all = any(location_match(loc) in (("", "/"), ("^~", "/")) for loc in locations(server))
    return ([] if catch_all else [server]) + locs


def reporting_block(ctx: Directive, server: Directive) -> Directive:
    """Where a header missing in ``ctx`` is decided: the nearest level up to the server that sets headers."""
    for level in levels(ctx):
        if level is server or defines_headers(level):
            return level
    return server
