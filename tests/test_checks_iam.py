"""Layer 7 checks (IAM, root account, Access Analyzer, public S3 reads) end to end.

Everything moto can represent is built in a real moto server through boto3 and audited like a live
account. What moto cannot do (root MFA, backdated access keys, IAM Access Analyzer) is built as a
folder of AWS CLI ``--output json`` files in their real shapes and audited offline.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from outsidein.audit import AuditReport, LayerStatus, evaluate
from outsidein.aws.cli_folder import load_cli_folder
from outsidein.cli import main
from outsidein.demo.emulator import MotoServer
from outsidein.models import Finding, Severity, Status
from tests.conftest import Emulator, failed, verdicts

MOTO_ACCOUNT = "123456789012"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
VENDOR_ACCOUNT = "210987654321"
GITHUB_OIDC = f"arn:aws:iam::{MOTO_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def iam_arn(kind: str, name: str, account: str = MOTO_ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


def finding(report: AuditReport, check_id: str, resource: str) -> Finding:
    """The one finding a check raised on a resource."""
    found = [f for f in report.findings if f.check_id == check_id and f.resource == resource]
    assert len(found) == 1, f"{check_id} on {resource}: {found} (verdicts: {verdicts(report, check_id)})"
    return found[0]


def assert_passes(report: AuditReport, check_id: str, resource: str) -> None:
    assert verdicts(report, check_id).get(resource) == {Status.PASS}, verdicts(report, check_id)
    assert resource not in failed(report, check_id)


def layer(report: AuditReport, number: int) -> LayerStatus:
    return next(ls for ls in report.layers if ls.layer.number == number)


EC2_TRUST = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})


# --------------------------------------------------------------------------- moto scenarios (one audit each)


@pytest.fixture(scope="module")
def emulator(moto_server: MotoServer) -> Iterator[Emulator]:
    yield Emulator(moto_server)
    moto_server.reset()


def _fresh(emulator: Emulator) -> Any:
    emulator.server.reset()
    return emulator.client("iam")


@pytest.fixture(scope="module")
def policies(emulator: Emulator) -> AuditReport:
    """Identity policies: admin, escalation, NotAction, inline, scoped, unattached; inline and boundaries."""
    iam = _fresh(emulator)

    def managed(name: str, *statements: dict[str, Any]) -> str:
        return str(iam.create_policy(PolicyName=name, PolicyDocument=doc(*statements))["Policy"]["Arn"])

    def role(name: str, *policy_arns: str, **kw: Any) -> None:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST, **kw)
        for arn in policy_arns:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)

    role("admin", ADMIN)
    role("iam-operator", managed("IamEverything", {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}))
    role("almost-admin", managed("AllButBilling",
                                 {"Effect": "Allow", "NotAction": ["aws-portal:*"], "Resource": "*"}))
    role("power-user", managed("AllButIdentity", {
        "Effect": "Allow", "NotAction": ["iam:*", "sts:*", "organizations:*", "sso:*", "identitystore:*"],
        "Resource": "*"}))
    role("s3-admin", managed("S3Everything", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    read_assets = managed("ReadAssets", {"Effect": "Allow", "Action": "s3:GetObject",
                                         "Resource": "arn:aws:s3:::acme-assets/*"})
    role("reader", read_assets, PermissionsBoundary=read_assets)
    iam.put_role_policy(RoleName="reader", PolicyName="read-reports", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-reports/*"}))
    managed("UnusedAdmin", {"Effect": "Allow", "Action": "*", "Resource": "*"})
    iam.create_user(UserName="scripter")
    iam.put_user_policy(UserName="scripter", PolicyName="everything",
                        PolicyDocument=doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    return emulator.audit()


@pytest.fixture(scope="module")
def trust(emulator: Emulator) -> AuditReport:
    """Role trust policies: vendors, anyone, the organisation, GitHub OIDC, a service."""
    iam = _fresh(emulator)
    vendor = {"AWS": f"arn:aws:iam::{VENDOR_ACCOUNT}:root"}
    github = {"Federated": GITHUB_OIDC}
    aud = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    roles = {
        "vendor-no-external-id": {"Effect": "Allow", "Principal": vendor, "Action": "sts:AssumeRole"},
        "vendor-external-id": {"Effect": "Allow", "Principal": vendor, "Action": "sts:AssumeRole",
                               "Condition": {"StringEquals": {"sts:ExternalId": "acme-7f3c91"}}},
        "anyone": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
        "org-members": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}},
        "github-any-repo": {"Effect": "Allow", "Principal": github, "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {"StringEquals": aud}},
        "github-one-repo": {"Effect": "Allow", "Principal": github, "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {"StringEquals": aud, "StringLike": {
                                "token.actions.githubusercontent.com:sub": "repo:acme/api:ref:refs/heads/main"}}},
    }
    for name, statement in roles.items():
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(statement))
    iam.create_role(RoleName="ec2-app", AssumeRolePolicyDocument=EC2_TRUST)
    return emulator.audit()


@pytest.fixture(scope="module")
def people_and_buckets(emulator: Emulator) -> AuditReport:
    """Console users with and without MFA, and buckets with public, blocked and VPC-bound policies."""
    iam = _fresh(emulator)
    for user in ("alice", "bob", "carol"):
        iam.create_user(UserName=user)
    for user in ("alice", "bob"):
        iam.create_login_profile(UserName=user, Password="Correct-Horse-Battery-9")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="bob-phone")["VirtualMFADevice"]
    iam.enable_mfa_device(UserName="bob", SerialNumber=device["SerialNumber"],
                          AuthenticationCode1="123456", AuthenticationCode2="654321")
    iam.create_access_key(UserName="carol")

    s3 = emulator.client("s3")

    def public_read(bucket: str, **extra: Any) -> str:
        return doc({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*", **extra})

    for bucket in ("acme-public-site", "acme-blocked", "acme-vpce-only", "acme-private"):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket="acme-public-site", Policy=public_read("acme-public-site"))
    s3.put_bucket_policy(Bucket="acme-blocked", Policy=public_read("acme-blocked"))
    s3.put_public_access_block(Bucket="acme-blocked", PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True})
    s3.put_bucket_policy(Bucket="acme-vpce-only", Policy=public_read(
        "acme-vpce-only", Condition={"StringEquals": {"aws:SourceVpce": "vpce-0a1b2c3d4e5f67890"}}))
    return emulator.audit()


# --------------------------------------------------------------------------- iam-wildcard-admin


def test_administrator_access_on_a_role_is_critical_on_the_aws_policy(policies: AuditReport) -> None:
    f = finding(policies, "iam-wildcard-admin", ADMIN)
    assert f.severity is Severity.CRITICAL
    assert f.layer == 7
    assert 'Allow "*" on "*"' in f.detail
    assert "role/admin" in f.detail


def test_customer_policy_with_iam_star_fails(policies: AuditReport) -> None:
    f = finding(policies, "iam-wildcard-admin", iam_arn("policy", "IamEverything"))
    assert f.severity is Severity.CRITICAL
    assert '"iam:*"' in f.detail and "role/iam-operator" in f.detail


def test_not_action_allow_on_every_resource_fails(policies: AuditReport) -> None:
    f = finding(policies, "iam-wildcard-admin", iam_arn("policy", "AllButBilling"))
    assert f.severity is Severity.CRITICAL
    assert "NotAction" in f.detail and "aws-portal:*" in f.detail


def test_inline_star_policy_on_a_user_fails_on_the_user(policies: AuditReport) -> None:
    f = finding(policies, "iam-wildcard-admin", iam_arn("user", "scripter"))
    assert f.severity is Severity.CRITICAL
    assert f.detail.startswith("inline policy everything:")
    assert 'Allow "*" on "*"' in f.detail


def test_scoped_policy_passes_both_wildcard_checks(policies: AuditReport) -> None:
    scoped = iam_arn("policy", "ReadAssets")
    assert_passes(policies, "iam-wildcard-admin", scoped)
    assert_passes(policies, "iam-service-wildcard", scoped)
    assert_passes(policies, "iam-wildcard-admin", iam_arn("role", "reader"))  # its inline policy


def test_unattached_admin_policy_gets_no_verdict(policies: AuditReport) -> None:
    unused = iam_arn("policy", "UnusedAdmin")
    assert unused not in verdicts(policies, "iam-wildcard-admin")
    assert unused not in verdicts(policies, "iam-service-wildcard")


def test_not_action_excluding_only_identity_services_is_still_reported(policies: AuditReport) -> None:
    # Allow NotAction [iam:*, sts:*, organizations:*, sso:*, identitystore:*] on "*" grants s3:*, kms:*,
    # ec2:*, lambda:* ... on everything; the check's own remediation says never NotAction on "*".
    broad = iam_arn("policy", "AllButIdentity")
    reported = failed(policies, "iam-wildcard-admin").get(broad) or failed(policies, "iam-service-wildcard").get(broad)
    assert reported, (f"no finding for {broad}: wildcard-admin {verdicts(policies, 'iam-wildcard-admin').get(broad)}, "
                      f"service-wildcard {verdicts(policies, 'iam-service-wildcard').get(broad)}")


def test_admin_shared_with_an_sso_reserved_role_still_fails_for_other_roles(aws: Emulator) -> None:
    # IAM Identity Center creates /aws-reserved/sso.amazonaws.com/ roles with AdministratorAccess attached;
    # that must not hide the same policy attached to a customer's own role.
    iam = aws.client("iam")
    iam.create_role(RoleName="AWSReservedSSO_AdministratorAccess_0123456789abcdef",
                    Path="/aws-reserved/sso.amazonaws.com/", AssumeRolePolicyDocument=EC2_TRUST)
    iam.attach_role_policy(RoleName="AWSReservedSSO_AdministratorAccess_0123456789abcdef", PolicyArn=ADMIN)
    iam.create_role(RoleName="ci-deploy", AssumeRolePolicyDocument=EC2_TRUST)
    iam.attach_role_policy(RoleName="ci-deploy", PolicyArn=ADMIN)
    report = aws.audit()
    f = finding(report, "iam-wildcard-admin", ADMIN)
    assert f.severity is Severity.CRITICAL
    assert "role/ci-deploy" in f.detail


# --------------------------------------------------------------------------- iam-service-wildcard


def test_s3_star_on_everything_is_high(policies: AuditReport) -> None:
    s3_all = iam_arn("policy", "S3Everything")
    f = finding(policies, "iam-service-wildcard", s3_all)
    assert f.severity is Severity.HIGH
    assert 'Allow "s3:*" on "*"' in f.detail and "role/s3-admin" in f.detail
    assert_passes(policies, "iam-wildcard-admin", s3_all)  # not an escalation path


def test_escalation_grants_are_not_double_reported_as_service_wildcards(policies: AuditReport) -> None:
    assert_passes(policies, "iam-service-wildcard", iam_arn("policy", "IamEverything"))
    assert_passes(policies, "iam-service-wildcard", ADMIN)


# --------------------------------------------------------------------------- iam-inline-policy, boundaries


def test_role_with_inline_policy_is_medium(policies: AuditReport) -> None:
    f = finding(policies, "iam-inline-policy", iam_arn("role", "reader"))
    assert f.severity is Severity.MEDIUM
    assert f.detail == "role reader: read-reports"
    assert_passes(policies, "iam-inline-policy", iam_arn("role", "s3-admin"))


def test_role_without_permission_boundary_is_medium(policies: AuditReport) -> None:
    f = finding(policies, "iam-permission-boundary", iam_arn("role", "admin"))
    assert f.severity is Severity.MEDIUM
    assert f.detail == "role admin has no permission boundary"
    assert_passes(policies, "iam-permission-boundary", iam_arn("role", "reader"))
    assert iam_arn("user", "scripter") not in verdicts(policies, "iam-permission-boundary")  # roles only


# --------------------------------------------------------------------------- iam-cross-account-trust


def test_vendor_trust_without_external_id_is_high(trust: AuditReport) -> None:
    f = finding(trust, "iam-cross-account-trust", iam_arn("role", "vendor-no-external-id"))
    assert f.severity is Severity.HIGH
    assert f.detail == f"trusts account {VENDOR_ACCOUNT} without sts:ExternalId"


def test_vendor_trust_with_external_id_passes(trust: AuditReport) -> None:
    assert_passes(trust, "iam-cross-account-trust", iam_arn("role", "vendor-external-id"))


def test_trusting_any_aws_principal_is_critical(trust: AuditReport) -> None:
    f = finding(trust, "iam-cross-account-trust", iam_arn("role", "anyone"))
    assert f.severity is Severity.CRITICAL
    assert 'any AWS principal ("*")' in f.detail


def test_anyone_in_the_organisation_passes(trust: AuditReport) -> None:
    assert_passes(trust, "iam-cross-account-trust", iam_arn("role", "org-members"))


def test_github_oidc_without_sub_condition_fails(trust: AuditReport) -> None:
    f = finding(trust, "iam-cross-account-trust", iam_arn("role", "github-any-repo"))
    assert f.severity is Severity.HIGH
    assert f.detail == "trusts token.actions.githubusercontent.com tokens without a :sub condition"


def test_github_oidc_pinned_to_a_repository_passes(trust: AuditReport) -> None:
    assert_passes(trust, "iam-cross-account-trust", iam_arn("role", "github-one-repo"))


def test_service_principal_trust_passes(trust: AuditReport) -> None:
    assert_passes(trust, "iam-cross-account-trust", iam_arn("role", "ec2-app"))
    assert len(failed(trust, "iam-cross-account-trust")) == 3


# --------------------------------------------------------------------------- iam-console-mfa, root (moto)


def test_console_user_without_mfa_is_high(people_and_buckets: AuditReport) -> None:
    f = finding(people_and_buckets, "iam-console-mfa", iam_arn("user", "alice"))
    assert f.severity is Severity.HIGH
    assert f.detail == "alice signs in to the console without MFA"


def test_console_user_with_virtual_mfa_passes(people_and_buckets: AuditReport) -> None:
    assert_passes(people_and_buckets, "iam-console-mfa", iam_arn("user", "bob"))


def test_user_without_password_passes_console_mfa(people_and_buckets: AuditReport) -> None:
    assert_passes(people_and_buckets, "iam-console-mfa", iam_arn("user", "carol"))


def test_fresh_access_key_passes_key_age(people_and_buckets: AuditReport) -> None:
    assert verdicts(people_and_buckets, "iam-access-key-age") == {iam_arn("user", "carol"): {Status.PASS}}


def test_root_without_mfa_fails_in_moto(people_and_buckets: AuditReport) -> None:
    f = finding(people_and_buckets, "iam-root-mfa", f"arn:aws:iam::{MOTO_ACCOUNT}:root")
    assert f.severity is Severity.CRITICAL
    assert f.detail == "root user has no MFA device"


def test_access_analyzer_unavailable_in_moto_is_not_assessed(people_and_buckets: AuditReport) -> None:
    assert verdicts(people_and_buckets, "iam-access-analyzer") == {"us-east-1": {Status.NOT_ASSESSED}}
    (result,) = [r for c, r in people_and_buckets.not_assessed if c.meta.id == "iam-access-analyzer"]
    assert "accessanalyzer" in result.reason.lower()
    assert "iam-access-analyzer" not in {f.check_id for f in people_and_buckets.findings}


# --------------------------------------------------------------------------- s3-public-getobject


def test_public_getobject_bucket_policy_is_critical(people_and_buckets: AuditReport) -> None:
    f = finding(people_and_buckets, "s3-public-getobject", "acme-public-site")
    assert f.severity is Severity.CRITICAL
    assert f.detail == 'Allow "*" s3:GetObject on ["arn:aws:s3:::acme-public-site/*"]'


def test_restrict_public_buckets_neutralises_the_public_policy(people_and_buckets: AuditReport) -> None:
    assert_passes(people_and_buckets, "s3-public-getobject", "acme-blocked")


def test_policy_bound_to_a_vpc_endpoint_passes(people_and_buckets: AuditReport) -> None:
    assert_passes(people_and_buckets, "s3-public-getobject", "acme-vpce-only")


def test_bucket_without_policy_passes(people_and_buckets: AuditReport) -> None:
    assert_passes(people_and_buckets, "s3-public-getobject", "acme-private")


# --------------------------------------------------------------------------- AWS CLI folders

CLI_ACCOUNT = "111122223333"
CLI_ROOT = f"arn:aws:iam::{CLI_ACCOUNT}:root"
CLOCK = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)  # every file's mtime: the audit clock

REPORT_HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,"
    "access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,"
    "access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def report_row(user: str, *, password: bool = False, mfa: bool = False, key_rotated: datetime | None = None) -> str:
    """One credential report row as AWS writes it (access key 1 active if key_rotated is given)."""
    root = user == "<root_account>"
    arn = CLI_ROOT if root else f"arn:aws:iam::{CLI_ACCOUNT}:user/{user}"
    created = _ts(datetime(2021, 3, 4, 9, 30, tzinfo=UTC))
    if root:
        pw = ["not_supported", _ts(CLOCK - timedelta(days=3)), "not_supported", "not_supported"]
    elif password:
        pw = ["true", _ts(CLOCK - timedelta(days=1)), created, "N/A"]
    else:
        pw = ["false", "N/A", "N/A", "N/A"]
    if key_rotated is None:
        key1 = ["false", "N/A", "N/A", "N/A", "N/A"]
    else:
        key1 = ["true", _ts(key_rotated), _ts(CLOCK - timedelta(days=1)), "us-east-1", "s3"]
    key2 = ["false", "N/A", "N/A", "N/A", "N/A"]
    certs = ["false", "N/A", "false", "N/A"]
    return ",".join([user, arn, created, *pw, "true" if mfa else "false", *key1, *key2, *certs])


def credential_report(*rows: str) -> dict[str, Any]:
    """get-credential-report.json: the CLI prints the CSV base64-encoded."""
    csv_text = "\n".join([REPORT_HEADER, *rows]) + "\n"
    return {"Content": base64.b64encode(csv_text.encode()).decode(), "ReportFormat": "text/csv",
            "GeneratedTime": _ts(CLOCK - timedelta(minutes=5))}


def account_summary(*, mfa: int, root_keys: int) -> dict[str, Any]:
    return {"SummaryMap": {"Users": 2, "Roles": 1, "Policies": 1, "Groups": 0, "MFADevices": 2,
                           "MFADevicesInUse": 2, "AccountMFAEnabled": mfa, "AccountAccessKeysPresent": root_keys,
                           "AccountSigningCertificatesPresent": 0, "UsersQuota": 5000, "RolesQuota": 1000}}


def analyzers(*statuses: str) -> dict[str, Any]:
    return {"analyzers": [
        {"arn": f"arn:aws:access-analyzer:us-east-1:{CLI_ACCOUNT}:analyzer/account-analyzer-{i}",
         "name": f"account-analyzer-{i}", "type": "ACCOUNT", "createdAt": "2024-02-01T10:00:00+00:00",
         "tags": {}, "status": status} for i, status in enumerate(statuses)]}


def clean_account() -> dict[str, Any]:
    """The files of an account that passes every layer-7 check (Access Analyzer aside)."""
    boundary = f"arn:aws:iam::{CLI_ACCOUNT}:policy/DeveloperBoundary"
    app_policy = f"arn:aws:iam::{CLI_ACCOUNT}:policy/AppReadAssets"
    scoped = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::acme-assets/*"}]}
    bucket_policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::acme-assets", "arn:aws:s3:::acme-assets/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}

    def policy(arn: str, name: str) -> dict[str, Any]:
        return {"PolicyName": name, "PolicyId": "ANPA" + name.upper()[:17], "Arn": arn, "Path": "/",
                "DefaultVersionId": "v1", "AttachmentCount": 1, "PermissionsBoundaryUsageCount": 0,
                "IsAttachable": True, "CreateDate": "2024-01-10T08:00:00+00:00",
                "UpdateDate": "2024-01-10T08:00:00+00:00",
                "PolicyVersionList": [{"Document": scoped, "VersionId": "v1", "IsDefaultVersion": True,
                                       "CreateDate": "2024-01-10T08:00:00+00:00"}]}

    return {
        "get-caller-identity.json": {"UserId": "AIDAEXAMPLEAUDITOR01", "Account": CLI_ACCOUNT,
                                     "Arn": f"arn:aws:iam::{CLI_ACCOUNT}:user/auditor"},
        "get-account-authorization-details.json": {
            "UserDetailList": [{
                "Path": "/", "UserName": "dana", "UserId": "AIDAEXAMPLEDANA00001",
                "Arn": f"arn:aws:iam::{CLI_ACCOUNT}:user/dana", "CreateDate": "2021-03-04T09:30:00+00:00",
                "GroupList": [], "AttachedManagedPolicies": [], "Tags": []}],
            "GroupDetailList": [],
            "RoleDetailList": [{
                "Path": "/", "RoleName": "app", "RoleId": "AROAEXAMPLEAPP000001",
                "Arn": f"arn:aws:iam::{CLI_ACCOUNT}:role/app", "CreateDate": "2024-01-10T08:00:00+00:00",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                     "Action": "sts:AssumeRole"}]},
                "InstanceProfileList": [], "RolePolicyList": [],
                "AttachedManagedPolicies": [{"PolicyName": "AppReadAssets", "PolicyArn": app_policy}],
                "PermissionsBoundary": {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                        "PermissionsBoundaryArn": boundary},
                "Tags": [{"Key": "Environment", "Value": "prod"}], "RoleLastUsed": {}}],
            "Policies": [policy(app_policy, "AppReadAssets"), policy(boundary, "DeveloperBoundary")],
        },
        "get-account-summary.json": account_summary(mfa=1, root_keys=0),
        "get-credential-report.json": credential_report(
            report_row("<root_account>", mfa=True),
            report_row("dana", password=True, mfa=True, key_rotated=CLOCK - timedelta(days=20))),
        "list-buckets.json": {"Buckets": [{"Name": "acme-assets", "CreationDate": "2023-05-02T11:00:00+00:00"}],
                              "Owner": {"DisplayName": "acme", "ID": "7f0c" * 16}},
        "get-bucket-policy/acme-assets.json": {"Policy": json.dumps(bucket_policy)},
        "get-public-access-block/acme-assets.json": {"PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}},
        "get-bucket-acl/acme-assets.json": {
            "Owner": {"DisplayName": "acme", "ID": "7f0c" * 16},
            "Grants": [{"Grantee": {"DisplayName": "acme", "ID": "7f0c" * 16, "Type": "CanonicalUser"},
                        "Permission": "FULL_CONTROL"}]},
        "us-east-1/describe-security-groups.json": {"SecurityGroups": []},
    }


def write_folder(folder: Path, files: dict[str, Any]) -> Path:
    """Write the CLI outputs and stamp them all with CLOCK (the loader's audit clock is the newest mtime)."""
    stamp = CLOCK.timestamp()
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        os.utime(path, (stamp, stamp))
    return folder


def audit_folder(folder: Path) -> AuditReport:
    evidence, ignored = load_cli_folder(folder)
    assert ignored == []
    report = evaluate(evidence, f"AWS CLI folder {folder}")
    assert report.evaluated_at == CLOCK
    return report


def audit_folder_via_cli(folder: Path, out: Path) -> dict[str, Any]:
    assert main(["audit", "--from", str(folder), "--format", "json", "--output", str(out)]) == 0
    return dict(json.loads(out.read_text(encoding="utf-8")))


def test_clean_cli_folder_passes_root_checks_and_layer_7_reads_review(tmp_path: Path) -> None:
    report = audit_folder(write_folder(tmp_path, clean_account()))
    assert_passes(report, "iam-root-mfa", CLI_ROOT)
    assert_passes(report, "iam-root-access-keys", CLI_ROOT)
    assert_passes(report, "iam-console-mfa", f"arn:aws:iam::{CLI_ACCOUNT}:user/dana")
    assert_passes(report, "iam-access-key-age", f"arn:aws:iam::{CLI_ACCOUNT}:user/dana")
    assert [f for f in report.findings if f.layer == 7] == []
    # every other layer-7 check passed, but without list-analyzers.json the analyzer is not assessed
    layer7_checks = {c.meta.id for c in report.checks if c.meta.layer == 7}
    passed = {r.check_id for r in report.results if r.status is Status.PASS}
    assert layer7_checks - passed == {"iam-access-analyzer"}
    assert verdicts(report, "iam-access-analyzer") == {"us-east-1": {Status.NOT_ASSESSED}}
    (result,) = [r for c, r in report.not_assessed if c.meta.layer == 7]
    assert "list-analyzers.json" in result.reason
    row = layer(report, 7)
    assert row.status == "REVIEW"
    assert row.note == "1 not assessed"


def test_layer_7_reads_pass_once_access_analyzer_is_active(tmp_path: Path) -> None:
    files = {**clean_account(), "us-east-1/list-analyzers.json": analyzers("ACTIVE")}
    report = audit_folder(write_folder(tmp_path, files))
    assert_passes(report, "iam-access-analyzer", "us-east-1")
    assert layer(report, 7).status == "PASS"


def test_root_access_keys_from_cli_folder_are_critical(tmp_path: Path) -> None:
    files = clean_account()
    files["get-account-summary.json"] = account_summary(mfa=1, root_keys=1)
    out = audit_folder_via_cli(write_folder(tmp_path / "evidence", files), tmp_path / "report.json")
    found = [f for f in out["findings"] if f["check_id"] == "iam-root-access-keys"]
    assert [(f["resource"], f["severity"], f["detail"]) for f in found] == [
        (CLI_ROOT, "CRITICAL", "root user has access keys")]
    assert out["account_id"] == CLI_ACCOUNT
    assert not [f for f in out["findings"] if f["check_id"] == "iam-root-mfa"]


def test_access_key_age_uses_the_folder_clock(tmp_path: Path) -> None:
    files = clean_account()
    files["get-credential-report.json"] = credential_report(
        report_row("<root_account>", mfa=True),
        report_row("dana", password=True, mfa=True, key_rotated=CLOCK - timedelta(days=200)),
        report_row("erin", key_rotated=CLOCK - timedelta(days=30)),
        report_row("frank"))
    report = audit_folder(write_folder(tmp_path, files))
    f = finding(report, "iam-access-key-age", f"arn:aws:iam::{CLI_ACCOUNT}:user/dana")
    assert f.severity is Severity.HIGH
    rotated = (CLOCK - timedelta(days=200)).date().isoformat()
    assert f.detail == f"dana: key 1 last rotated {rotated}"
    assert f.found_at == CLOCK
    assert_passes(report, "iam-access-key-age", f"arn:aws:iam::{CLI_ACCOUNT}:user/erin")
    assert f"arn:aws:iam::{CLI_ACCOUNT}:user/frank" not in verdicts(report, "iam-access-key-age")  # no keys


def test_access_analyzer_from_cli_folder_per_region(tmp_path: Path) -> None:
    files = {
        **clean_account(),
        "us-east-1/list-analyzers.json": analyzers("ACTIVE"),
        "eu-west-1/describe-security-groups.json": {"SecurityGroups": []},
        "eu-west-1/list-analyzers.json": analyzers(),
        "ap-southeast-2/describe-security-groups.json": {"SecurityGroups": []},
        "ap-southeast-2/list-analyzers.json": analyzers("DISABLED"),
    }
    out = audit_folder_via_cli(write_folder(tmp_path / "evidence", files), tmp_path / "report.json")
    found = {f["resource"]: f for f in out["findings"] if f["check_id"] == "iam-access-analyzer"}
    assert set(found) == {"eu-west-1", "ap-southeast-2"}
    assert found["eu-west-1"]["severity"] == "MEDIUM"
    assert found["eu-west-1"]["region"] == "eu-west-1"
    assert found["eu-west-1"]["detail"] == "no active analyzer in eu-west-1"
    assert "--region eu-west-1" in found["eu-west-1"]["verify"]
    assert not [n for n in out["not_assessed"] if n["check_id"] == "iam-access-analyzer"]
    layer7 = next(row for row in out["layers"] if row["number"] == 7)
    assert layer7["status"] == "FAIL"


def test_s3_public_read_acl_is_public_getobject_unless_public_acls_are_ignored(aws: Emulator) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="acl-public")
    s3.put_bucket_acl(Bucket="acl-public", ACL="public-read")
    s3.create_bucket(Bucket="acl-private")
    s3.create_bucket(Bucket="acl-public-ignored")
    s3.put_bucket_acl(Bucket="acl-public-ignored", ACL="public-read")
    s3.put_public_access_block(Bucket="acl-public-ignored", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    report = aws.audit()
    assert failed(report, "s3-public-getobject") == {"acl-public": ["ACL grants READ to AllUsers"]}
    statuses = verdicts(report, "s3-public-getobject")
    assert statuses["acl-private"] == {Status.PASS} and statuses["acl-public-ignored"] == {Status.PASS}
    finding = next(f for f in report.findings if f.check_id == "s3-public-getobject")
    assert finding.severity is Severity.CRITICAL
