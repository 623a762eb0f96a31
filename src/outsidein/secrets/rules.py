"""Secret detection rules: regular expressions for known token formats, plus entropy for generic assignments.

Rules run on bytes (a git history is read as one byte stream, and most lines are never decoded). A whole block
(a file, or several megabytes of ``git log -p`` output) first meets the pre-filter (``hit_offsets``); only the
lines it points at are cut out and meet the rules.

The pre-filter is a handful of regular expressions, each beginning with ONE literal byte that is rare in source
(``k`` of token/key, ``w`` of password/pwd, ``j`` of ``eyJ``, ``x`` of ``xox``, ``A`` of ``AKIA`` …): ``re``
then skips from one occurrence of that byte to the next in C at memory speed, where a single alternation of all
the words (``akia|…|token|key``) is tried at every offset and runs at ~10 MB/s. The case-insensitive passes run
over the lower-cased block (``bytes.lower``, same offsets). Together they accept every line that any rule can
match (tests/test_checks_secrets_scan.py compares them with every rule run on every line), and a
secret-named word that is not followed by an assignment is not a hit at all.

Decisions:

- **Known formats** (AWS access key ids, AWS secret keys next to an AWS-ish name, GitHub and GitLab tokens,
  Slack tokens and webhooks, Stripe live keys, private-key blocks, JWTs, database URLs with a password) are
  reported whatever the file, test fixtures included: a real token in a fixture is still a real token.
- **Generic assignments** (a secret-named key — password, secret, token, api_key, credential … — assigned a
  literal) are reported only when the value looks random: at least 8 characters, two character classes and a
  Shannon entropy of at least 3.0 bits per character; not in lockfiles (integrity hashes), and not under test,
  fixture, example or mock directories, where such assignments are overwhelmingly made up.
- **Allowlisted** everywhere: AWS documentation keys (``…EXAMPLE``), the jwt.io sample token, placeholders
  (``changeme``, ``${VAR}``, ``$VAR``, ``<password>``, ``{{ var }}``, ``xxxx``, ``****``, ``your-…``, ``dummy``,
  ``fake``, ``placeholder``, ``redacted`` …), values that reference code or the environment
  (``os.environ[...]``, ``settings.X``), and lines marked ``gitleaks:allow``, ``pragma: allowlist secret`` or
  ``outsidein:allow``.
- A finding carries the value's masked form (``outsidein.redact.mask``) and a fingerprint (sha256 of the value,
  8 hex digits, what the masked form shows) so the same secret is recognised in the tree and in history
  without ever being stored.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from outsidein.redact import mask

SECRET_NAME = (rb"(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|"
               rb"private[_-]?key|client[_-]?secret|credential|signing[_-]?key|encryption[_-]?key)")
# Names that carry a secret-ish word but hold no secret (ids, paths, lengths, types, references).
_NAME_NOT_SECRET = re.compile(
    r"(?i)[_.-]?(?:path|file|dir|url|uri|name|type|len|length|size|count|endpoint|header|field|env|var|prefix|"
    r"arn|ref|expiry|expires|ttl|format|algorithm|policy|label|min|max|regex|pattern|hash|mode|input|hint|"
    r"message|msg|error|text|title|placeholder|sock|keyid|key_id|timeout)$|"
    r"^(?:no|skip|use|has|is|show|require|reset|forgot|confirm|change|validate|check)[_.-]|^(?:old)?pwd$|"
    r"tokeniz|keyboard|keystroke|[_.-]ids?$|[a-z]Ids?$")

_ASSIGN = rb"[\w.-]*[\"']?[^\S\n]*[:=]"  # what follows a secret-named word in an assignment (see generic-secret)
# The pre-filter: each pattern starts with one literal byte (see the module docstring). A line is a hit when one
# of them matches in it; every rule below needs one of these to match, so no line that a rule accepts is skipped.
# SECRET_NAME's "…key" names: api_key, accesskey, auth-key … (one fixed-width look-behind each, after "key")
_KEY_NAMES = b"|".join(b"(?<=%s%skey)" % (word, sep) for word in (b"api", b"access", b"auth", b"private", b"signing",
                                                                  b"encryption") for sep in (b"", b"_", b"-"))
_FOLDED_PASSES: tuple[re.Pattern[bytes], ...] = tuple(re.compile(p) for p in (  # over the lower-cased block
    rb"k(?:ey(?:" + _KEY_NAMES + rb")" + _ASSIGN + rb"|(?<=tok)en" + _ASSIGN +  # api_key…=, token…=
    rb"|(?<=hook)s\.slack\.com|_live_|(?<=private k)ey)",  # Slack webhooks, Stripe (sk|rk)_live_, private keys
    rb"w(?:(?<=passw)" + _ASSIGN + rb"|(?<=pw)d" + _ASSIGN + rb"|(?<=aw)s[\w.-]{0,20}?sk)",  # passw…=, pwd=, aws…sk
    rb"cre(?:(?<=secre)t|dential)" + _ASSIGN,  # secret…=, credential…=
    rb"j(?<=eyj)",  # JWT
    rb"x(?<=\bx)ox[abprs]-",  # Slack tokens
    rb"g(?:h[pousr]_|ithub_pat_|l(?:pat|dt|rt|ptt)-|(?<=\bsg)\.[\w-]{22}\.)",  # GitHub, GitLab, SendGrid
))
_EXACT_PASSES: tuple[re.Pattern[bytes], ...] = (  # over the block as it is
    re.compile(rb"A(?:KIA|SIA|BIA|CCA)[0-9A-Z]{16}"),  # AWS access key ids
    re.compile(rb"://[^\s:/@]*:[^\s@/]+@"),  # URLs with a password
)


def hit_offsets(block: bytes) -> list[int]:
    """Sorted offsets in ``block`` where a secret may start; the lines holding them are the only ones to scan."""
    folded = block.lower()
    found = [m.start() for rx in _FOLDED_PASSES for m in rx.finditer(folded)]
    found += [m.start() for rx in _EXACT_PASSES for m in rx.finditer(block)]
    found.sort()
    return found


_PLACEHOLDER = re.compile(
    r"(?i)^(?:x{3,}|\*{3,}|\.{3,}|-+|_+|0+|1234.*|changeme|change[_-]?me|change[_-]?this|redacted|example|"
    r"placeholder|dummy|fake|test|testing|sample|secret|password|passwd|pass|token|null|none|nil|undefined|"
    r"true|false|todo|tbd|empty|default|required|optional|string|value|"
    r"<[^>]*>|\$\{[^}]*\}?|\$\(.*\)?|\$[A-Za-z_][\w]*|\{\{.*\}\}?|\{[\w.]*\}|%\(?\w*\)?s|%s|@\w+@|#\{.*\})$"
)
_PLACEHOLDER_PARTS = re.compile(r"(?i)example|xxxx|\*\*\*\*|your[_-]|dummy|fake|placeholder|changeme|redacted|"
                                r"sample|insert[_-]|replace[_-]?me|<[a-z_-]+>|\$\{|\{\{|0000000|1234567")
_REFERENCE = re.compile(r"^(?:[A-Za-z_][A-Za-z_]*\.)+[A-Za-z_][A-Za-z_]*(?:\(|\[|$)|^[A-Za-z_]\w*\(|^(?:os|process|env|"
                        r"ENV|System|config|settings|self|this|params|args|kwargs|request|ctx|vault|secrets?)\b[.\[]")
_INLINE_ALLOW = re.compile(rb"gitleaks:allow|pragma: allowlist secret|outsidein:allow|nosec\b|noqa: ?S105")
JWT_IO_SAMPLE = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0I"
                 "joxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
_LOCKFILES = re.compile(r"(?:^|/)(?:package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|"
                        r"Pipfile\.lock|Cargo\.lock|go\.sum|composer\.lock|Gemfile\.lock|uv\.lock|pdm\.lock|"
                        r"[\w.-]+\.lock|[\w.-]+\.sum)$")
_TEST_PATH = re.compile(r"(?i)(?:^|/)(?:tests?|spec|specs|__tests__|fixtures?|testdata|test_data|mocks?|examples?|"
                        r"samples?|docs?)/|(?:^|/)test_[^/]*$|_test\.\w+$|\.test\.\w+$|\.spec\.\w+$")


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: re.Pattern[bytes]
    needs: tuple[bytes, ...]  # the rule can only match a line holding one of these (a cheap test before the regex)
    folded: bool = False  # ``needs`` is looked for in the lower-cased line
    group: int = 1  # the capture group holding the secret value
    generic: bool = False  # entropy-gated, skipped in lockfiles and test paths


RULES: tuple[Rule, ...] = (
    Rule("aws-access-key-id", re.compile(rb"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b"),
         (b"AKIA", b"ASIA", b"ABIA", b"ACCA")),
    Rule("aws-secret-access-key", re.compile(
        rb"(?i)aws[\w.-]{0,20}?(?:secret|sk)[\w.-]{0,20}?[\"']?\s*(?:[:=]|:=|=>)\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
         (b"aws",), folded=True),
    Rule("github-token", re.compile(rb"\b((?:gh[pousr]_[A-Za-z0-9]{36,255})|github_pat_[A-Za-z0-9_]{60,255})\b"),
         (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_")),
    Rule("gitlab-token", re.compile(rb"\b(gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_-]{20,})\b"),
         (b"glpat-", b"gldt-", b"glrt-", b"glptt-")),
    Rule("slack-token", re.compile(rb"\b(xox[abprs]-[A-Za-z0-9-]{10,})\b"), (b"xox",)),
    Rule("slack-webhook", re.compile(rb"(https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,})"),
         (b"hooks.slack.com",)),
    Rule("sendgrid-api-key", re.compile(rb"\b(SG\.[\w-]{22}\.[\w-]{43})\b"), (b"SG.",)),
    Rule("stripe-live-key", re.compile(rb"\b((?:sk|rk)_live_[A-Za-z0-9]{20,})\b"), (b"_live_",)),
    Rule("private-key", re.compile(
        rb"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"), (b"PRIVATE KEY",)),
    Rule("jwt", re.compile(rb"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,})"), (b"eyJ",)),
    Rule("database-url-password", re.compile(
        rb"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|"
        rb"postgresql\+\w+|mysql\+\w+)://[^\s:/@'\"]*:([^\s@/'\"]{3,})@[\w.-]+"), (b"://",)),
    Rule("generic-secret", re.compile(
        rb"(?i)([\w.-]*" + SECRET_NAME + rb"[\w.-]*)[\"']?\s*(?:[:=]|:=|=>|\s=\s)\s*(?:[\"']([^\s\"'`]{8,200})[\"']|"
        rb"([^\s\"'`,;#)}\]]{8,200}))"),
         (b"passw", b"pwd", b"secret", b"token", b"key", b"credential"), folded=True, group=2, generic=True),
)


_GATES = tuple(re.compile(b"|".join(re.escape(needed) for needed in rule.needs)) for rule in RULES)
_GENERIC = RULES[-1].pattern
_GENERIC_AT_RUN_START = re.compile(rb"(?<![\w.-])" + _GENERIC.pattern.removeprefix(b"(?i)"), re.IGNORECASE)
_NAME_CHAR = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _generic_matches(line: bytes) -> Iterator[re.Match[bytes]]:
    """``generic-secret``'s matches, the same as its ``finditer`` gives, about four times faster.

    The pattern opens with ``[\\w.-]*``, so ``finditer`` tries it at every offset of every word. A match can
    only start where a run of name characters starts (a match from inside a run is one from the run's start), so
    the pattern is tried there only, except right after a match whose value stopped inside a run (at 200
    characters): from there the full pattern is used, as ``finditer`` would.
    """
    pos, size = 0, len(line)
    while pos <= size:
        inside = 0 < pos < size and line[pos - 1] in _NAME_CHAR and line[pos] in _NAME_CHAR
        match = (_GENERIC if inside else _GENERIC_AT_RUN_START).search(line, pos)
        if match is None:
            return
        yield match
        pos = match.end()


@dataclass(frozen=True)
class Candidate:
    """A secret found on one line: which rule, its masked value and its fingerprint. Never the value itself."""

    rule: str
    masked: str
    fingerprint: str
    column: int


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]  # the same hash the masked form shows


def placeholder(value: str) -> bool:
    stripped = value.strip("\"'`;,")
    return bool(_PLACEHOLDER.match(stripped) or _PLACEHOLDER_PARTS.search(stripped))


def _classes(value: str) -> int:
    return sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value),
                any(not c.isalnum() for c in value)))


def _generic_ok(name: str, value: str) -> bool:
    if _NAME_NOT_SECRET.search(name) or _REFERENCE.match(value):
        return False
    if len(value) < 8 or _classes(value) < 2 or entropy(value) < 3.0:
        return False
    return not re.fullmatch(r"[0-9a-f]{32,}|[0-9A-F]{32,}", value) or "key" in name.lower() or "secret" in name.lower()


@functools.lru_cache(maxsize=4096)
def relaxed_path(path: str) -> bool:
    """Lockfiles and test, fixture, example or doc paths: generic assignments are not reported there."""
    return bool(path) and bool(_LOCKFILES.search(path) or _TEST_PATH.search(path))


def scan_line(line: bytes, path: str = "") -> list[Candidate]:
    """The secrets on one line (bytes, without its newline); ``path`` decides lockfile and test allowlists."""
    if _INLINE_ALLOW.search(line):
        return []
    found: list[Candidate] = []
    seen: set[str] = set()
    folded = line.lower()
    for rule, gate in zip(RULES, _GATES, strict=True):
        if rule.generic and (found or relaxed_path(path)):
            continue
        if not gate.search(folded if rule.folded else line):
            continue
        for match in (_generic_matches(line) if rule.generic else rule.pattern.finditer(line)):
            raw = match.group(rule.group) if not rule.generic else (match.group(2) or match.group(3))
            if raw is None:
                continue
            value = raw.decode("utf-8", errors="replace")
            if rule.id != "private-key" and placeholder(value):  # a key is named by its body: see the caller
                continue
            if rule.id == "jwt" and value == JWT_IO_SAMPLE:
                continue
            if rule.generic and not _generic_ok(match.group(1).decode("utf-8", errors="replace"), value):
                continue
            if rule.id == "aws-secret-access-key" and (entropy(value) < 3.5 or _classes(value) < 3):
                continue
            digest = fingerprint(value)
            if digest in seen:
                continue
            seen.add(digest)
            found.append(Candidate(rule.id, mask(value), digest, match.start(rule.group) + 1))
    return found


def private_key_body(line: bytes) -> Candidate | None:
    """The first body line after a private-key header names the key: its fingerprint identifies it."""
    value = line.strip().decode("utf-8", errors="replace")
    if len(value) < 16 or placeholder(value) or not re.fullmatch(r"[A-Za-z0-9+/=:, -]+", value):
        return None
    return Candidate("private-key", mask(value), fingerprint(value), 1)


_SECRET_NAME_TEXT = re.compile(SECRET_NAME.decode(), re.IGNORECASE)


def secret_name(name: str) -> bool:
    """A variable or key named like a secret (``DB_PASSWORD``, ``STRIPE_API_KEY``), not like its id or path."""
    return bool(_SECRET_NAME_TEXT.search(name)) and not _NAME_NOT_SECRET.search(name)
