"""Pure readers for AWS IAM policy documents (identity, trust and S3 bucket policies).

No boto3, no I/O: every function takes an already-fetched document (dict, JSON string, or the
URL-encoded JSON string IAM's raw API returns) and answers one audit question about it.

Conventions shared by the module:

* Action matching is case-insensitive, resource matching case-sensitive; both support ``*`` and ``?``.
* A conditional statement (one with a ``Condition`` block) is never assumed to restrict access:
  an audit asks "could this be allowed?", so a conditional Deny never neutralises an Allow, and a
  conditional Allow is reported (flagged ``conditional``) rather than dropped.
* Principals are ignored by :func:`evaluate` and :func:`broad_grants`, which target identity policies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, unquote_plus

__all__ = [
    "ESCALATION_ACTIONS",
    "ESCALATION_SERVICES",
    "BroadGrant",
    "PolicyParseError",
    "PublicGrant",
    "Statement",
    "TrustGrant",
    "action_matches",
    "broad_grants",
    "evaluate",
    "parse_document",
    "public_grants",
    "resource_matches",
    "statement_applies",
    "trust_grants",
]

PolicyInput = Mapping[str, Any] | str | None

# Services whose own API changes who-can-do-what, so a wildcard over them lets the holder grant itself
# more: iam (attach/put policies, access keys, PassRole, trust edits), sts (assume any role whose trust
# policy delegates to this account), organizations (SCPs, member-account admin roles), sso and
# identitystore (permission sets, assignments, group membership). Deliberately excluded: kms (key-policy
# edits widen *data* access, not identity) and compute services such as lambda/ec2/ssm, whose escalation
# paths pivot through pre-existing roles that a single policy document cannot show.
ESCALATION_SERVICES: frozenset[str] = frozenset({"iam", "sts", "organizations", "sso", "identitystore"})

# Concrete actions known to allow privilege escalation; a prefix wildcard such as "iam:Put*" is
# reported by broad_grants only if it matches one of these.
ESCALATION_ACTIONS: frozenset[str] = frozenset(
    {
        "iam:AddUserToGroup",
        "iam:AttachGroupPolicy",
        "iam:AttachRolePolicy",
        "iam:AttachUserPolicy",
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:CreatePolicyVersion",
        "iam:DeleteRolePermissionsBoundary",
        "iam:DeleteUserPermissionsBoundary",
        "iam:PassRole",
        "iam:PutGroupPolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:PutRolePolicy",
        "iam:PutUserPermissionsBoundary",
        "iam:PutUserPolicy",
        "iam:SetDefaultPolicyVersion",
        "iam:UpdateAssumeRolePolicy",
        "iam:UpdateLoginProfile",
        "identitystore:CreateGroupMembership",
        "organizations:AttachPolicy",
        "organizations:DetachPolicy",
        "sso:AttachManagedPolicyToPermissionSet",
        "sso:CreateAccountAssignment",
        "sso:PutInlinePolicyToPermissionSet",
        "sts:AssumeRole",
    }
)

_TRUST_ACTIONS = (
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRoleWithSAML",
    "sts:TagSession",
)

_TRUST_RESTRICTING_KEYS = frozenset(
    {
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "sts:externalid",
        "aws:sourceip",
        "aws:sourcevpc",
        "aws:sourcevpce",
    }
)
_TRUST_RESTRICTING_SUFFIXES = (":sub", ":aud")

_PUBLIC_RESTRICTING_KEYS = frozenset(
    {
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:userid",
        "aws:username",
    }
)

# Operators that only pass when the key is present and matches: these narrow who gets through.
_POSITIVE_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "ipaddress"}
)
# Their negations: in a Deny, "deny unless the key matches" (true also when the key is missing).
_NEGATED_OPERATORS = frozenset(
    {
        "stringnotequals",
        "stringnotequalsignorecase",
        "stringnotlike",
        "arnnotequals",
        "arnnotlike",
        "notipaddress",
    }
)
_TRIVIAL_VALUES = frozenset({"*", "0.0.0.0/0", "::/0"})

_ACCOUNT_RE = re.compile(r"\d{12}")
_ALL_ACTIONS_RE = re.compile(r"\*+(?::\*+)?")
_ALL_RESOURCES_RE = re.compile(r"\*+|arn:(?:\*+|aws[a-z-]*)(?::\*+){0,4}")
# Every resource of one service (any region/account), e.g. arn:aws:s3:::* or arn:aws:iam::*:*
_SERVICE_WIDE_RE = re.compile(r"arn:(?:\*+|aws[a-z-]*):([A-Za-z0-9-]+):\**:\**:\*+")


class PolicyParseError(ValueError):
    """Raised when a policy document is not a well-formed IAM policy."""


@dataclass(frozen=True)
class Statement:
    """One normalised policy statement; every multi-valued element is a tuple of strings."""

    sid: str | None
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    principals: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    not_principals: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    conditions: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict, hash=False)

    @property
    def conditional(self) -> bool:
        """True if the statement carries a Condition block."""
        return bool(self.conditions)

    @property
    def anyone(self) -> bool:
        """True if the statement names every principal: ``"*"``, ``{"AWS": "*"}`` or a NotPrincipal."""
        if self.not_principals:
            return True
        return "*" in self.principals or "*" in self.principals.get("AWS", ())


# --------------------------------------------------------------------------- parsing


def _load(doc: PolicyInput) -> Mapping[str, Any] | None:
    if doc is None:
        return None
    if isinstance(doc, Mapping):
        return doc
    if not isinstance(doc, str):
        raise PolicyParseError(f"policy document must be a dict or string, got {type(doc).__name__}")
    text = doc.strip()
    if not text:
        return None
    candidates = [text]
    if "%" in text or "+" in text:
        candidates += [unquote(text), unquote_plus(text)]
    for candidate in candidates:
        try:
            loaded = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(loaded, dict):
            raise PolicyParseError(f"policy document must be a JSON object, got {type(loaded).__name__}")
        return loaded
    raise PolicyParseError(f"policy document is neither JSON nor URL-encoded JSON: {text[:60]!r}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyParseError(f"{where} must be a string or a list of strings, got {value!r}")


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PolicyParseError(f"{where} values must be strings, numbers or booleans, got {value!r}")


def _principals(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, Mapping) or not value:
        raise PolicyParseError(f'{where} must be "*" or a non-empty object, got {value!r}')
    return {str(kind): _strings(ids, f"{where}.{kind}") for kind, ids in value.items()}


def _conditions(value: Any, where: str) -> dict[str, dict[str, tuple[str, ...]]]:
    if not isinstance(value, Mapping):
        raise PolicyParseError(f"{where} must be an object, got {value!r}")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for op, block in value.items():
        if not isinstance(block, Mapping):
            raise PolicyParseError(f"{where}.{op} must be an object, got {block!r}")
        keys: dict[str, tuple[str, ...]] = {}
        for key, raw in block.items():
            items = raw if isinstance(raw, list) else [raw]
            keys[str(key)] = tuple(_scalar(v, f"{where}.{op}.{key}") for v in items)
        out[str(op)] = keys
    return out


def _statement(raw: Any, where: str) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyParseError(f"{where} must be an object, got {raw!r}")
    effect = raw.get("Effect")
    if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
        raise PolicyParseError(f"{where}.Effect must be 'Allow' or 'Deny', got {effect!r}")
    for a, b in (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")):
        if a in raw and b in raw:
            raise PolicyParseError(f"{where} has both {a} and {b}")
    sid = raw.get("Sid")

    def strings(key: str) -> tuple[str, ...]:
        return _strings(raw[key], f"{where}.{key}") if key in raw else ()

    def principals(key: str) -> dict[str, tuple[str, ...]]:
        return _principals(raw[key], f"{where}.{key}") if key in raw else {}

    return Statement(
        sid=None if sid is None else str(sid),
        effect=effect.capitalize(),
        actions=strings("Action"),
        not_actions=strings("NotAction"),
        resources=strings("Resource"),
        not_resources=strings("NotResource"),
        principals=principals("Principal"),
        not_principals=principals("NotPrincipal"),
        conditions=_conditions(raw["Condition"], f"{where}.Condition") if "Condition" in raw else {},
    )


def parse_document(doc: PolicyInput) -> list[Statement]:
    """Parse a policy (dict, JSON string or URL-encoded JSON string) into statements.

    ``None`` or an empty string means "no policy" and yields ``[]``. Anything else that is not a
    policy object with a ``Statement`` (object or list of objects) raises :class:`PolicyParseError`.
    """
    loaded = _load(doc)
    if loaded is None:
        return []
    if "Statement" not in loaded:
        raise PolicyParseError("policy document has no 'Statement' element")
    raw = loaded["Statement"]
    if isinstance(raw, Mapping):
        return [_statement(raw, "Statement")]
    if isinstance(raw, list):
        return [_statement(item, f"Statement[{i}]") for i, item in enumerate(raw)]
    raise PolicyParseError(f"'Statement' must be an object or a list, got {type(raw).__name__}")


# --------------------------------------------------------------------------- matching


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, ``*`` = any run of characters, ``?`` = one character."""
    return _glob(pattern, True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """IAM resource matching: case-sensitive wildcards, applied per ARN segment when both are ARNs.

    As in IAM, the first five colon-separated ARN segments are matched separately (a ``*`` in the
    region segment cannot swallow the account); the sixth, resource segment may contain colons.
    """
    p_parts, r_parts = pattern.split(":", 5), resource.split(":", 5)
    if len(p_parts) == 6 == len(r_parts) and p_parts[0] == "arn" == r_parts[0]:
        return all(_glob(p, False).fullmatch(r) is not None for p, r in zip(p_parts, r_parts, strict=True))
    return _glob(pattern, False).fullmatch(resource) is not None


def _has_wildcard(s: str) -> bool:
    return "*" in s or "?" in s


def _covers(pattern: str, target: str, *, ignore_case: bool) -> bool:
    """Sound (not complete) test that glob ``pattern`` matches everything glob ``target`` matches."""
    if set(pattern) == {"*"}:
        return True
    if not _has_wildcard(target):
        return _glob(pattern, ignore_case).fullmatch(target) is not None
    if set(target) == {"*"} or not pattern.endswith("*"):
        return pattern.lower() == target.lower() if ignore_case else pattern == target
    head = _glob(pattern.rstrip("*"), ignore_case)
    literal = target[: min(i for i, c in enumerate(target) if c in "*?")]
    return any(head.fullmatch(literal[:i]) for i in range(len(literal) + 1))


def _action_covers(pattern: str, target: str) -> bool:
    # Every action has the form "service:Name", so "*:*" is as good as "*".
    pattern = "*" if _ALL_ACTIONS_RE.fullmatch(pattern) else pattern
    target = "*" if _ALL_ACTIONS_RE.fullmatch(target) else target
    return _covers(pattern, target, ignore_case=True)


def _acts_on(st: Statement, action: str) -> bool:
    if st.actions:
        return any(action_matches(p, action) for p in st.actions)
    if st.not_actions:
        return not any(action_matches(p, action) for p in st.not_actions)
    return False


def statement_applies(st: Statement, action: str, resource: str) -> bool:
    """True if the statement's Action/NotAction and Resource/NotResource cover ``action`` on ``resource``.

    Conditions and principals are ignored. A statement with neither Resource nor NotResource (trust and
    other resource-based policies) applies to any resource. ``resource`` is matched literally, so
    ``"*"`` means "an arbitrary resource" and is matched only by patterns that match the string ``*``.
    """
    if not _acts_on(st, action):
        return False
    if st.resources:
        return any(resource_matches(p, resource) for p in st.resources)
    if st.not_resources:
        return not any(resource_matches(p, resource) for p in st.not_resources)
    return True


def evaluate(
    statements: Iterable[Statement], action: str, resource: str = "*", *, include_conditional: bool = False
) -> str:
    """Return ``"Deny"``, ``"Allow"`` or ``"ImplicitDeny"`` for ``action`` on ``resource``.

    Only an *unconditional* applicable Deny yields ``"Deny"``: a conditional Deny may not fire, so for
    an audit it is never trusted to block. An applicable Allow counts if it is unconditional, or if
    ``include_conditional`` is set (i.e. "allowed under some request context").
    """
    allowed = False
    for st in statements:
        if not statement_applies(st, action, resource):
            continue
        if st.effect == "Deny":
            if not st.conditional:
                return "Deny"
        elif include_conditional or not st.conditional:
            allowed = True
    return "Allow" if allowed else "ImplicitDeny"


# --------------------------------------------------------------------------- broad grants


@dataclass(frozen=True)
class BroadGrant:
    """A wildcard Allow over all resources.

    ``kind`` is ``"full-admin"`` (``*`` / ``*:*``), ``"service-wildcard"`` (``svc:*``),
    ``"action-wildcard"`` (e.g. ``iam:Put*``; reported only when it reaches an escalation action) or
    ``"not-action"`` (Allow + NotAction: everything except the listed actions).
    """

    statement: Statement
    kind: str
    service: str | None
    privilege_escalation: bool
    conditional: bool
    detail: str


def _all_resources_text(st: Statement) -> str | None:
    """How the statement reaches every resource, or None if it is scoped."""
    if st.not_resources:
        return f"NotResource {json.dumps(list(st.not_resources))}"
    for p in st.resources:
        if _ALL_RESOURCES_RE.fullmatch(p):
            return f'"{p}"'
    return None


def _service_wide_text(st: Statement, service: str | None) -> str | None:
    """How the statement reaches every resource of ``service`` (e.g. ``arn:aws:s3:::*``), or None."""
    for p in st.resources:
        m = _SERVICE_WIDE_RE.fullmatch(p)
        if m and service is not None and m.group(1).lower() == service:
            return f'"{p}"'
    return None


def _denied_everywhere(denies: Sequence[Statement], action_pattern: str) -> bool:
    """True if an unconditional Deny blocks every action ``action_pattern`` matches, on every resource."""
    for d in denies:
        if d.not_resources or (d.resources and not any(_ALL_RESOURCES_RE.fullmatch(p) for p in d.resources)):
            continue
        if any(_action_covers(p, action_pattern) for p in d.actions):
            return True
        if d.not_actions and not _has_wildcard(action_pattern) and _acts_on(d, action_pattern):
            return True
    return False


def _escapes(not_actions: Sequence[str]) -> bool:
    """True if a NotAction list leaves some escalation service reachable."""
    return not all(any(_action_covers(p, f"{svc}:*") for p in not_actions) for svc in ESCALATION_SERVICES)


def broad_grants(statements: Sequence[Statement]) -> list[BroadGrant]:
    """Find Allow statements granting ``*``, ``*:*``, ``svc:*`` or NotAction on all resources.

    "All resources" means a ``*``-only pattern (or ``arn:aws:*``-style) or any NotResource; for
    ``svc:*`` and prefix wildcards a service-wide ARN such as ``arn:aws:s3:::*`` also counts (and ``*``
    on such an ARN is reported as that service's ``service-wildcard``). A prefix
    wildcard (``iam:Put*``) is reported as ``action-wildcard`` only if it matches an entry of
    :data:`ESCALATION_ACTIONS`. Grants blocked by an unconditional Deny in ``statements`` covering the
    same actions on all resources are dropped (a NotAction grant only by a Deny of ``*``).

    ``privilege_escalation`` is True for full-admin, for service wildcards on
    :data:`ESCALATION_SERVICES`, and for NotAction grants unless the NotAction list excludes *every*
    escalation service (so a PowerUserAccess-style exclusion of iam/organizations still leaves
    ``sts:AssumeRole`` and is flagged).
    """
    denies = [s for s in statements if s.effect == "Deny" and not s.conditional]
    out: list[BroadGrant] = []
    for st in statements:
        if st.effect != "Allow":
            continue
        everywhere = _all_resources_text(st)
        found: list[tuple[str, str | None, bool, str, str]] = []  # kind, service, escalation, what, where
        if st.not_actions:
            if (
                everywhere
                and not any(set(p) == {"*"} for p in st.not_actions)
                and not _denied_everywhere(denies, "*")
            ):
                what = f"NotAction {json.dumps(list(st.not_actions))}"
                found.append(("not-action", None, _escapes(st.not_actions), what, everywhere))
        elif admin := [p for p in st.actions if _ALL_ACTIONS_RE.fullmatch(p)]:
            if everywhere and not _denied_everywhere(denies, "*"):
                found.append(("full-admin", None, True, f'"{admin[0]}"', everywhere))
            # "*" on e.g. arn:aws:s3:::* is, in effect, "s3:*" on all of S3
            for m in filter(None, (_SERVICE_WIDE_RE.fullmatch(r) for r in st.resources)):
                service = m.group(1).lower()
                if not everywhere and not _denied_everywhere(denies, f"{service}:*"):
                    escalation = service in ESCALATION_SERVICES
                    found.append(
                        ("service-wildcard", service, escalation, f'"{admin[0]}"', f'"{m.group(0)}"')
                    )
        else:
            for p in st.actions:
                svc, _, name = p.partition(":")
                service = None if _has_wildcard(svc) else svc.lower()
                where = everywhere or _service_wide_text(st, service)
                if where is None or not _has_wildcard(p) or _denied_everywhere(denies, p):
                    continue
                if service and name and set(name) == {"*"}:
                    escalation = service in ESCALATION_SERVICES
                    found.append(("service-wildcard", service, escalation, f'"{p}"', where))
                elif any(action_matches(p, a) for a in ESCALATION_ACTIONS):
                    found.append(("action-wildcard", service, True, f'"{p}"', where))
        suffix = " (conditional)" if st.conditional else ""
        out.extend(
            BroadGrant(st, kind, service, esc, st.conditional, f"Allow {what} on {where}{suffix}")
            for kind, service, esc, what, where in found
        )
    return out


# --------------------------------------------------------------------------- conditions


def _operator(op: str) -> tuple[str, bool]:
    """Split an operator into its lower-case base (``ForAnyValue:`` stripped) and whether it is IfExists."""
    base = op.lower()
    if base.startswith("foranyvalue:"):
        base = base[len("foranyvalue:") :]
    if base.endswith("ifexists"):
        return base[: -len("ifexists")], True
    return base, False


def _nontrivial(values: tuple[str, ...]) -> bool:
    return not values or any(v not in _TRIVIAL_VALUES for v in values)


def _restricting_keys(
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]],
    keys: frozenset[str],
    suffixes: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """Condition keys that must be present *and* match a non-wildcard value (so they narrow the caller).

    IfExists, ``ForAllValues:`` and negated operators do not count: each can pass without the key.
    """
    found: list[str] = []
    for op, block in conditions.items():
        base, if_exists = _operator(op)
        if if_exists or base not in _POSITIVE_OPERATORS:
            continue
        for key, values in block.items():
            k = key.lower()
            if (k in keys or k.endswith(suffixes)) and _nontrivial(values) and key not in found:
                found.append(key)
    return tuple(found)


def _deny_unless_restricted(conditions: Mapping[str, Mapping[str, tuple[str, ...]]]) -> bool:
    """True if a Deny's conditions all read "caller does not match <restricting key>".

    E.g. ``StringNotEquals aws:SourceVpce vpce-1``: negated operators are true when the key is missing,
    so such a Deny lets through only callers matching the key.
    """
    if not conditions:
        return False
    for op, block in conditions.items():
        base, _ = _operator(op)
        if base not in _NEGATED_OPERATORS:
            return False
        for key, values in block.items():
            if key.lower() not in _PUBLIC_RESTRICTING_KEYS or not _nontrivial(values):
                return False
    return True


# --------------------------------------------------------------------------- trust policies


@dataclass(frozen=True)
class TrustGrant:
    """One principal allowed to assume a role.

    ``kind`` is ``"anyone"``, ``"cross-account"``, ``"same-account"``, ``"service"`` or ``"federated"``.
    """

    principal: str
    kind: str
    account: str | None
    has_external_id: bool
    restricting_conditions: tuple[str, ...]
    statement: Statement


def _account_of(principal: str) -> str | None:
    if _ACCOUNT_RE.fullmatch(principal):
        return principal
    parts = principal.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and _ACCOUNT_RE.fullmatch(parts[4]):
        return parts[4]
    return None


def trust_grants(trust_doc: PolicyInput, own_account: str) -> list[TrustGrant]:
    """List who may assume the role under a trust policy, one grant per principal.

    Only Allow statements reaching ``sts:AssumeRole``, ``...WithWebIdentity``, ``...WithSAML`` or
    ``sts:TagSession`` count. ``"*"``, ``{"AWS": "*"}`` and any Allow+NotPrincipal are ``"anyone"``.
    AWS principals whose account cannot be read (deleted-principal IDs such as ``AROA...``) and
    CanonicalUser principals are ``"cross-account"`` with ``account=None``: they cannot be shown to
    be ours. ``restricting_conditions`` lists keys that narrow the caller (org, account, ARN, external
    ID, source IP/VPC, OIDC ``:sub`` / ``:aud``); note that for OIDC an ``:aud``-only condition does not
    restrict *which* repository or identity assumes the role. Deny statements are not subtracted.
    """
    out: list[TrustGrant] = []
    for st in parse_document(trust_doc):
        if st.effect != "Allow" or not any(_acts_on(st, a) for a in _TRUST_ACTIONS):
            continue
        restricting = _restricting_keys(st.conditions, _TRUST_RESTRICTING_KEYS, _TRUST_RESTRICTING_SUFFIXES)
        external_id = any(k.lower() == "sts:externalid" for k in restricting)

        found: list[tuple[str, str, str | None]] = []  # principal, kind, account
        if st.not_principals:
            found.append(("*", "anyone", None))
        for ptype, ids in st.principals.items():  # empty when NotPrincipal is used
            for pid in ids:
                if pid == "*":
                    found.append(("*", "anyone", None))
                elif ptype == "Service":
                    found.append((pid, "service", None))
                elif ptype == "Federated":
                    found.append((pid, "federated", None))
                else:
                    account = _account_of(pid) if ptype == "AWS" else None
                    kind = "same-account" if account == own_account.strip() else "cross-account"
                    found.append((pid, kind, account))
        out.extend(TrustGrant(p, kind, acct, external_id, restricting, st) for p, kind, acct in found)
    return out


# --------------------------------------------------------------------------- public bucket policies


@dataclass(frozen=True)
class PublicGrant:
    """An Allow to anyone that no condition or Deny narrows."""

    statement: Statement
    actions: tuple[str, ...]
    detail: str


def _resources_covered(deny: Statement, allow: Statement) -> bool:
    if not deny.resources and not deny.not_resources:
        return True
    if deny.not_resources or not allow.resources:
        return any(_ALL_RESOURCES_RE.fullmatch(p) for p in deny.resources)
    return all(any(_covers(d, r, ignore_case=False) for d in deny.resources) for r in allow.resources)


def public_grants(bucket_policy: PolicyInput, action: str = "s3:GetObject") -> list[PublicGrant]:
    """Find Allow statements that let anyone perform ``action`` (default ``s3:GetObject``).

    A statement is public if its principal is ``"*"`` / ``{"AWS": "*"}`` (or it uses NotPrincipal) and
    no positive condition pins the caller (source VPC/VPCE/IP other than ``0.0.0.0/0``, org, account,
    ARN, user id). Conditions like ``aws:SecureTransport`` do not make it private. Resources are not
    inspected beyond Deny coverage: public on any object counts. A Deny for anyone covering ``action``
    on all the Allow's resources neutralises it when unconditional, or when its conditions only read
    "caller does not match <restricting key>" (``StringNotEquals aws:SourceVpce ...``).
    ``actions`` holds the statement's Action patterns that match, or ``(action,)`` for NotAction.
    """
    statements = parse_document(bucket_policy)
    denies = [
        d
        for d in statements
        if d.effect == "Deny"
        and d.anyone
        and _acts_on(d, action)
        and (not d.conditional or _deny_unless_restricted(d.conditions))
    ]
    out: list[PublicGrant] = []
    for st in statements:
        if st.effect != "Allow" or not st.anyone or not _acts_on(st, action):
            continue
        if _restricting_keys(st.conditions, _PUBLIC_RESTRICTING_KEYS):
            continue
        if any(_resources_covered(d, st) for d in denies):
            continue
        matched = tuple(p for p in st.actions if action_matches(p, action)) or (action,)
        who = "NotPrincipal" if st.not_principals else '"*"'
        on = json.dumps(list(st.resources or st.not_resources))
        suffix = f" (conditions: {', '.join(st.conditions)})" if st.conditional else ""
        detail = f"Allow {who} {', '.join(matched)} on {on}{suffix}"
        out.append(PublicGrant(st, matched, detail))
    return out
