"""Layer 12 on AWS: is there a WAF in front of the internet-facing load balancers, and does it rate-limit?

The playbook's "AWS Shield + WAF validation": the DDoS row of its pass criteria expects WAF to block
volumetric traffic, which needs a web ACL on the load balancer and a rate-based rule in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from outsidein.aws.inventory import AwsInventory, RegionInventory
from outsidein.checks.aws_context import vpc_environment
from outsidein.checks.registry import region_check
from outsidein.models import Result, Severity, fail, not_assessed, passed

LOAD_BALANCERS = "elbv2.describe_load_balancers"
# AWS managed rule groups that answer floods themselves (a rate-based rule's job).
FLOOD_MANAGED_GROUPS = frozenset({"AWSManagedRulesAntiDDoSRuleSet"})


@region_check(
    id="waf-alb-unprotected", layer=12, severity=Severity.HIGH,
    title="Internet-facing load balancer without an AWS WAF web ACL",
    remediation="Associate a regional web ACL with a rate-based rule and the AWS managed common rule set "
                "(aws wafv2 associate-web-acl --web-acl-arn <acl-arn> --resource-arn <alb-arn>). If CloudFront "
                "fronts it, attach the ACL there and allow only CloudFront's prefix list in the ALB's security "
                "group.",
    verify="aws wafv2 get-web-acl-for-resource --region {region} --resource-arn {resource} "
           "--query WebACL.Name  # expect the ACL's name, not null",
    requires=(LOAD_BALANCERS,),
)
def alb_unprotected(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for lb in region.load_balancers:
        if lb.arn not in region.web_acls:
            continue  # internal, or a network/gateway load balancer (WAF attaches to ALBs)
        acl = region.web_acls[lb.arn]
        env = vpc_environment(region, inv, lb.vpc_id)
        if acl is None:
            reason = region.unread("wafv2.get_web_acl_for_resource", lb.arn)
            yield not_assessed("waf-alb-unprotected", lb.arn, reason, region=region.region)
        elif not acl:
            yield fail("waf-alb-unprotected", lb.arn,
                       f"internet-facing load balancer {lb.name} has no web ACL: nothing rate-limits or filters "
                       "requests before they reach the targets", region=region.region, environment=env)
        else:
            yield passed("waf-alb-unprotected", lb.arn, region=region.region, environment=env)


def _statements(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (statement type, statement) in a rule's statement tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("Statement") and isinstance(value, dict):
                yield key, value
            yield from _statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from _statements(item)


def rate_limiting(acl: dict[str, Any]) -> tuple[bool | None, str]:
    """(True/False, why) whether the ACL rate-limits; None when that is inside rule groups not read."""
    hidden: list[str] = []
    for rule in acl.get("Rules", []) or []:
        for kind, statement in _statements(rule.get("Statement", {})):
            if kind == "RateBasedStatement":
                return True, f"rate-based rule {rule.get('Name', '?')}"
            if kind == "ManagedRuleGroupStatement" and statement.get("Name") in FLOOD_MANAGED_GROUPS:
                return True, f"managed rule group {statement['Name']}"
            if kind == "RuleGroupReferenceStatement":
                arn = str(statement.get("ARN", ""))  # …:regional/rulegroup/<name>/<id>
                hidden.append(arn.split("/")[-2] if arn.count("/") >= 2 else str(rule.get("Name", "?")))
    if acl.get("PreProcessFirewallManagerRuleGroups") or acl.get("PostProcessFirewallManagerRuleGroups"):
        hidden.append("Firewall Manager rule groups")
    if hidden:
        return None, "no rate-based rule in the web ACL itself; it references rule groups whose rules were " \
                     f"not read: {', '.join(sorted(set(hidden)))}"
    return False, "no rate-based rule"


@region_check(
    id="waf-no-rate-based-rule", layer=12, severity=Severity.MEDIUM,
    title="Web ACL in front of an internet-facing load balancer has no rate-based rule",
    remediation="Add a rate-based rule (Block, aggregate by IP, a limit per 5 minutes sized to real traffic; a "
                "tighter scope-down for login and API paths) so floods are cut at the edge.",
    verify="aws wafv2 get-web-acl --region {region} --scope REGIONAL --arn {resource} "
           "--query \"WebACL.Rules[?Statement.RateBasedStatement].Name\"  # expect at least one rule",
    requires=(LOAD_BALANCERS,),
)
def no_rate_based_rule(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    fronted: dict[str, tuple[dict[str, Any], list[str], str | None]] = {}
    for lb in region.load_balancers:
        acl = region.web_acls.get(lb.arn)
        if acl and acl.get("ARN"):
            entry = fronted.setdefault(str(acl["ARN"]), (acl, [], vpc_environment(region, inv, lb.vpc_id)))
            entry[1].append(lb.name)
    for arn, (acl, balancers, env) in sorted(fronted.items()):
        limited, why = rate_limiting(acl)
        if limited is None:
            yield not_assessed("waf-no-rate-based-rule", arn, why, region=region.region)
        elif limited:
            yield passed("waf-no-rate-based-rule", arn, region=region.region, environment=env)
        else:
            yield fail("waf-no-rate-based-rule", arn,
                       f"web ACL {acl.get('Name', '?')} ({why}) guards {', '.join(sorted(balancers))}: a flood from "
                       "one address is passed through to the targets", region=region.region, environment=env)
