"""Mask secrets in collected text before it is stored: a prefix and a hash, never the value.

Provisioning files (cloud-init user-data, Ansible variables, shell) and configuration files often
carry passwords and tokens. The audit needs their structure and line numbers, not the secrets, so
every value that looks like one is replaced in place, on the same line.
"""

from __future__ import annotations

import hashlib
import re

SECRET_KEY = r"[\w.-]*(?:passw(?:or)?d|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|" \
             r"credential|auth[_-]?key|client[_-]?secret)[\w.-]*"
_VALUE = r"""(?P<quote>["']?)(?P<value>[^\s"'#,;}]{3,})(?P=quote)"""
# key: value / key = value / key=value / "key": "value" / export KEY=value
_ASSIGNMENT = re.compile(rf"""(?P<key>["']?{SECRET_KEY}["']?\s*[:=]\s*){_VALUE}""", re.IGNORECASE)
# --password value / -secret value (a flag, not a word such as `detect-secrets scan`)
_FLAG = re.compile(rf"""(?P<key>(?<![\w-])--?{SECRET_KEY}\s+){_VALUE}""", re.IGNORECASE)
# an NGINX-style directive: `secure_link_secret value;`
_DIRECTIVE = re.compile(rf"""(?P<key>^[ \t]*{SECRET_KEY}[ \t]+){_VALUE}(?=[ \t]*;)""", re.IGNORECASE | re.MULTILINE)
_AUTH_HEADER = re.compile(r"(?P<key>Authorization\s*[:=]?\s*[\"']?(?:Basic|Bearer|Token)\s+)(?P<value>[\w.~+/=-]{8,})",
                          re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<key>[a-z][\w+.-]*://[^\s:/@]+:)(?P<value>[^\s@/]{3,})(?=@)", re.IGNORECASE)
_KNOWN_TOKENS = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bxox[abposr]-[A-Za-z0-9-]{10,}\b|"
    r"\bsk_live_[A-Za-z0-9]{16,}\b|\bglpat-[A-Za-z0-9_-]{20,}\b"
)
_PEM = re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)(.*?)(-----END [A-Z ]*PRIVATE KEY-----)", re.DOTALL)
_PLACEHOLDER = re.compile(r"^(?:/[\w./-]*|\{\{.*|\$[{(].*|\$[\w.]+|<[^>]+>|\*+|x+|changeme|redacted|none|null|"
                          r"true|false|yes|no|on|off|\d{1,5})$", re.IGNORECASE)


def mask(value: str) -> str:
    """``abcd…[sha256:1a2b3c4d]``: enough to recognise the same secret again, not to use it.

    The prefix is at most a quarter of the value (4 characters from 16 on, none under 12), so a short
    password is never shown whole or nearly whole."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    shown = 0 if len(value) < 12 else min(4, len(value) // 4)
    return f"{value[:shown]}…[sha256:{digest}]"


def _mask_group(match: re.Match[str]) -> str:
    value = match.group("value")
    if _PLACEHOLDER.match(value):
        return match.group(0)
    quote = match.groupdict().get("quote") or ""
    return f"{match.group('key')}{quote}{mask(value)}{quote}"


# Cheap tests that let most lines skip the patterns above (whose key part would be tried at every position).
_KEY_HINT = re.compile(r"pass|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth",
                       re.IGNORECASE)


def _redact_line(line: str) -> str:
    if "://" in line:
        line = _URL_PASSWORD.sub(_mask_group, line)
    if _KEY_HINT.search(line):
        line = _AUTH_HEADER.sub(_mask_group, line)
        line = _ASSIGNMENT.sub(_mask_group, line)
        line = _FLAG.sub(_mask_group, line)
        line = _DIRECTIVE.sub(_mask_group, line)
    return line


def redact_text(text: str) -> str:
    """The text with every secret-looking value masked; line numbers are kept."""
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(lambda m: m.group(1) + "\n".join("[masked]" if line.strip() else line
                                                          for line in m.group(2).split("\n")) + m.group(3), text)
    if _KEY_HINT.search(text) or "://" in text:
        text = "\n".join(_redact_line(line) for line in text.split("\n"))
    return _KNOWN_TOKENS.sub(lambda m: mask(m.group(0)), text)
