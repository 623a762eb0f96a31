"""Layer 12 on AWS: WAF in front of internet-facing load balancers, with a rate-based rule (real moto server)."""

from __future__ import annotations

from typing import Any

import pytest

from outsidein.audit import AuditReport, evaluate
from outsidein.checks.waf import rate_limiting
from outsidein.models import Status

REGION = "us-east-1"


def _visibility(name: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}


RATE = {"Name": "flood", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": _visibility("flood"),
        "Statement": {"RateBasedStatement": {"Limit": 500, "AggregateKeyType": "IP", "ScopeDownStatement": {
            "ByteMatchStatement": {"SearchString": "/login", "FieldToMatch": {"UriPath": {}},
                                   "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
                                   "PositionalConstraint": "STARTS_WITH"}}}}}
COMMON = {"Name": "common", "Priority": 5, "OverrideAction": {"None": {}}, "VisibilityConfig": _visibility("common"),
          "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}}}


class Edge:
    """A VPC with two public subnets where the tests put load balancers and web ACLs."""

    def __init__(self, aws: Any) -> None:
        self.aws = aws
        ec2 = aws.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16", TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "Environment", "Value": "prod"}]}])["Vpc"]["VpcId"]
        self.subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.60.{i}.0/24",
                                          AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
                        for i, zone in enumerate("ab")]
        self.elbv2, self.waf = aws.client("elbv2"), aws.client("wafv2")

    def alb(self, name: str, scheme: str = "internet-facing", kind: str = "application") -> str:
        created = self.elbv2.create_load_balancer(Name=name, Subnets=self.subnets, Scheme=scheme, Type=kind)
        return str(created["LoadBalancers"][0]["LoadBalancerArn"])

    def acl(self, name: str, *rules: dict[str, Any], guards: str) -> str:
        arn = str(self.waf.create_web_acl(Name=name, Scope="REGIONAL", DefaultAction={"Allow": {}},
                                          VisibilityConfig=_visibility(name), Rules=list(rules))["Summary"]["ARN"])
        self.waf.associate_web_acl(WebACLArn=arn, ResourceArn=guards)
        return arn


def _results(report: AuditReport, check_id: str) -> dict[str, Any]:
    return {r.resource: r for r in report.results if r.check_id == check_id}


@pytest.fixture
def edge(aws: Any) -> Edge:
    return Edge(aws)


def test_an_internet_facing_alb_without_web_acl_fails_and_one_with_passes(aws: Any, edge: Edge) -> None:
    bare, guarded = edge.alb("bare"), edge.alb("guarded")
    internal, network = edge.alb("inside", scheme="internal"), edge.alb("nlb", kind="network")
    edge.acl("guarded-edge", RATE, COMMON, guards=guarded)
    results = _results(aws.audit(), "waf-alb-unprotected")
    assert results[bare].status is Status.FAIL and "bare has no web ACL" in results[bare].detail
    assert results[bare].environment == "prod"
    assert results[guarded].status is Status.PASS
    assert internal not in results and network not in results  # WAF guards the public ALBs


def test_a_web_acl_without_rate_based_rule_fails_on_the_acl(aws: Any, edge: Edge) -> None:
    limited = edge.acl("limited", RATE, guards=edge.alb("api"))
    unlimited = edge.acl("unlimited", COMMON, guards=edge.alb("admin"))
    report = aws.audit()
    results = _results(report, "waf-no-rate-based-rule")
    assert results[limited].status is Status.PASS
    assert results[unlimited].status is Status.FAIL and "guards admin" in results[unlimited].detail
    finding = next(f for f in report.findings if f.check_id == "waf-no-rate-based-rule")
    assert finding.layer == 12 and finding.resource == unlimited and f"--arn {unlimited}" in finding.verify


def test_rate_limits_hidden_in_a_rule_group_are_not_assessed(aws: Any, edge: Edge) -> None:
    group = edge.waf.create_rule_group(Name="shared-limits", Scope="REGIONAL", Capacity=50,
                                       VisibilityConfig=_visibility("shared"), Rules=[])["Summary"]["ARN"]
    reference = {"Name": "shared", "Priority": 1, "OverrideAction": {"None": {}},
                 "VisibilityConfig": _visibility("shared-ref"),
                 "Statement": {"RuleGroupReferenceStatement": {"ARN": group}}}
    acl = edge.acl("via-group", reference, guards=edge.alb("portal"))
    result = _results(aws.audit(), "waf-no-rate-based-rule")[acl]
    assert result.status is Status.NOT_ASSESSED and "shared-limits" in result.reason


def test_an_unread_web_acl_is_not_assessed(aws: Any, edge: Edge) -> None:
    alb = edge.alb("public")
    evidence = aws.collect()
    evidence.put_error(REGION, "wafv2.get_web_acl_for_resource", "access denied: wafv2:GetWebACLForResource "
                       "(AccessDeniedException)", alb)
    result = _results(evaluate(evidence), "waf-alb-unprotected")[alb]
    assert result.status is Status.NOT_ASSESSED and "access denied" in result.reason


def test_rate_limiting_reads_nested_and_managed_flood_rules() -> None:
    nested = {"Rules": [{"Name": "n", "Statement": {"AndStatement": {"Statements": [
        {"RateBasedStatement": {"Limit": 100, "AggregateKeyType": "IP"}}]}}}]}
    anti_ddos = {"Rules": [{"Name": "ddos", "Statement": {"ManagedRuleGroupStatement": {
        "VendorName": "AWS", "Name": "AWSManagedRulesAntiDDoSRuleSet"}}}]}
    assert rate_limiting(nested)[0] is True
    assert rate_limiting(anti_ddos) == (True, "managed rule group AWSManagedRulesAntiDDoSRuleSet")
    assert rate_limiting({"Rules": [COMMON]}) == (False, "no rate-based rule")
    assert rate_limiting({"Rules": [], "PostProcessFirewallManagerRuleGroups": [{"Name": "fms"}]})[0] is None


def test_a_folder_of_cli_outputs_is_judged_the_same(aws: Any, edge: Edge, tmp_path: Any) -> None:
    import json

    from outsidein.aws.cli_folder import load_cli_folder

    bare, guarded, unsaved = edge.alb("bare"), edge.alb("guarded"), edge.alb("unsaved")
    edge.acl("guarded-edge", COMMON, guards=guarded)

    def save(name: str, data: Any) -> None:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data.pop("ResponseMetadata", None)
        path.write_text(json.dumps(data, default=str))

    save("describe-load-balancers.json", edge.elbv2.describe_load_balancers())
    save("get-web-acl-for-resource/bare.json", edge.waf.get_web_acl_for_resource(ResourceArn=bare))  # {}
    save("get-web-acl-for-resource/guarded.json", edge.waf.get_web_acl_for_resource(ResourceArn=guarded))
    evidence, _ = load_cli_folder(tmp_path, regions_hint=(REGION,))
    report = evaluate(evidence)
    alb = _results(report, "waf-alb-unprotected")
    assert alb[bare].status is Status.FAIL and alb[guarded].status is Status.PASS
    assert alb[unsaved].status is Status.NOT_ASSESSED and "get-web-acl-for-resource/unsaved.json" in alb[unsaved].reason
    rate = _results(report, "waf-no-rate-based-rule")
    assert [r.status for r in rate.values()] == [Status.FAIL]
