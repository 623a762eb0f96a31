"""Tests for outsidein.aws.policy: parsing, matching, evaluation and the three audit readers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from outsidein.aws.policy import (
    ESCALATION_SERVICES,
    BroadGrant,
    PolicyParseError,
    Statement,
    action_matches,
    broad_grants,
    evaluate,
    parse_document,
    public_grants,
    resource_matches,
    statement_applies,
    trust_grants,
)

OWN = "111122223333"
OTHER = "999999999999"
BUCKET = "arn:aws:s3:::acme-assets"

ADMINISTRATOR_ACCESS: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}

POWER_USER_ACCESS: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["iam:CreateServiceLinkedRole", "iam:ListRoles", "organizations:DescribeOrganization"],
            "Resource": "*",
        },
    ],
}

LEAST_PRIVILEGE: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadAssets",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [BUCKET, f"{BUCKET}/*"],
        },
        {"Sid": "Describe", "Effect": "Allow", "Action": ["ec2:Describe*", "s3:Get*"], "Resource": "*"},
        {"Sid": "Logs", "Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:*:111122223333:*"},
    ],
}


def stmts(*raw: dict[str, Any]) -> list[Statement]:
    return parse_document({"Version": "2012-10-17", "Statement": list(raw)})


# --------------------------------------------------------------------------- parse_document


def test_parse_single_statement_string_forms() -> None:
    [st] = parse_document(
        {"Statement": {"Sid": "One", "Effect": "Allow", "Action": "s3:GetObject", "Resource": BUCKET}}
    )
    assert st == Statement(sid="One", effect="Allow", actions=("s3:GetObject",), resources=(BUCKET,))
    assert not st.conditional


def test_parse_list_forms_principals_and_conditions() -> None:
    [st] = stmts(
        {
            "Effect": "deny",
            "NotAction": ["s3:GetObject", "s3:ListBucket"],
            "NotResource": [BUCKET],
            "Principal": {"AWS": ["arn:aws:iam::999999999999:root", OTHER], "Service": "ec2.amazonaws.com"},
            "Condition": {
                "Bool": {"aws:SecureTransport": False},
                "NumericLessThan": {"s3:max-keys": 10},
                "StringEquals": {"aws:PrincipalTag/team": ["a", "b"]},
            },
        }
    )
    assert st.effect == "Deny"
    assert st.actions == () and st.not_actions == ("s3:GetObject", "s3:ListBucket")
    assert st.not_resources == (BUCKET,)
    assert st.principals == {
        "AWS": ("arn:aws:iam::999999999999:root", OTHER),
        "Service": ("ec2.amazonaws.com",),
    }
    assert st.conditions == {
        "Bool": {"aws:SecureTransport": ("false",)},
        "NumericLessThan": {"s3:max-keys": ("10",)},
        "StringEquals": {"aws:PrincipalTag/team": ("a", "b")},
    }
    assert st.conditional
    hash(st)  # dict fields are excluded from the hash, so statements stay hashable


def test_parse_principal_star_vs_aws_star_and_not_principal() -> None:
    star, aws_star, not_p = stmts(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"},
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": f"arn:aws:iam::{OWN}:role/app"}, "Action": "s3:*"},
    )
    assert star.principals == {"*": ("*",)}
    assert aws_star.principals == {"AWS": ("*",)}
    assert star.anyone and aws_star.anyone and not_p.anyone
    assert not_p.principals == {} and not_p.not_principals == {"AWS": (f"arn:aws:iam::{OWN}:role/app",)}


def test_parse_json_string_and_url_encoded_string() -> None:
    text = json.dumps(ADMINISTRATOR_ACCESS)
    encoded = quote(text, safe="")
    assert encoded.startswith("%7B")
    expected = [Statement(sid=None, effect="Allow", actions=("*",), resources=("*",))]
    assert parse_document(text) == expected
    assert parse_document(encoded) == expected


def test_parse_empty_inputs() -> None:
    assert parse_document(None) == []
    assert parse_document("  ") == []
    assert parse_document({"Version": "2012-10-17", "Statement": []}) == []


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json at all", "neither JSON"),
        ("[1, 2]", "JSON object"),
        ({"Version": "2012-10-17"}, "no 'Statement'"),
        ({"Statement": "Allow everything"}, "'Statement' must be"),
        ({"Statement": [42]}, r"Statement\[0\] must be an object"),
        ({"Statement": {"Effect": "Permit", "Action": "*"}}, "Effect must be"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "s3:*"}}, "both Action and NotAction"),
        ({"Statement": {"Effect": "Allow", "Action": ["s3:GetObject", 7]}}, "Action must be"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Principal": "everyone"}}, "Principal must be"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Condition": ["x"]}}, "Condition must be"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Condition": {"Bool": {"k": {"v": 1}}}}}, "values"),
    ],
)
def test_parse_garbage_raises(doc: Any, message: str) -> None:
    with pytest.raises(PolicyParseError, match=message):
        parse_document(doc)


def test_parse_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_document(12345)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "iam:CreateUser", True),
        ("*:*", "iam:CreateUser", True),
        ("s3:*", "s3:GetObject", True),
        ("S3:get*", "s3:GetObject", True),
        ("s3:GetObjec?", "s3:GetObject", True),
        ("s3:Get*", "s3:PutObject", False),
        ("s3:GetObject", "s3:GetObjectAcl", False),
        ("s3:GetObjec?", "s3:GetObjectX", False),
        ("iam:*", "s3:GetObject", False),
    ],
)
def test_action_matches(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", "arn:aws:s3:::anything/at/all", True),
        (f"{BUCKET}/*", f"{BUCKET}/img/logo.png", True),
        ("arn:aws:iam::*:role/deploy-?", f"arn:aws:iam::{OWN}:role/deploy-1", True),
        ("arn:aws:logs:*:111122223333:*", "arn:aws:logs:eu-west-1:111122223333:log-group:/app:*", True),
        (f"{BUCKET}/*", "arn:aws:s3:::ACME-ASSETS/img/logo.png", False),  # case-sensitive
        (f"{BUCKET}/*", BUCKET, False),
        # a '*' in the region segment cannot swallow the account segment
        ("arn:aws:logs:*:111122223333:*", "arn:aws:logs:eu-west-1:999999999999:log-group:x", False),
        ("arn:aws:s3:::acme-*", "*", False),
    ],
)
def test_resource_matches(pattern: str, resource: str, expected: bool) -> None:
    assert resource_matches(pattern, resource) is expected


def test_statement_applies_action_and_resource() -> None:
    read, not_action, not_resource, trust = stmts(
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": f"{BUCKET}/*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/secret/*"},
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
    )
    assert statement_applies(read, "s3:GetObject", f"{BUCKET}/a.txt")
    assert not statement_applies(read, "s3:PutObject", f"{BUCKET}/a.txt")
    assert not statement_applies(read, "s3:GetObject", "arn:aws:s3:::other/a.txt")
    assert statement_applies(not_action, "ec2:RunInstances", "*")
    assert not statement_applies(not_action, "iam:CreateUser", "*")
    assert statement_applies(not_resource, "s3:GetObject", f"{BUCKET}/public/a")
    assert not statement_applies(not_resource, "s3:GetObject", f"{BUCKET}/secret/a")
    assert statement_applies(trust, "sts:AssumeRole", "*")  # no Resource element: any resource
    assert not statement_applies(Statement(sid=None, effect="Allow"), "s3:GetObject", "*")


# --------------------------------------------------------------------------- evaluate


def test_evaluate_allow_and_implicit_deny() -> None:
    admin = parse_document(ADMINISTRATOR_ACCESS)
    least = parse_document(LEAST_PRIVILEGE)
    assert evaluate(admin, "iam:CreateUser") == "Allow"
    assert evaluate(least, "s3:GetObject", f"{BUCKET}/x") == "Allow"
    assert evaluate(least, "s3:PutObject", f"{BUCKET}/x") == "ImplicitDeny"
    assert evaluate(least, "iam:CreateUser") == "ImplicitDeny"
    assert evaluate([], "s3:GetObject") == "ImplicitDeny"


def test_evaluate_explicit_deny_wins_only_when_unconditional() -> None:
    deny = stmts(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
    )
    assert evaluate(deny, "iam:CreateUser") == "Deny"
    assert evaluate(deny, "s3:GetObject") == "Allow"
    conditional_deny = stmts(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "iam:*",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
    )
    assert evaluate(conditional_deny, "iam:CreateUser") == "Allow"


def test_evaluate_conditional_allow() -> None:
    allow = stmts(
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        }
    )
    assert evaluate(allow, "s3:GetObject") == "ImplicitDeny"
    assert evaluate(allow, "s3:GetObject", include_conditional=True) == "Allow"


# --------------------------------------------------------------------------- broad_grants


def test_broad_grants_administrator_access() -> None:
    [g] = broad_grants(parse_document(ADMINISTRATOR_ACCESS))
    assert isinstance(g, BroadGrant)
    assert (g.kind, g.service, g.privilege_escalation, g.conditional) == ("full-admin", None, True, False)
    assert g.detail == 'Allow "*" on "*"'


def test_broad_grants_star_colon_star_is_full_admin() -> None:
    [g] = broad_grants(stmts({"Effect": "Allow", "Action": ["*:*", "iam:*"], "Resource": ["*"]}))
    assert g.kind == "full-admin"


def test_broad_grants_service_wildcards() -> None:
    grants = broad_grants(
        stmts({"Effect": "Allow", "Action": ["iam:*", "S3:*", "ec2:DescribeInstances"], "Resource": "*"})
    )
    assert [(g.kind, g.service, g.privilege_escalation) for g in grants] == [
        ("service-wildcard", "iam", True),
        ("service-wildcard", "s3", False),
    ]
    assert grants[0].detail == 'Allow "iam:*" on "*"'


def test_broad_grants_action_wildcard_only_when_it_reaches_escalation() -> None:
    [g] = broad_grants(
        stmts({"Effect": "Allow", "Action": ["iam:Put*", "iam:Get*", "s3:Get*"], "Resource": "*"})
    )
    assert (g.kind, g.service, g.privilege_escalation) == ("action-wildcard", "iam", True)
    assert '"iam:Put*"' in g.detail


def test_broad_grants_power_user_not_action() -> None:
    [g] = broad_grants(parse_document(POWER_USER_ACCESS))
    assert g.kind == "not-action"
    # iam/organizations excluded, but sts:AssumeRole (and sso) are still reachable
    assert g.privilege_escalation is True
    assert g.detail.startswith('Allow NotAction ["iam:*", "organizations:*", "account:*"] on "*"')


def test_broad_grants_not_action_excluding_all_escalation_services() -> None:
    excluded = sorted(f"{svc}:*" for svc in ESCALATION_SERVICES)
    [g] = broad_grants(stmts({"Effect": "Allow", "NotAction": excluded, "Resource": "*"}))
    assert (g.kind, g.privilege_escalation) == ("not-action", False)


def test_broad_grants_not_resource_counts_as_all_resources() -> None:
    [g] = broad_grants(stmts({"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/secret/*"}))
    assert g.kind == "service-wildcard" and "NotResource" in g.detail


def test_broad_grants_service_wide_arn() -> None:
    [g] = broad_grants(stmts({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::*"}))
    assert (g.kind, g.service) == ("service-wildcard", "s3")
    assert g.detail == 'Allow "s3:*" on "arn:aws:s3:::*"'
    # a service-wide ARN of another service is not flagged
    assert broad_grants(stmts({"Effect": "Allow", "Action": "iam:*", "Resource": "arn:aws:s3:::*"})) == []
    # "*" on every IAM resource is an iam service wildcard, not full admin
    [g] = broad_grants(stmts({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:iam::*:*"}))
    assert (g.kind, g.service, g.privilege_escalation) == ("service-wildcard", "iam", True)


def test_broad_grants_least_privilege_has_none() -> None:
    assert broad_grants(parse_document(LEAST_PRIVILEGE)) == []


def test_broad_grants_deny_neutralisation() -> None:
    assert (
        broad_grants(
            stmts(ADMINISTRATOR_ACCESS["Statement"][0], {"Effect": "Deny", "Action": "*", "Resource": "*"})
        )
        == []
    )
    # iam:* is cancelled by Deny iam:*, s3:* survives
    grants = broad_grants(
        stmts(
            {"Effect": "Allow", "Action": ["iam:*", "s3:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
        )
    )
    assert [g.service for g in grants] == ["s3"]
    assert broad_grants(parse_document(POWER_USER_ACCESS)) != []
    assert (
        broad_grants(
            [*parse_document(POWER_USER_ACCESS), *stmts({"Effect": "Deny", "Action": "*:*", "Resource": "*"})]
        )
        == []
    )


def test_broad_grants_partial_or_conditional_deny_does_not_neutralise() -> None:
    partial = stmts(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": f"{BUCKET}/*"},
    )
    assert [g.kind for g in broad_grants(partial)] == ["full-admin"]
    conditional = stmts(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
        },
    )
    assert len(broad_grants(conditional)) == 1


def test_broad_grants_conditional_allow_is_flagged() -> None:
    [g] = broad_grants(
        stmts(
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            }
        )
    )
    assert g.conditional and g.detail.endswith("(conditional)")


# --------------------------------------------------------------------------- trust_grants


def _trust(
    principal: Any, condition: dict[str, Any] | None = None, action: Any = "sts:AssumeRole"
) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action}
    if condition:
        st["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [st]}


def test_trust_service_principal() -> None:
    [g] = trust_grants(_trust({"Service": "ec2.amazonaws.com"}), OWN)
    assert (g.principal, g.kind, g.account, g.has_external_id) == (
        "ec2.amazonaws.com",
        "service",
        None,
        False,
    )
    assert g.restricting_conditions == ()


def test_trust_cross_account_without_external_id() -> None:
    [g] = trust_grants(_trust({"AWS": f"arn:aws:iam::{OTHER}:root"}), OWN)
    assert (g.kind, g.account, g.has_external_id) == ("cross-account", OTHER, False)


def test_trust_cross_account_with_external_id() -> None:
    doc = _trust({"AWS": OTHER}, {"StringEquals": {"STS:ExternalId": "vendor-7f3a"}})
    [g] = trust_grants(json.dumps(doc), OWN)
    assert (g.principal, g.kind, g.account, g.has_external_id) == (OTHER, "cross-account", OTHER, True)
    assert g.restricting_conditions == ("STS:ExternalId",)


def test_trust_external_id_if_exists_or_wildcard_does_not_count() -> None:
    if_exists = _trust({"AWS": OTHER}, {"StringEqualsIfExists": {"sts:ExternalId": "x"}})
    wildcard = _trust({"AWS": OTHER}, {"StringLike": {"sts:ExternalId": "*"}})
    assert not trust_grants(if_exists, OWN)[0].has_external_id
    assert trust_grants(wildcard, OWN)[0].restricting_conditions == ()


def test_trust_same_account_and_lists() -> None:
    doc = _trust({"AWS": [f"arn:aws:iam::{OWN}:role/ci", f"arn:aws:iam::{OTHER}:user/bob"]})
    grants = trust_grants(doc, OWN)
    assert [(g.kind, g.account) for g in grants] == [("same-account", OWN), ("cross-account", OTHER)]


def test_trust_anyone_forms() -> None:
    for principal in ("*", {"AWS": "*"}):
        [g] = trust_grants(_trust(principal), OWN)
        assert (g.principal, g.kind, g.account) == ("*", "anyone", None)
    org_limited = _trust("*", {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}})
    assert trust_grants(org_limited, OWN)[0].restricting_conditions == ("aws:PrincipalOrgID",)


def test_trust_not_principal_is_anyone() -> None:
    doc = {
        "Statement": {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
            "Action": "sts:AssumeRole",
        }
    }
    [g] = trust_grants(doc, OWN)
    assert g.kind == "anyone"


def test_trust_github_oidc() -> None:
    provider = f"arn:aws:iam::{OWN}:oidc-provider/token.actions.githubusercontent.com"
    doc = _trust(
        {"Federated": provider},
        {
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/infra:ref:refs/heads/main"},
        },
        action="sts:AssumeRoleWithWebIdentity",
    )
    [g] = trust_grants(quote(json.dumps(doc)), OWN)
    assert (g.principal, g.kind, g.account) == (provider, "federated", None)
    assert g.restricting_conditions == (
        "token.actions.githubusercontent.com:aud",
        "token.actions.githubusercontent.com:sub",
    )
    aud_only = _trust(
        {"Federated": provider},
        {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}},
        action="sts:AssumeRoleWithWebIdentity",
    )
    keys = trust_grants(aud_only, OWN)[0].restricting_conditions
    assert not any(k.endswith(":sub") for k in keys)


def test_trust_canonical_user_and_unknown_id() -> None:
    grants = trust_grants(_trust({"CanonicalUser": "79a59df900b949e5", "AWS": "AROAEXAMPLEID"}), OWN)
    assert [(g.kind, g.account) for g in grants] == [("cross-account", None), ("cross-account", None)]


def test_trust_ignores_deny_and_unrelated_actions() -> None:
    doc = {
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sts:GetCallerIdentity"},
        ]
    }
    assert trust_grants(doc, OWN) == []
    assert trust_grants(None, OWN) == []
    assert len(trust_grants(_trust({"AWS": OTHER}, action="sts:*"), OWN)) == 1
    assert len(trust_grants(_trust({"AWS": OTHER}, action=["sts:TagSession"]), OWN)) == 1


# --------------------------------------------------------------------------- public_grants


def _bucket(*raw: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(raw)}


PUBLIC_READ = {
    "Sid": "PublicRead",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": f"{BUCKET}/*",
}


def test_public_principal_star() -> None:
    [g] = public_grants(_bucket(PUBLIC_READ))
    assert g.actions == ("s3:GetObject",)
    assert g.statement.sid == "PublicRead"
    assert g.detail == f'Allow "*" s3:GetObject on ["{BUCKET}/*"]'


def test_public_aws_star_and_wildcard_actions() -> None:
    doc = _bucket(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["s3:Get*", "s3:ListBucket"],
            "Resource": "*",
        }
    )
    [g] = public_grants(json.dumps(doc))
    assert g.actions == ("s3:Get*",)
    assert public_grants(doc, "s3:PutObject") == []
    [g] = public_grants(_bucket({**PUBLIC_READ, "Action": "*"}), "s3:DeleteObject")
    assert g.actions == ("*",)


def test_public_not_principal_allow_is_public() -> None:
    doc = _bucket(
        {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": f"arn:aws:iam::{OWN}:root"},
            "Action": "s3:*",
            "Resource": f"{BUCKET}/*",
        }
    )
    [g] = public_grants(doc)
    assert g.actions == ("s3:*",) and "NotPrincipal" in g.detail


def test_public_secure_transport_only_is_still_public() -> None:
    doc = _bucket(
        {**PUBLIC_READ, "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [BUCKET, f"{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
    [g] = public_grants(doc)
    assert g.actions == ("s3:GetObject",) and "(conditions: Bool)" in g.detail


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:SourceVpce": "vpce-0a1b2c3d"}},
        {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
        {"IpAddress": {"AWS:SourceIp": ["203.0.113.0/24"]}},
        {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-abc123/r-ab12/*"}},
    ],
)
def test_public_restricted_by_condition_is_private(condition: dict[str, Any]) -> None:
    assert public_grants(_bucket({**PUBLIC_READ, "Condition": condition})) == []


@pytest.mark.parametrize(
    "condition",
    [
        {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
        {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-0a1b2c3d"}},
        {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}},
        {"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
    ],
)
def test_public_non_restricting_condition_stays_public(condition: dict[str, Any]) -> None:
    assert len(public_grants(_bucket({**PUBLIC_READ, "Condition": condition}))) == 1


def test_public_neutralised_by_unconditional_deny() -> None:
    deny_all = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:GetObject",
        "Resource": f"{BUCKET}/*",
    }
    assert public_grants(_bucket(PUBLIC_READ, deny_all)) == []
    deny_not_principal = {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": f"arn:aws:iam::{OWN}:role/app"},
        "Action": "s3:*",
        "Resource": "*",
    }
    assert public_grants(_bucket(PUBLIC_READ, deny_not_principal)) == []


def test_public_deny_unless_vpce_neutralises() -> None:
    deny_unless = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [BUCKET, f"{BUCKET}/*"],
        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0a1b2c3d"}},
    }
    assert public_grants(_bucket(PUBLIC_READ, deny_unless)) == []


def test_public_partial_deny_does_not_neutralise() -> None:
    other_action = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}
    narrower = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"{BUCKET}/private/*",
    }
    specific = {"Effect": "Deny", "Principal": {"AWS": OTHER}, "Action": "s3:GetObject", "Resource": "*"}
    assert len(public_grants(_bucket(PUBLIC_READ, other_action, narrower, specific))) == 1


def test_public_specific_principal_is_not_public() -> None:
    doc = _bucket({**PUBLIC_READ, "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}})
    assert public_grants(doc) == []
    assert public_grants(None) == []
