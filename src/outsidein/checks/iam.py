"""Layer 7: IAM roles and policies. If an attacker is inside, what can they impersonate?"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from outsidein.aws.inventory import AwsInventory, IamPrincipal, RegionInventory
from outsidein.aws.policy import (
    BroadGrant,
    PolicyParseError,
    broad_grants,
    parse_document,
    public_grants,
    trust_grants,
)
from outsidein.checks.aws_context import environment
from outsidein.checks.registry import account_check, region_check
from outsidein.evidence import GLOBAL
from outsidein.models import Result, Severity, fail, not_assessed, passed

AUTH_DETAILS = "iam.get_account_authorization_details"
CREDENTIAL_REPORT = "iam.get_credential_report"
MAX_KEY_AGE = timedelta(days=90)


def _env(principal: IamPrincipal, inv: AwsInventory) -> str | None:
    return environment(principal.tags, inv)


def _policy_documents(inv: AwsInventory) -> Iterator[tuple[str, str, object, list[IamPrincipal]]]:
    """(resource, label, document, principals it governs) for every policy that is in effect."""
    attached: dict[str, list[IamPrincipal]] = {}
    for principal in inv.global_.principals:
        for arn in principal.attached_policy_arns:
            attached.setdefault(arn, []).append(principal)
        for name, doc in principal.inline_policies.items():
            yield principal.arn, f"inline policy {name}", doc, [principal]
    for arn, principals in attached.items():
        policy = inv.global_.policies.get(arn)
        if policy is not None:
            yield arn, f"policy {policy.name}", policy.document, principals
        else:  # attached, but its document is not in the evidence: never read as harmless
            yield arn, f"policy {arn.rsplit('/', 1)[-1]}", None, principals


def _grants(inv: AwsInventory, wanted: str) -> Iterator[Result]:
    """Findings for broad grants: wanted "escalation" (CRITICAL check) or "service" (HIGH check)."""
    check_id = "iam-wildcard-admin" if wanted == "escalation" else "iam-service-wildcard"
    for resource, label, doc, governed in _policy_documents(inv):
        principals = [p for p in governed if not p.service_linked]  # AWS owns service-linked roles' grants
        if not principals:
            continue
        if doc is None:
            yield not_assessed(check_id, resource, f"{label} is attached to {principals[0].arn} but its document "
                               "is not in the evidence (GetAccountAuthorizationDetails did not list it)",
                               region=GLOBAL)
            continue
        try:
            grants: list[BroadGrant] = broad_grants(parse_document(doc))  # type: ignore[arg-type]
        except PolicyParseError as exc:
            yield not_assessed(check_id, resource, f"{label}: unreadable policy document: {exc}", region=GLOBAL)
            continue
        if wanted == "escalation":
            # Action "*", any NotAction allow on "*", and wildcards over services that can grant more.
            hits = [g for g in grants if g.privilege_escalation or g.kind in ("full-admin", "not-action")]
        else:
            hits = [g for g in grants if g.kind == "service-wildcard" and not g.privilege_escalation]
        envs = sorted({e for p in principals if (e := _env(p, inv))})
        env = "+".join(envs) or None
        if hits:
            who = ", ".join(sorted(p.arn.rsplit(":", 1)[-1] for p in principals)[:6])
            what = "; ".join(sorted({g.detail for g in hits}))
            yield fail(check_id, resource, f"{label}: {what} (attached to {who})", region=GLOBAL, environment=env)
        else:
            yield passed(check_id, resource, region=GLOBAL, environment=env)


@account_check(
    id="iam-wildcard-admin", layer=7, severity=Severity.CRITICAL,
    title="Policy grants wildcard actions on wildcard resources (full or escalatable admin)",
    remediation="Replace the grant with the verbs and resource ARNs the principal needs (see "
                "aws iam generate-service-last-accessed-details); never Action \"*\" (or NotAction, or iam:*) "
                "on Resource \"*\".",
    verify="aws iam get-policy-version --policy-arn {resource} --version-id $(aws iam get-policy --policy-arn "
           "{resource} --query Policy.DefaultVersionId --output text) | jq '.PolicyVersion.Document.Statement[] "
           "| select(.Effect==\"Allow\" and (.Action==\"*\" or .NotAction != null))'  # expect nothing "
           "(inline: aws iam get-role-policy / get-user-policy)",
    requires=(AUTH_DETAILS,),
)
def wildcard_admin(inv: AwsInventory) -> Iterator[Result]:
    yield from _grants(inv, "escalation")


@account_check(
    id="iam-service-wildcard", layer=7, severity=Severity.HIGH,
    title="Policy grants every action of a service on every resource",
    remediation="Scope service roles to specific resource ARNs and the actions they use "
                "(e.g. s3:GetObject on arn:aws:s3:::bucket/prefix/*).",
    verify="aws iam get-policy-version --policy-arn {resource} --version-id <default version> | jq "
           "'.PolicyVersion.Document.Statement[] | select(.Effect==\"Allow\") | .Action'  # expect no \"svc:*\"",
    requires=(AUTH_DETAILS,),
)
def service_wildcard(inv: AwsInventory) -> Iterator[Result]:
    yield from _grants(inv, "service")


def _root_arn(inv: AwsInventory) -> str:
    return f"arn:aws:iam::{inv.account_id or inv.global_.account_id or 'unknown'}:root"


@account_check(
    id="iam-root-mfa", layer=7, severity=Severity.CRITICAL,
    title="Root account has no MFA",
    remediation="Enable a hardware or virtual MFA device on the root user and keep it out of daily use.",
    verify="aws iam get-account-summary --query SummaryMap.AccountMFAEnabled  # expect 1",
    requires=(),
)
def root_mfa(inv: AwsInventory) -> Iterator[Result]:
    g = inv.global_
    root = next((r for r in g.credential_rows if r.is_root), None)
    if "AccountMFAEnabled" in g.account_summary:
        enabled = g.account_summary["AccountMFAEnabled"] == 1
    elif root is not None:
        enabled = root.mfa_active
    else:
        reasons = [g.missing.get("iam.get_account_summary"), g.missing.get(CREDENTIAL_REPORT)]
        yield not_assessed("iam-root-mfa", _root_arn(inv),
                           "; ".join(r for r in reasons if r) or "no root MFA status in the evidence", region=GLOBAL)
        return
    if enabled:
        yield passed("iam-root-mfa", _root_arn(inv), region=GLOBAL)
    else:
        yield fail("iam-root-mfa", _root_arn(inv), "root user has no MFA device", region=GLOBAL)


@account_check(
    id="iam-root-access-keys", layer=7, severity=Severity.CRITICAL,
    title="Root account has access keys",
    remediation="Delete the root user's access keys; use IAM roles for automation.",
    verify="aws iam get-account-summary --query SummaryMap.AccountAccessKeysPresent  # expect 0",
    requires=(),
)
def root_access_keys(inv: AwsInventory) -> Iterator[Result]:
    g = inv.global_
    root = next((r for r in g.credential_rows if r.is_root), None)
    if "AccountAccessKeysPresent" in g.account_summary:
        present = g.account_summary["AccountAccessKeysPresent"] > 0
    elif root is not None:
        present = any(active for _, active, _ in root.access_keys)
    else:
        reasons = [g.missing.get("iam.get_account_summary"), g.missing.get(CREDENTIAL_REPORT)]
        yield not_assessed("iam-root-access-keys", _root_arn(inv),
                           "; ".join(r for r in reasons if r) or "no root key status in the evidence",
                           region=GLOBAL)
        return
    if present:
        yield fail("iam-root-access-keys", _root_arn(inv), "root user has access keys", region=GLOBAL)
    else:
        yield passed("iam-root-access-keys", _root_arn(inv), region=GLOBAL)


@account_check(
    id="iam-console-mfa", layer=7, severity=Severity.HIGH,
    title="Console user without MFA",
    remediation="Require MFA for every console user (assign a device; deny actions without "
                "aws:MultiFactorAuthPresent).",
    verify="aws iam list-mfa-devices --user-name $(basename {resource}) --query \"MFADevices[].SerialNumber\"  "
           "# expect at least one",
    requires=(CREDENTIAL_REPORT,),
)
def console_mfa(inv: AwsInventory) -> Iterator[Result]:
    for row in inv.global_.credential_rows:
        if row.is_root:
            continue
        principal = inv.global_.principal("user", row.user)
        env = _env(principal, inv) if principal else None
        if row.password_enabled and not row.mfa_active:
            yield fail("iam-console-mfa", row.arn, f"{row.user} signs in to the console without MFA",
                       region=GLOBAL, environment=env)
        else:
            yield passed("iam-console-mfa", row.arn, region=GLOBAL, environment=env)


@account_check(
    id="iam-access-key-age", layer=7, severity=Severity.HIGH,
    title="Access key not rotated in 90 days",
    remediation="Rotate the key (create a new one, deploy it, deactivate and delete the old one), or replace it "
                "with a role.",
    verify="aws iam list-access-keys --user-name $(basename {resource}) --query "
           "\"AccessKeyMetadata[?Status=='Active'].CreateDate\"  # expect dates within 90 days",
    requires=(CREDENTIAL_REPORT,),
)
def access_key_age(inv: AwsInventory) -> Iterator[Result]:
    for row in inv.global_.credential_rows:
        principal = inv.global_.principal("user", row.user)
        env = _env(principal, inv) if principal else None
        resource = _root_arn(inv) if row.is_root else row.arn
        old = [(slot, rotated) for slot, active, rotated in row.access_keys
               if active and rotated is not None and inv.collected_at - rotated > MAX_KEY_AGE]
        if old:
            keys = ", ".join(f"key {slot} last rotated {rotated.date().isoformat()}" for slot, rotated in old)
            yield fail("iam-access-key-age", resource, f"{row.user}: {keys}", region=GLOBAL, environment=env)
        elif any(active for _, active, _ in row.access_keys):
            yield passed("iam-access-key-age", resource, region=GLOBAL, environment=env)


@account_check(
    id="iam-cross-account-trust", layer=7, severity=Severity.HIGH,
    title="Role trusts another account (or anyone) without an ExternalId or other condition",
    remediation="Require sts:ExternalId (StringEquals) for third-party accounts, aws:PrincipalOrgID for your "
                "organisation, and a :sub condition for OIDC providers; never trust \"*\" unconditionally.",
    verify="aws iam get-role --role-name $(basename {resource}) --query Role.AssumeRolePolicyDocument  "
           "# expect a Condition with sts:ExternalId on every foreign principal",
    requires=(AUTH_DETAILS,),
)
def cross_account_trust(inv: AwsInventory) -> Iterator[Result]:
    account = inv.account_id or inv.global_.account_id or ""
    for role in (p for p in inv.global_.principals if p.kind == "role" and not p.service_linked):
        env = _env(role, inv)
        try:
            grants = trust_grants(role.trust_policy, account)
        except PolicyParseError as exc:
            yield not_assessed("iam-cross-account-trust", role.arn, f"unreadable trust policy: {exc}",
                               region=GLOBAL)
            continue
        problems: list[tuple[Severity, str]] = []
        for g in grants:
            if g.kind == "anyone" and not g.restricting_conditions:
                problems.append((Severity.CRITICAL, "trusts any AWS principal (\"*\") with no condition"))
            elif g.kind == "cross-account" and not g.has_external_id and not g.restricting_conditions:
                problems.append((Severity.HIGH, f"trusts account {g.account or g.principal} without "
                                                "sts:ExternalId"))
            elif g.kind == "federated" and "oidc-provider/" in g.principal and not any(
                    c.endswith(":sub") for c in g.restricting_conditions):
                problems.append((Severity.HIGH, f"trusts {g.principal.rsplit('/', 1)[-1]} tokens without a "
                                                ":sub condition"))
        if problems:
            worst = max((s for s, _ in problems), key=lambda s: s.rank)
            yield fail("iam-cross-account-trust", role.arn, "; ".join(sorted({t for _, t in problems})),
                       region=GLOBAL, environment=env, severity=worst)
        else:
            yield passed("iam-cross-account-trust", role.arn, region=GLOBAL, environment=env)


@account_check(
    id="iam-inline-policy", layer=7, severity=Severity.MEDIUM,
    title="Inline policies (invisible in policy-version history)",
    remediation="Move each inline policy to a customer-managed policy named AppName-Tier-Action and attach it.",
    verify="aws iam list-role-policies --role-name $(basename {resource})  # expect PolicyNames: [] "
           "(users: list-user-policies, groups: list-group-policies)",
    requires=(AUTH_DETAILS,),
)
def inline_policy(inv: AwsInventory) -> Iterator[Result]:
    for principal in inv.global_.principals:
        if principal.service_linked:
            continue
        env = _env(principal, inv)
        if principal.inline_policies:
            names = ", ".join(sorted(principal.inline_policies))
            yield fail("iam-inline-policy", principal.arn, f"{principal.kind} {principal.name}: {names}",
                       region=GLOBAL, environment=env)
        else:
            yield passed("iam-inline-policy", principal.arn, region=GLOBAL, environment=env)


@account_check(
    id="iam-permission-boundary", layer=7, severity=Severity.MEDIUM,
    title="Role without a permission boundary",
    remediation="Attach a permissions boundary to every developer-created role "
                "(aws iam put-role-permissions-boundary --role-name <role> --permissions-boundary <arn>).",
    verify="aws iam get-role --role-name $(basename {resource}) --query "
           "Role.PermissionsBoundary.PermissionsBoundaryArn  # expect an ARN",
    requires=(AUTH_DETAILS,),
)
def permission_boundary(inv: AwsInventory) -> Iterator[Result]:
    for role in (p for p in inv.global_.principals if p.kind == "role" and not p.service_linked):
        env = _env(role, inv)
        if role.permission_boundary:
            yield passed("iam-permission-boundary", role.arn, region=GLOBAL, environment=env)
        else:
            yield fail("iam-permission-boundary", role.arn, f"role {role.name} has no permission boundary",
                       region=GLOBAL, environment=env)


@region_check(
    id="iam-access-analyzer", layer=7, severity=Severity.MEDIUM,
    title="IAM Access Analyzer is not enabled in the region",
    remediation="aws accessanalyzer create-analyzer --analyzer-name account-analyzer --type ACCOUNT "
                "--region <region> (in every region).",
    verify="aws accessanalyzer list-analyzers --region {region} --query \"analyzers[?status=='ACTIVE'].arn\"  "
           "# expect at least one",
    requires=("accessanalyzer.list_analyzers",),
)
def access_analyzer(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    if any(str(a.get("status", "")).upper() == "ACTIVE" for a in region.analyzers):
        yield passed("iam-access-analyzer", region.region, region=region.region)
    else:
        yield fail("iam-access-analyzer", region.region, f"no active analyzer in {region.region}",
                   region=region.region)


PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


@account_check(
    id="s3-public-getobject", layer=7, severity=Severity.CRITICAL,
    title="S3 bucket allows public s3:GetObject (bucket policy or ACL)",
    remediation="Remove the public statement (or restrict it with aws:SourceVpce / aws:PrincipalOrgID) and any "
                "AllUsers/AuthenticatedUsers ACL grant, and turn on all four S3 Block Public Access settings; "
                "serve public assets through CloudFront with OAC.",
    verify="aws s3api get-bucket-policy-status --bucket {resource} --query PolicyStatus.IsPublic  # expect false; "
           "aws s3api get-bucket-acl --bucket {resource} --query \"Grants[?contains(Grantee.URI || '', "
           "'global/A')]\"  # expect []",
    requires=("s3.list_buckets",),
)
def s3_public_getobject(inv: AwsInventory) -> Iterator[Result]:
    account_pab = inv.global_.account_public_access_block or {}
    for bucket in inv.global_.buckets:
        pab = bucket.public_access_block or {}
        problems: list[str] = []
        unknown: list[str] = []
        if bucket.policy_error:
            unknown.append(bucket.policy_error)
        else:
            try:
                grants = public_grants(bucket.policy, "s3:GetObject")
            except PolicyParseError as exc:
                grants = []
                unknown.append(f"unreadable bucket policy: {exc}")
            # Block Public Access (bucket or account) makes a public statement ineffective.
            if grants and not (pab.get("RestrictPublicBuckets") or account_pab.get("RestrictPublicBuckets")):
                problems += sorted({g.detail for g in grants})
        if bucket.acl_error:
            unknown.append(bucket.acl_error)
        elif not (pab.get("IgnorePublicAcls") or account_pab.get("IgnorePublicAcls")):
            problems += sorted({f"ACL grants {permission} to {grantee.rsplit('/', 1)[-1]}"
                                for grantee, permission in bucket.acl_grants
                                if grantee in PUBLIC_GRANTEES and permission in ("READ", "FULL_CONTROL")})
        if problems:
            yield fail("s3-public-getobject", bucket.name, "; ".join(problems), region=GLOBAL)
        elif unknown:
            yield not_assessed("s3-public-getobject", bucket.name, "; ".join(unknown), region=GLOBAL)
        else:
            yield passed("s3-public-getobject", bucket.name, region=GLOBAL)
