"""Layer 3: NGINX configuration. Does the edge proxy rate-limit logins, hide versions, send the headers?

Every check reads a parsed ``NginxConfig`` (``outsidein.nginx.config``) and reports the ``path:line`` of the
offending directive, or of the block where a required directive is missing. Inheritance is nginx's: a
value set in ``http`` holds in every server and location that does not set its own, and an ``add_header``
in a block replaces all inherited ones. ``nginx-live-response`` checks what the server really sent.

Severities not in the playbook's table: X-Content-Type-Options and Content-Security-Policy MEDIUM (they stop
MIME confusion and script injection), Referrer-Policy, Permissions-Policy and X-XSS-Protection LOW (defence
in depth); headers without ``always`` LOW; slowloris timeouts, proxy header leaks MEDIUM (as
server_tokens); weak TLS protocols and ciphers HIGH (the playbook's minimum is TLS 1.2); OCSP stapling LOW;
an Origin/Referer regex no other site passes but that is not anchored to scheme and host LOW (fragile).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from outsidein.checks.registry import NGINX, target_check
from outsidein.models import Result, Severity, fail, passed
from outsidein.nginx import headers as hd
from outsidein.nginx import regex as rx
from outsidein.nginx import tls
from outsidein.nginx.config import (
    Directive,
    NginxConfig,
    effective,
    effective_one,
    enclosing,
    is_tls,
    listen_ports,
    location_match,
    locations,
    parse_size,
    parse_time,
    url_port,
)
from outsidein.nginx.origins import bypass, weakness
from outsidein.nginx.regex import group_offset, parse_regex
from outsidein.nginx.script import VAR_RE, Scope, splitting_value

CONFIG = ("config",)
Problem = tuple[str, str, Severity | None]  # resource (path:line), detail, severity override

HEADER_SEVERITY = {
    "strict-transport-security": Severity.HIGH, "x-frame-options": Severity.MEDIUM,
    "x-content-type-options": Severity.MEDIUM, "content-security-policy": Severity.MEDIUM,
    "referrer-policy": Severity.LOW, "permissions-policy": Severity.LOW, "x-xss-protection": Severity.LOW,
}
OTHER_HEADERS = ("x-content-type-options", "content-security-policy", "referrer-policy", "permissions-policy",
                 "x-xss-protection")
REDEFINITION_SENSITIVE = set(hd.SECURITY_HEADERS) | {
    "content-security-policy-report-only", "cross-origin-opener-policy", "cross-origin-embedder-policy",
    "cross-origin-resource-policy", "x-permitted-cross-domain-policies", "cache-control", "pragma", "expires",
    "content-disposition", "expect-ct", "access-control-allow-origin",
}
HSTS_MIN_AGE = 31536000
LOGIN_RE = re.compile(r"log[-_]?in|sign[-_]?(?:in|on|up)|log[-_]?on|auth(?!or)|token|passw(?:or)?d|session|"
                      r"oauth|sso|otp|mfa|2fa|register|forgot|reset", re.I)
LOGIN_MAX_PER_MINUTE = 5.0
MAX_BODY = 10 * 1024 ** 2
PROXY_TIMEOUTS = ("proxy_connect_timeout", "proxy_read_timeout", "proxy_send_timeout")
PROXY_TIMEOUT_MAX = 30.0
SLOW_TIMEOUTS = {"client_body_timeout": 60, "client_header_timeout": 60, "keepalive_timeout": 75, "send_timeout": 60}
SLOW_TIMEOUT_MAX = 10.0
UPSTREAM_PASS = ("proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass")
SPOOFED_HOST_VARS = re.compile(r"^(http_host|http_x_forwarded_host|http_x_host|http_forwarded|arg_\w+|cookie_\w+)$")
REDIRECT_STATUSES = ("301", "302", "303", "307", "308")


def _report(check_id: str, cfg: NginxConfig, problems: Iterable[Problem]) -> Iterator[Result]:
    """One FAIL per distinct (resource, detail); PASS for the configuration when there is none."""
    seen: set[tuple[str, str]] = set()
    for resource, detail, severity in problems:
        if (resource, detail) not in seen:
            seen.add((resource, detail))
            yield fail(check_id, resource, detail, environment=cfg.environment, severity=severity)
    if not seen:
        yield passed(check_id, cfg.name, environment=cfg.environment)


def _http_of(d: Directive) -> Directive | None:
    return enclosing(d, "http")


def _http_servers(cfg: NginxConfig) -> list[tuple[Directive, Directive]]:
    """(http-or-root block, server) pairs: where a missing global directive is reported, and the server."""
    return [(_http_of(s) or cfg.root, s) for s in cfg.servers()]


def _server_contexts(server: Directive) -> list[Directive]:
    return [server, *locations(server)]


# -- rate limiting -------------------------------------------------------------------------------------

def _rate_per_minute(rate: str) -> float | None:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)r/([sm])", rate.strip())
    if not m:
        return None
    return float(m.group(1)) * (60 if m.group(2) == "s" else 1)


def _zones(cfg: NginxConfig) -> dict[str, tuple[float | None, str]]:
    zones: dict[str, tuple[float | None, str]] = {}
    for d in cfg.find_all("limit_req_zone"):
        args = dict(a.split("=", 1) for a in d.args if "=" in a)
        if "zone" in args:
            rate = args.get("rate", "")
            zones[args["zone"].split(":", 1)[0]] = (_rate_per_minute(rate), rate)
    return zones


def _login_locations(server: Directive) -> Iterator[tuple[Directive, str]]:
    for loc in locations(server):
        mod, path = location_match(loc)
        if mod != "@" and LOGIN_RE.search(path) and not loc.find("internal") and not hd.is_redirect(loc):
            yield loc, path


@target_check(
    source=NGINX, id="nginx-login-rate-limit", layer=3, severity=Severity.CRITICAL,
    title="Login/auth location without a strict request rate limit",
    remediation="Define `limit_req_zone $binary_remote_addr zone=login_limit:10m rate=5r/m;` in http and add "
                "`limit_req zone=login_limit burst=3 nodelay; limit_req_status 429;` to every login, token, "
                "password and session location.",
    verify="for i in $(seq 1 20); do curl -s -o /dev/null -w '%{http_code}\\n' -X POST "
           "https://your-domain.com/api/auth/login; done  # expect 429 after ~5 requests ({resource})",
    requires=CONFIG,
)
def nginx_login_rate_limit(cfg: NginxConfig) -> Iterator[Result]:
    return _report("nginx-login-rate-limit", cfg, _login_rate_problems(cfg))


def _login_rate_problems(cfg: NginxConfig) -> Iterator[Problem]:
    zones = _zones(cfg)
    for server in cfg.servers():
        for loc, path in _login_locations(server):
            limits = effective(loc, "limit_req")
            if not limits:
                yield loc.where, f"no limit_req on login location {path}", None
                continue
            rated: list[tuple[float, str, str, Directive]] = []
            for lim in limits:
                zone = next((a.split("=", 1)[1] for a in lim.args if a.startswith("zone=")), "")
                if zone not in zones:
                    yield lim.where, f"limit_req zone {zone or '(none)'} is not defined by a limit_req_zone", None
                    continue
                per_minute, text = zones[zone]
                rated.append((per_minute if per_minute is not None else float("inf"), text, zone, lim))
            if rated:
                per_minute, text, zone, lim = min(rated, key=lambda r: r[0])
                if per_minute > LOGIN_MAX_PER_MINUTE:
                    yield lim.where, f"login location {path}: zone {zone} allows {text or 'an unknown rate'}, " \
                                     "more than 5r/m", None
            dry = effective_one(loc, "limit_req_dry_run")
            if dry is not None and dry.args[:1] == ("on",):
                yield dry.where, f"limit_req_dry_run on: the limit on login location {path} is not enforced", None


# -- version disclosure ----------------------------------------------------------------------------------

@target_check(
    source=NGINX, id="nginx-server-tokens", layer=3, severity=Severity.MEDIUM,
    title="server_tokens is not off (the NGINX version is disclosed)",
    remediation="Set `server_tokens off;` in the http block (and remove any `server_tokens on|build` below it).",
    verify="curl -sI https://your-domain.com | grep -i '^server:'  # expect 'Server: nginx' without a version "
           "({resource})",
    requires=CONFIG,
)
def nginx_server_tokens(cfg: NginxConfig) -> Iterator[Result]:
    return _report("nginx-server-tokens", cfg, _server_tokens_problems(cfg))


def _server_tokens_problems(cfg: NginxConfig) -> Iterator[Problem]:
    for http, server in _http_servers(cfg):
        for ctx in _server_contexts(server):
            d = effective_one(ctx, "server_tokens")
            if d is None:
                yield http.where, "server_tokens not set (nginx default: on)", None
            elif d.args[:1] != ("off",):
                yield d.where, f"server_tokens {' '.join(d.args)}", None


# -- security headers -----------------------------------------------------------------------------------

def _missing_detail(name: str, ctx: Directive, server: Directive) -> tuple[str, str]:
    block = hd.reporting_block(ctx, server)
    parent = next((lvl for lvl in block.ancestors() if lvl.name in ("server", "location", "if", "http")), None)
    dropped = block is not server and parent is not None and name.lower() in hd.effective_headers(parent)
    detail = f"{name} not set" + (f" (add_header in {block.label} drops the inherited {name})" if dropped else "")
    return block.where, detail


def _header_problems(cfg: NginxConfig, key: str, tls_only: bool = False) -> Iterator[tuple[str, str, hd.Header | None]]:
    """(resource, detail, header sent) per served block that lacks header ``key`` — or sends it (detail "")."""
    for server in cfg.servers():
        if tls_only and not is_tls(server):
            continue
        for ctx in hd.served_contexts(server):
            sent = hd.effective_headers(ctx).get(key)
            if sent is None:
                resource, detail = _missing_detail(hd.SECURITY_HEADERS[key], ctx, server)
                yield resource, detail, None
            else:
                yield sent.directive.where, "", sent


@target_check(
    source=NGINX, id="nginx-hsts", layer=3, severity=Severity.HIGH,
    title="TLS server without Strict-Transport-Security (max-age >= 31536000)",
    remediation="Add `add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains; preload\" "
                "always;` to every TLS server (and to each location that has its own add_header).",
    verify="curl -sI https://your-domain.com | grep -i strict-transport-security  # expect max-age=31536000 "
           "({resource})",
    requires=CONFIG,
)
def nginx_hsts(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for resource, detail, sent in _header_problems(cfg, "strict-transport-security", tls_only=True):
            if sent is None:
                yield resource, detail, None
                continue
            m = re.search(r"max-age\s*=\s*\"?(\d+)", sent.value, re.I)
            if m is None or int(m.group(1)) < HSTS_MIN_AGE:
                age = m.group(1) if m else "(none)"
                yield resource, f"Strict-Transport-Security max-age={age} is below {HSTS_MIN_AGE}", None

    return _report("nginx-hsts", cfg, problems())


@target_check(
    source=NGINX, id="nginx-x-frame-options", layer=3, severity=Severity.MEDIUM,
    title="X-Frame-Options missing or not DENY/SAMEORIGIN",
    remediation="Add `add_header X-Frame-Options \"DENY\" always;` (or SAMEORIGIN) at server level and in every "
                "location that has its own add_header.",
    verify="curl -sI https://your-domain.com | grep -i x-frame-options  # expect DENY ({resource})",
    requires=CONFIG,
)
def nginx_x_frame_options(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for resource, detail, sent in _header_problems(cfg, "x-frame-options"):
            if sent is None:
                yield resource, detail, None
            elif sent.value.strip().strip('"').upper() not in ("DENY", "SAMEORIGIN"):
                yield resource, f"X-Frame-Options {sent.value} is not DENY or SAMEORIGIN", None

    return _report("nginx-x-frame-options", cfg, problems())


@target_check(
    source=NGINX, id="nginx-security-headers", layer=3, severity=Severity.MEDIUM,
    title="Security headers missing (X-Content-Type-Options, CSP, Referrer-Policy, Permissions-Policy, "
          "X-XSS-Protection)",
    remediation="Add the playbook's headers with `always`: X-Content-Type-Options \"nosniff\", "
                "Content-Security-Policy, Referrer-Policy \"strict-origin-when-cross-origin\", Permissions-Policy, "
                "X-XSS-Protection \"1; mode=block\" — at server level and in locations with their own add_header.",
    verify="curl -sI https://your-domain.com | grep -iE 'x-content-type|content-security|referrer-policy|"
           "permissions-policy|x-xss'  # expect all five ({resource})",
    requires=CONFIG,
)
def nginx_security_headers(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for key in OTHER_HEADERS:
            for resource, detail, sent in _header_problems(cfg, key):
                if sent is None:
                    yield resource, detail, HEADER_SEVERITY[key]
                elif key == "x-content-type-options" and sent.value.strip().lower() != "nosniff":
                    yield resource, f"X-Content-Type-Options {sent.value} is not nosniff", HEADER_SEVERITY[key]

    return _report("nginx-security-headers", cfg, problems())


@target_check(
    source=NGINX, id="nginx-header-not-always", layer=3, severity=Severity.LOW,
    title="Security header added without `always` (absent from error responses)",
    remediation="Append `always` to each security add_header so 4xx/5xx responses carry it too.",
    verify="curl -sI https://your-domain.com/does-not-exist | grep -iE 'strict-transport|x-frame'  "
           "# expect the headers on the 404 ({resource})",
    requires=CONFIG,
)
def nginx_header_not_always(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for server in cfg.servers():
            for ctx in hd.served_contexts(server):
                for h in hd.effective_add_headers(ctx):
                    if h.key in hd.SECURITY_HEADERS and not h.always:
                        yield h.directive.where, f"{h.name} is added without always (not sent on 4xx/5xx)", None

    return _report("nginx-header-not-always", cfg, problems())


@target_check(
    source=NGINX, id="nginx-add-header-redefinition", layer=3, severity=Severity.MEDIUM,
    title="add_header in a nested block drops the headers set above it",
    remediation="Repeat the inherited add_header lines in the nested block (or `include` one snippet everywhere), "
                "or on nginx >= 1.29.3 add `add_header_inherit merge;`.",
    verify="nginx -T 2>/dev/null | grep -nE 'add_header|location|server \\{'  # every block with add_header "
           "repeats the security headers ({resource})",
    requires=CONFIG,
)
def nginx_add_header_redefinition(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for block in cfg.walk():
            if block.name not in ("server", "location", "if") or block.block is None or _http_of(block) is None:
                continue
            parent = hd.parent_level(block)
            for field in ("add_header", "add_trailer"):
                own = {h.key for h in hd.own_add_headers(block, field)}
                if parent is None or not own or hd.inherit_mode(block, field) != "on":
                    continue
                above = {h.key: h.name for h in hd.effective_add_headers(parent, field)}
                dropped = sorted(name for key, name in above.items() if key not in own)
                if dropped:
                    sensitive = field == "add_header" and any(n.lower() in REDEFINITION_SENSITIVE for n in dropped)
                    yield block.where, f"{field} in {block.label} drops inherited {', '.join(dropped)}", \
                        None if sensitive else Severity.LOW

    return _report("nginx-add-header-redefinition", cfg, problems())


# -- request size and timeouts ---------------------------------------------------------------------------

@target_check(
    source=NGINX, id="nginx-client-max-body-size", layer=3, severity=Severity.HIGH,
    title="client_max_body_size above 10m (or 0 = unlimited)",
    remediation="Keep `client_max_body_size` at 10m or less; raise it only in the upload location that needs "
                "it, never to 0.",
    verify="nginx -T 2>/dev/null | grep -n client_max_body_size  # expect values <= 10m, never 0 ({resource})",
    requires=CONFIG,
)
def nginx_client_max_body_size(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for d in cfg.find_all("client_max_body_size"):
            size = parse_size(d.args[0]) if d.args else None
            if size == 0:
                yield d.where, "client_max_body_size 0 (unlimited: a slow-POST DoS is trivial)", None
            elif size is not None and size > MAX_BODY:
                yield d.where, f"client_max_body_size {d.args[0]} is above 10m", None

    return _report("nginx-client-max-body-size", cfg, problems())


def _pass_blocks(cfg: NginxConfig, names: tuple[str, ...] = ("proxy_pass",)) -> Iterator[tuple[Directive, Directive]]:
    """(block, pass directive) for every block that proxies to an upstream."""
    for d in cfg.walk():
        if d.name in names and d.parent is not None and _http_of(d) is not None:
            yield d.parent, d


@target_check(
    source=NGINX, id="nginx-proxy-timeouts", layer=3, severity=Severity.MEDIUM,
    title="Proxy timeouts above 30s (nginx's default is 60s)",
    remediation="Set `proxy_connect_timeout 10s; proxy_read_timeout 30s; proxy_send_timeout 30s;` in http (or in "
                "each proxied location).",
    verify="nginx -T 2>/dev/null | grep -nE 'proxy_(connect|read|send)_timeout'  # expect <= 30s ({resource})",
    requires=CONFIG,
)
def nginx_proxy_timeouts(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for block, _ in _pass_blocks(cfg):
            for name in PROXY_TIMEOUTS:
                d = effective_one(block, name)
                if d is None:
                    yield block.where, f"{name} not set (nginx default 60s is above 30s)", None
                else:
                    seconds = parse_time(d.args[0]) if d.args else None
                    if seconds is not None and seconds > PROXY_TIMEOUT_MAX:
                        yield d.where, f"{name} {d.args[0]} is above 30s", None

    return _report("nginx-proxy-timeouts", cfg, problems())


def _hidden(names: Iterable[str], header: str) -> bool:
    header = header.lower()
    return any(n == header or (n.endswith("*") and header.startswith(n[:-1])) for n in names)


@target_check(
    source=NGINX, id="nginx-proxy-header-leak", layer=3, severity=Severity.MEDIUM,
    title="Upstream X-Powered-By/Server headers reach clients",
    remediation="In proxied locations add `proxy_hide_header X-Powered-By; proxy_hide_header Server;` "
                "(fastcgi_hide_header for PHP-FPM), or `more_clear_headers Server X-Powered-By;` with headers-more; "
                "never `proxy_pass_header Server`.",
    verify="curl -sI https://your-domain.com/api/ | grep -iE '^(x-powered-by|server):'  # expect no backend "
           "version ({resource})",
    requires=CONFIG,
)
def nginx_proxy_header_leak(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for block, pass_ in _pass_blocks(cfg, UPSTREAM_PASS):
            prefix = pass_.name.split("_", 1)[0]
            hidden = [d.args[0].lower() for d in effective(block, f"{prefix}_hide_header") if d.args]
            cleared = hd.cleared_headers(block)
            if not _hidden(hidden, "x-powered-by") and not _hidden(cleared, "x-powered-by"):
                yield block.where, f"upstream X-Powered-By passes to clients (no {prefix}_hide_header " \
                                   "X-Powered-By)", None
            for d in effective(block, f"{prefix}_pass_header"):
                if d.args and d.args[0].lower() == "server" and not _hidden(cleared, "server"):
                    yield d.where, f"{prefix}_pass_header Server passes the upstream's Server header", None

    return _report("nginx-proxy-header-leak", cfg, problems())


@target_check(
    source=NGINX, id="nginx-slowloris-timeouts", layer=3, severity=Severity.MEDIUM,
    title="Slow-client timeouts unset or above 10s (slowloris)",
    remediation="Set in http: `client_body_timeout 10s; client_header_timeout 10s; keepalive_timeout 5s 5s; "
                "send_timeout 10s;` (nginx defaults: 60s, 60s, 75s, 60s).",
    verify="nginx -T 2>/dev/null | grep -nE '(client_body|client_header|keepalive|send)_timeout'  "
           "# expect <= 10s ({resource})",
    requires=CONFIG,
)
def nginx_slowloris_timeouts(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for http, server in _http_servers(cfg):
            for ctx in _server_contexts(server):
                for name, default in SLOW_TIMEOUTS.items():
                    if name == "client_header_timeout" and ctx is not server:
                        continue
                    d = effective_one(ctx, name)
                    if d is None:
                        yield http.where, f"{name} not set (nginx default {default}s is above 10s)", None
                        continue
                    seconds = parse_time(d.args[0]) if d.args else None
                    if seconds is not None and seconds > SLOW_TIMEOUT_MAX:
                        yield d.where, f"{name} {d.args[0]} is above 10s", None

    return _report("nginx-slowloris-timeouts", cfg, problems())


# -- TLS -------------------------------------------------------------------------------------------------

def _protocols(cfg: NginxConfig, server: Directive) -> tuple[Directive | None, tuple[str, ...]]:
    d = effective_one(server, "ssl_protocols")
    return (d, d.args) if d is not None else (None, tls.default_protocols(cfg.version))


def _version_text(cfg: NginxConfig) -> str:
    return "nginx " + ".".join(map(str, cfg.version)) if cfg.version else "nginx before 1.23.4 (version unknown)"


@target_check(
    source=NGINX, id="nginx-ssl-protocols", layer=3, severity=Severity.HIGH,
    title="TLS server allows SSLv3/TLSv1/TLSv1.1",
    remediation="Set `ssl_protocols TLSv1.2 TLSv1.3;` in http (nginx before 1.23.4 enables TLSv1 and TLSv1.1 "
                "when it is unset).",
    verify="openssl s_client -connect your-domain.com:443 -tls1_1 </dev/null  # expect a handshake failure "
           "({resource})",
    requires=CONFIG,
)
def nginx_ssl_protocols(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for server in cfg.servers():
            if not is_tls(server):
                continue
            d, protocols = _protocols(cfg, server)
            weak = tls.weak_protocols(protocols)
            if weak and d is not None:
                yield d.where, f"ssl_protocols enables {' '.join(weak)}", None
            elif weak:
                yield server.where, f"ssl_protocols not set: {_version_text(cfg)} defaults to " \
                                    f"{' '.join(protocols)}", None

    return _report("nginx-ssl-protocols", cfg, problems())


@target_check(
    source=NGINX, id="nginx-ssl-ciphers", layer=3, severity=Severity.HIGH,
    title="TLS server enables weak ciphers (NULL, EXPORT, RC4, DES/3DES, MD5, aNULL…)",
    remediation="Use an AEAD-only list, e.g. `ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                "ECDHE-ECDSA-AES256-GCM-SHA384;` (or leave nginx's default HIGH:!aNULL:!MD5).",
    verify="nmap --script ssl-enum-ciphers -p 443 your-domain.com  # expect only grade A suites ({resource})",
    requires=CONFIG,
)
def nginx_ssl_ciphers(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for server in cfg.servers():
            if not is_tls(server) or set(_protocols(cfg, server)[1]) <= {"TLSv1.3"}:
                continue  # ssl_ciphers does not apply to TLSv1.3
            d = effective_one(server, "ssl_ciphers")
            weak = tls.weak_ciphers(d.args[0]) if d is not None and d.args else []
            if d is not None and weak:
                yield d.where, f"ssl_ciphers enables {', '.join(weak)}", None

    return _report("nginx-ssl-ciphers", cfg, problems())


@target_check(
    source=NGINX, id="nginx-ssl-stapling", layer=3, severity=Severity.LOW,
    title="OCSP stapling off on a TLS server",
    remediation="Add `ssl_stapling on; ssl_stapling_verify on;` (with a `resolver`) to TLS servers.",
    verify="openssl s_client -connect your-domain.com:443 -status </dev/null | grep -i 'OCSP Response Status'  "
           "# expect successful ({resource})",
    requires=CONFIG,
)
def nginx_ssl_stapling(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for server in cfg.servers():
            if not is_tls(server):
                continue
            d = effective_one(server, "ssl_stapling")
            if d is None:
                yield server.where, "ssl_stapling not set (nginx default: off)", None
            elif d.args[:1] != ("on",):
                yield d.where, f"ssl_stapling {' '.join(d.args)}", None

    return _report("nginx-ssl-stapling", cfg, problems())


# -- gixy's traps --------------------------------------------------------------------------------------

@target_check(
    source=NGINX, id="nginx-alias-traversal", layer=3, severity=Severity.HIGH,
    title="alias reachable with ../ (location without trailing slash, or a capture that can start with a dot)",
    remediation="End the location with a slash when the alias does (`location /files/ { alias /data/; }`), or "
                "use `root`; in regex locations capture from after a slash.",
    verify="curl -s -o /dev/null -w '%{http_code}\\n' https://your-domain.com/files../etc/passwd  "
           "# expect 404 ({resource})",
    requires=CONFIG,
)
def nginx_alias_traversal(cfg: NginxConfig) -> Iterator[Result]:
    return _report("nginx-alias-traversal", cfg, _alias_problems(cfg))


def _alias_problems(cfg: NginxConfig) -> Iterator[Problem]:
    scope = Scope(cfg)
    for d in cfg.find_all("alias"):
        loc = d.parent if d.parent is not None and d.parent.name == "location" else enclosing(d, "location")
        if loc is None or not d.args:
            continue
        alias = d.args[0]
        mod, path = location_match(loc)
        if mod in ("", "^~"):
            if not path.endswith("/"):
                sev = None if alias.endswith("/") else Severity.MEDIUM
                yield d.where, f"location {path} has no trailing slash but aliases {alias}: {path}../ " \
                               "walks out of it", sev
        elif mod in ("~", "~*"):
            problem = _regex_alias(scope, d, loc, path, mod == "~*")
            if problem:
                yield d.where, problem[0], problem[1]


def _regex_alias(scope: Scope, d: Directive, loc: Directive, pattern: str,
                 icase: bool) -> tuple[str, Severity | None] | None:
    """gixy's rule for captures in an alias: a capture that can start with '.' right after a '/' climbs up."""
    parsed = parse_regex(pattern, icase)
    if parsed is None:
        return None
    for name, _ in scope.script(d.args[0], d):
        if name is None:
            continue
        ref: int | str = int(name) if name.isdigit() else name
        seq = parsed.group(ref)
        number = ref if isinstance(ref, int) else parsed.names.get(ref)
        if seq is None or number is None:
            continue
        offset = group_offset(pattern, number)
        slash_before = rx.must_startswith(seq, "/") or (offset is not None and offset > 0 and
                                                         pattern[offset - 1] == "/")
        before = _alias_text_before(d.args[0], name)
        what = f"alias {d.args[0]} takes ${name} from location {pattern}"
        if not before:
            return f"{what}: the alias starts with a capture", None
        if not slash_before and before.endswith("/"):
            if rx.can_startswith(seq, ".", parsed.dotall):
                if rx.can_contain(seq, "/", parsed.dotall):
                    return f"{what}: the capture can be ../", None
                return f"{what}: the capture can start with ..", Severity.MEDIUM
        elif not before.endswith("/") and not rx.must_startswith(seq, "/"):
            return f"{what}: the capture is glued to {before} without a slash", Severity.MEDIUM
    return None


def _alias_text_before(alias: str, name: str) -> str:
    for m in VAR_RE.finditer(alias):
        if m.group(1).strip("{}").lower() == name:
            return alias[:m.start()]
    return ""


def _reachable_vars(scope: Scope, text: str, at: Directive, depth: int = 0) -> set[str]:
    """Variable names a script uses, following ``set`` definitions (``set $h $http_host``)."""
    names: set[str] = set()
    for m in VAR_RE.finditer(text):
        name = m.group(1).strip("{}").lower()
        names.add(name)
        if depth < 8:
            for block in at.ancestors():
                sets = [d for d in block.find("set") if len(d.args) >= 2 and d.args[0].lower() == "$" + name]
                if sets:
                    names |= _reachable_vars(scope, sets[-1].args[1], sets[-1], depth + 1)
                    break
    return names


def _redirect_target(d: Directive) -> str | None:
    if d.name == "return":
        if len(d.args) >= 2 and d.args[0] in REDIRECT_STATUSES:
            return d.args[1]
        if len(d.args) == 1 and d.args[0].startswith(("http://", "https://", "$scheme")):
            return d.args[0]
    if d.name == "rewrite" and len(d.args) >= 2 and (
            d.args[1].startswith(("http://", "https://", "$scheme")) or d.args[2:3] in (("redirect",), ("permanent",))):
        return d.args[1]
    return None


@target_check(
    source=NGINX, id="nginx-host-spoofing", layer=3, severity=Severity.HIGH,
    title="Upstream Host or redirect built from the client's Host/X-Forwarded-Host",
    remediation="Use `proxy_set_header Host $host;` (validated against server_name), never $http_host, "
                "$http_x_forwarded_host, $arg_* or $cookie_*; build redirects from $host or a fixed name.",
    verify="curl -sI -H 'Host: evil.example' https://your-domain.com/  # expect no evil.example in Location "
           "({resource})",
    requires=CONFIG,
)
def nginx_host_spoofing(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        scope = Scope(cfg)
        for d in cfg.walk():
            if d.name == "proxy_set_header" and len(d.args) >= 2 and d.args[0].lower() == "host":
                spoofed = sorted(n for n in _reachable_vars(scope, d.args[1], d) if SPOOFED_HOST_VARS.match(n))
                if spoofed:
                    yield d.where, f"proxy_set_header Host uses ${spoofed[0]} (client-controlled)", None
                continue
            target = _redirect_target(d)
            if target is None:
                continue
            host_part = re.match(r"^(?:https?://|\$scheme://)?([^/?#]*)", target)
            text = host_part.group(1) if host_part and "://" in target else ""
            spoofed = sorted(n for n in _reachable_vars(scope, text, d) if SPOOFED_HOST_VARS.match(n))
            if spoofed:
                yield d.where, f"redirect host built from ${spoofed[0]} (client-controlled)", Severity.MEDIUM

    return _report("nginx-host-spoofing", cfg, problems())


SPLITTING_DIRECTIVES = ("rewrite", "return", "add_header", "proxy_set_header", "proxy_pass")


@target_check(
    source=NGINX, id="nginx-http-splitting", layer=3, severity=Severity.HIGH,
    title="Header or redirect built from a variable that can carry CR/LF (HTTP response splitting)",
    remediation="Use $request_uri (still encoded) instead of $uri/$document_uri, and capture with classes that "
                "exclude CR and LF (`[^\\r\\n]`, or `[^/]` replaced by `[^/\\s]`).",
    verify="curl -sI 'https://your-domain.com/%0d%0aX-Injected:%20yes' | grep -i x-injected  # expect nothing "
           "({resource})",
    requires=CONFIG,
)
def nginx_http_splitting(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        scope = Scope(cfg)
        for d in cfg.walk():
            if d.name not in SPLITTING_DIRECTIVES:
                continue
            value = splitting_value(d)
            if not value:
                continue
            upstream = d.name.startswith("proxy_")
            for name, var in scope.script(value, d):
                if name is None:
                    continue
                char = "LF" if var.can_contain("\n") else "CR" if not upstream and var.can_contain("\r") else None
                if char:
                    yield d.where, f"{d.name} uses ${name}, which can contain {char}", None

    return _report("nginx-http-splitting", cfg, problems())


ORIGIN_VARS = {"$http_origin": "origin", "$http_referer": "referer"}


@target_check(
    source=NGINX, id="nginx-origin-validation", layer=3, severity=Severity.MEDIUM,
    title="Origin/Referer check that a foreign site passes (unanchored or unescaped regex, reflected Origin); "
          "LOW when no other site passes but the regex is not anchored to scheme and host",
    remediation="Anchor and escape the allow-list regex (`~ ^https://(www\\.)?example\\.com$`; for a Referer "
                "`~ ^https://example\\.com/`: a scheme, no path in an Origin), or map exact origins; never "
                "reflect $http_origin into Access-Control-Allow-Origin unchecked.",
    verify="curl -sI -H 'Origin: https://example.com.evil.example.net' https://your-domain.com/  "
           "# expect no Access-Control-Allow-Origin for it ({resource})",
    requires=CONFIG,
)
def nginx_origin_validation(cfg: NginxConfig) -> Iterator[Result]:
    return _report("nginx-origin-validation", cfg, _origin_problems(cfg))


def _severity_for(header: str) -> Severity | None:
    return Severity.HIGH if header == "origin" else None


def _origin_problems(cfg: NginxConfig) -> Iterator[Problem]:
    for d in cfg.walk():
        if d.name == "if" and len(d.args) >= 3 and d.args[1] in ("~", "~*", "!~", "!~*"):
            subject = d.args[0].lower()
            if subject == "$http_referrer":
                yield d.where, "if tests $http_referrer (misspelt: browsers send Referer), so the check never " \
                               "sees the header", Severity.HIGH
            header = ORIGIN_VARS.get(subject)
            if header:
                yield from _origin_regex(d, d.args[2], d.args[1].endswith("*"), header)
        elif d.name == "map" and d.block is not None and len(d.args) >= 2 and d.args[0].lower() in ORIGIN_VARS:
            header = ORIGIN_VARS[d.args[0].lower()]
            for entry in d.children:
                if entry.name.startswith("~"):
                    icase = entry.name.startswith("~*")
                    yield from _origin_regex(entry, entry.name[2:] if icase else entry.name[1:], icase, header)
    yield from _reflected_origin(cfg)


def _origin_regex(d: Directive, pattern: str, icase: bool, header: str) -> Iterator[Problem]:
    """A bypass from another site (HIGH for Origin, MEDIUM for Referer); else, LOW, a regex that is not
    anchored to scheme and host or that rejects the legitimate site's real header (``origins.weakness``)."""
    proof = bypass(pattern, icase, header)
    if proof:
        yield d.where, f"{header} regex {pattern} accepts {proof}", _severity_for(header)
        return
    weak = weakness(pattern, icase, header)
    if weak:
        yield d.where, f"{header} regex {pattern} {weak}; no other site's {header} passes it, so this is not a " \
                       "bypass", Severity.LOW


def _reflected_origin(cfg: NginxConfig) -> Iterator[Problem]:
    """``Access-Control-Allow-Origin`` that echoes any Origin (directly, via ``set`` or a map's default)."""
    scope = Scope(cfg)
    for d in cfg.find_all("add_header"):
        if len(d.args) < 2 or d.args[0].lower() != "access-control-allow-origin":
            continue
        names = _reachable_vars(scope, d.args[1], d)
        echoed = "http_origin" in names
        for name in names:
            table = scope.tables.get(name)
            if table is not None and table.name == "map":
                echoed = echoed or any(e.name == "default" and e.args[:1] == ("$http_origin",) for e in table.children)
        if echoed:
            yield d.where, "Access-Control-Allow-Origin reflects any $http_origin", Severity.HIGH


@target_check(
    source=NGINX, id="nginx-ssrf", layer=3, severity=Severity.HIGH,
    title="proxy_pass (or fastcgi/uwsgi/scgi/grpc_pass) to an upstream the client chooses (SSRF)",
    remediation="Proxy to fixed upstreams; if the target must vary, map the client's input onto an allow-list "
                "with a safe default, or mark the location `internal`.",
    verify="nginx -T 2>/dev/null | grep -nE '(proxy|fastcgi|uwsgi|scgi|grpc)_pass .*\\$'  # expect no client "
           "input in the host ({resource})",
    requires=CONFIG,
)
def nginx_ssrf(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        scope = Scope(cfg)
        for block, d in _pass_blocks(cfg, UPSTREAM_PASS):
            loc = block if block.name == "location" else enclosing(block, "location")
            if not d.args or (loc is not None and loc.find("internal")):
                continue
            m = SSRF_URI.match(d.args[0])
            if not m:
                continue
            for part in (m.group("scheme"), m.group("host")):
                verdict = _ssrf_part(scope, part or "", d)
                if verdict:
                    yield d.where, f"{d.name} target host comes from ${verdict} (client-controlled)", None
                    break

    return _report("nginx-ssrf", cfg, problems())


SSRF_URI = re.compile(r"(?P<scheme>[^?#/)]+://)?(?P<host>[^?#/)]+)")


def _ssrf_part(scope: Scope, text: str, at: Directive) -> str | None:
    """A variable name that lets the client choose the host; "" when the part ends the host; None: go on."""
    for name, value in scope.script(text, at):
        if value.must_contain("/"):
            return ""
        if name is not None and value.can_contain("."):
            return name
    return None


@target_check(
    source=NGINX, id="nginx-valid-referers", layer=3, severity=Severity.MEDIUM,
    title="valid_referers accepts requests without a Referer (none/blocked)",
    remediation="Drop `none` and `blocked` from valid_referers where the referer check protects something.",
    verify="curl -s -o /dev/null -w '%{http_code}\\n' https://your-domain.com/protected/  # expect 403 without a "
           "Referer ({resource})",
    requires=CONFIG,
)
def nginx_valid_referers(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        for d in cfg.find_all("valid_referers"):
            loose = [a for a in d.args if a.lower() in ("none", "blocked")]
            if loose:
                yield d.where, f"valid_referers accepts {' and '.join(loose)} (no or stripped Referer)", None

    return _report("nginx-valid-referers", cfg, problems())


# -- what nginx says about itself ------------------------------------------------------------------------

@target_check(
    source=NGINX, id="nginx-config-test", layer=3, severity=Severity.MEDIUM,
    title="nginx -t fails (the next reload will not apply this configuration)",
    remediation="Fix the error `nginx -t` reports, then reload.",
    verify="sudo nginx -t  # expect 'test is successful' ({resource})",
    requires=("syntax_test",),
)
def nginx_config_test(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        test = cfg.syntax_test
        if test is None or test.exit_code == 0:
            return
        lines = [ln.strip() for ln in test.output.splitlines() if "[emerg]" in ln or "failed" in ln]
        error = lines[0] if lines else (test.output.strip().splitlines() or ["nginx -t failed"])[-1]
        error = re.sub(r"^(nginx: |\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )", "", error)  # stable: no time, no pid
        error = re.sub(r"(\[\w+\]) \d+#\d+: ", r"\1 ", error)
        where = re.search(r" in (/\S+?):(\d+)\s*$", error)
        resource = f"{where.group(1)}:{where.group(2)}" if where else f"{cfg.main}:0"
        yield resource, error, None

    return _report("nginx-config-test", cfg, problems())


def _config_context(cfg: NginxConfig, url: str) -> Directive | None:
    """The server and location nginx would pick for ``url`` (port, server_name, then location rules)."""
    if "config" in cfg.missing:
        return None
    parts = urlsplit(url)
    port, host = url_port(url), (parts.hostname or "").lower()
    candidates = [s for s in cfg.servers() if port in listen_ports(s)]
    if not candidates:
        return None

    def named(s: Directive) -> bool:
        names = [n.lower() for d in s.find("server_name") for n in d.args]
        return any(n == host or (n.startswith("*.") and host.endswith(n[1:])) or (n.startswith(".") and
                   (host == n[1:] or host.endswith(n))) for n in names)

    def default(s: Directive) -> bool:
        return any("default_server" in d.args or "default" in d.args for d in s.find("listen"))

    server = next((s for s in candidates if named(s)), None) or next((s for s in candidates if default(s)),
                                                                     candidates[0])
    return _match_location(server, parts.path or "/")


def _match_location(block: Directive, path: str) -> Directive:
    locs = block.find("location")
    exact = next((loc for loc in locs if location_match(loc) == ("=", path)), None)
    if exact is not None:
        return exact
    prefixes = [(p, loc, mod) for loc in locs for mod, p in [location_match(loc)] if mod in ("", "^~")
                and path.startswith(p)]
    best = max(prefixes, key=lambda t: len(t[0]), default=None)
    if best is not None and best[2] == "^~":
        return _match_location(best[1], path)
    for loc in locs:
        mod, pattern = location_match(loc)
        if mod in ("~", "~*"):
            parsed = parse_regex(pattern, mod == "~*")
            if parsed is not None and parsed.compiled().search(path):
                return loc
    return _match_location(best[1], path) if best is not None else block


@target_check(
    source=NGINX, id="nginx-live-response", layer=3, severity=Severity.MEDIUM,
    title="The live response leaks versions or lacks security headers (verified with curl -I)",
    remediation="Fix the configuration the finding names (server_tokens off, proxy_hide_header, add_header … "
                "always), reload nginx, and re-probe.",
    verify="curl -sI {resource}  # expect the seven security headers and a Server header without a version",
    requires=("probe",),
)
def nginx_live_response(cfg: NginxConfig) -> Iterator[Result]:
    def problems() -> Iterator[Problem]:
        probe = cfg.probe
        if probe is None:
            return
        url = probe.url
        ctx = _config_context(cfg, url)
        configured = hd.effective_headers(ctx) if ctx is not None else {}
        for value in probe.values("server"):
            if re.search(r"/\d", value):
                tokens = effective_one(ctx, "server_tokens") if ctx is not None else None
                off = tokens is not None and tokens.args[:1] == ("off",)
                said = f" although {tokens.where} sets server_tokens off" if tokens is not None and off else ""
                yield url, f"Server header discloses the version: {value}{said}", None
        for value in probe.values("x-powered-by"):
            yield url, f"X-Powered-By header discloses {value}", None
        present = {k.lower() for k, _ in probe.headers}
        for key, name in hd.SECURITY_HEADERS.items():
            if key == "strict-transport-security" and urlsplit(url).scheme != "https":
                continue
            if key in present:
                continue
            sent = configured.get(key)
            detail = (f"{name} is configured at {sent.directive.where} but missing from the live response "
                      f"(HTTP {probe.status})") if sent else f"{name} missing from the live response"
            yield url, detail, HEADER_SEVERITY[key]

    return _report("nginx-live-response", cfg, problems())
