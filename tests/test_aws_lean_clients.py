"""The collector's lighter boto3 clients: cut service models, streamed XML lists, kept evidence.

Against the real moto server: every streamed response must equal botocore's own parse (less the
empty lists inside items), the cut models must still carry every operation the code calls and
resolve the same endpoints, and the audit must keep what the checks need.
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.parsers import ResponseParserError

from outsidein.allocator import limit_malloc_arenas
from outsidein.audit import evaluate
from outsidein.aws.reads import reduce_listed_item
from outsidein.aws.session import collector_operations, lean_session
from outsidein.aws.slim_models import CREDENTIAL_SERVICES
from outsidein.aws.stream_parse import StreamingEC2QueryParser, StreamingParserFactory
from outsidein.models import Status

SRC = Path(__file__).resolve().parents[1] / "src" / "outsidein"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
UNATTACHED_AWS_POLICY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


def _without_empty_lists(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_empty_lists(v) for k, v in node.items() if v != []}
    if isinstance(node, list):
        return [_without_empty_lists(v) for v in node]
    return node


def _streaming_session(aws: Any, **factory: Any) -> boto3.Session:
    core = botocore.session.Session()
    core.register_component("response_parser_factory", StreamingParserFactory(stream_threshold=0, **factory))
    return boto3.Session(botocore_session=core, region_name="us-east-1",
                         aws_access_key_id="AKIAEMULATOREXAMPLE1", aws_secret_access_key="x")


def _seed(aws: Any) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
    groups: list[str] = []
    for i in range(12):
        group = ec2.create_security_group(
            GroupName=f"svc-{i}", Description=f"service {i}", VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                {"Key": "Environment", "Value": "prod"}, {"Key": "Name", "Value": f"svc-{i}"}]}],
        )["GroupId"]
        permissions: list[dict[str, Any]] = [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
             "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "web"}]},
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": f"10.8.{i}.0/24", "Description": "tier & <peers>"}]},
        ]
        if groups:
            permissions.append({"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                                "UserIdGroupPairs": [{"GroupId": groups[-1], "Description": "app"}]})
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=permissions)
        groups.append(group)
    ec2.create_network_interface(SubnetId=subnet, Groups=groups[:3], Description="app eni")
    image = ec2.register_image(Name="lean-test", Architecture="x86_64", RootDeviceName="/dev/xvda",
                               VirtualizationType="hvm",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}])["ImageId"]
    for count in (1, 3):  # two reservations: lists of instances inside a list of reservations
        ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=count, MaxCount=count, SubnetId=subnet,
                          SecurityGroupIds=groups[:2], TagSpecifications=[
                              {"ResourceType": "instance", "Tags": [{"Key": "Environment", "Value": "prod"}]}])
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    iam = aws.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for i in range(8):
        iam.create_role(RoleName=f"role-{i}", AssumeRolePolicyDocument=trust, Tags=[{"Key": "team", "Value": "a"}])
        iam.put_role_policy(RoleName=f"role-{i}", PolicyName="inline", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    iam.attach_role_policy(RoleName="role-0", PolicyArn=ADMIN)
    iam.create_policy(PolicyName="unattached-customer", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}))


CALLS = [
    ("ec2", "describe_security_groups", {}, "SecurityGroups"),
    ("ec2", "describe_subnets", {}, "Subnets"),
    ("ec2", "describe_network_interfaces", {}, "NetworkInterfaces"),
    ("ec2", "describe_route_tables", {}, "RouteTables"),
    ("ec2", "describe_vpcs", {}, "Vpcs"),
    ("ec2", "describe_instances", {}, "Reservations"),
    ("iam", "get_account_authorization_details", {}, "RoleDetailList"),
    ("iam", "list_roles", {"MaxItems": 3}, "Roles"),  # a truncated page: IsTruncated and Marker survive
]


@pytest.mark.parametrize(("service", "operation", "params", "key"), CALLS, ids=[c[1] for c in CALLS])
def test_streamed_response_is_botocores_less_empty_lists(aws: Any, service: str, operation: str,
                                                         params: dict[str, Any], key: str) -> None:
    _seed(aws)
    plain = getattr(aws.client(service), operation)(**params)
    streamed = getattr(_streaming_session(aws).client(service, endpoint_url=aws.endpoint_url), operation)(**params)
    for response in (plain, streamed):
        response.pop("ResponseMetadata")
    assert streamed[key], f"{operation} returned no {key}: the comparison would prove nothing"
    assert streamed == {k: _without_empty_lists(v) if isinstance(v, list) else v for k, v in plain.items()}
    if operation == "list_roles":
        assert streamed["IsTruncated"] is True and streamed["Marker"]


def test_streamed_items_share_equal_strings(aws: Any) -> None:
    _seed(aws)
    groups = _streaming_session(aws).client("ec2", endpoint_url=aws.endpoint_url).describe_security_groups()
    owners = {id(g["OwnerId"]) for g in groups["SecurityGroups"]}
    assert len(groups["SecurityGroups"]) > 10 and len(owners) == 1


def test_a_truncated_body_is_a_parser_error_not_a_partial_answer(aws: Any) -> None:
    _seed(aws)
    bodies: list[bytes] = []
    client = aws.client("ec2")
    client.meta.events.register("before-parse.ec2.DescribeSecurityGroups",
                                lambda response_dict, **_: bodies.append(response_dict["body"]))
    expected = len(client.describe_security_groups()["SecurityGroups"])
    shape = client.meta.service_model.operation_model("DescribeSecurityGroups").output_shape
    parser = StreamingParserFactory(stream_threshold=0).create_parser("ec2")
    assert isinstance(parser, StreamingEC2QueryParser)
    whole = parser.parse({"body": bodies[0], "headers": {}, "status_code": 200}, shape)
    assert len(whole["SecurityGroups"]) == expected >= 12
    with pytest.raises(ResponseParserError, match="invalid XML"):
        parser.parse({"body": bodies[0][: len(bodies[0]) // 2], "headers": {}, "status_code": 200}, shape)


def test_the_collected_policies_are_those_that_grant_something(aws: Any) -> None:
    _seed(aws)
    everything = {p["Arn"] for p in aws.client("iam").get_account_authorization_details()["Policies"]}
    assert UNATTACHED_AWS_POLICY in everything  # moto lists every AWS-managed policy, like AWS
    evidence = aws.collect()
    kept = {p["Arn"] for p in evidence.get("global", "iam.get_account_authorization_details").data["Policies"]}
    assert ADMIN in kept and UNATTACHED_AWS_POLICY not in kept
    assert any(arn.endswith(":policy/unattached-customer") for arn in kept)
    report = aws.audit()
    assert any(f.check_id == "iam-wildcard-admin" and f.resource == ADMIN and "role/role-0" in f.detail
               for f in report.findings)


def test_an_attached_policy_missing_from_the_evidence_is_not_assessed(aws: Any) -> None:
    _seed(aws)
    evidence = aws.collect()
    details = evidence.get("global", "iam.get_account_authorization_details").data
    details["Policies"] = [p for p in details["Policies"] if p["Arn"] != ADMIN]
    results = [r for r in evaluate(evidence).results if r.check_id == "iam-wildcard-admin" and r.resource == ADMIN]
    assert [r.status for r in results] == [Status.NOT_ASSESSED]
    assert "role/role-0" in results[0].reason and "not in the evidence" in results[0].reason


def test_reduce_listed_item_rules() -> None:
    gaad = "GetAccountAuthorizationDetailsResponse"
    versions = [{"VersionId": "v1", "IsDefaultVersion": False}, {"VersionId": "v2", "IsDefaultVersion": True}]
    boundary = {"Arn": "arn:aws-us-gov:iam::aws:policy/PowerUserAccess", "AttachmentCount": 0,
                "PermissionsBoundaryUsageCount": 2, "PolicyVersionList": list(versions)}
    kept = reduce_listed_item(gaad, "Policies", boundary)
    assert kept is not None
    assert [v["VersionId"] for v in kept["PolicyVersionList"]] == ["v2"]
    assert reduce_listed_item(gaad, "Policies", {"Arn": UNATTACHED_AWS_POLICY, "AttachmentCount": 0}) is None
    unknown = {"Arn": UNATTACHED_AWS_POLICY}  # no AttachmentCount: kept, never guessed unattached
    assert reduce_listed_item(gaad, "Policies", unknown) == unknown
    customer = {"Arn": "arn:aws:iam::123456789012:policy/x", "AttachmentCount": 0}
    assert reduce_listed_item(gaad, "Policies", customer) == customer
    group = {"GroupId": "sg-1"}
    assert reduce_listed_item("DescribeSecurityGroupsResult", "SecurityGroups", group) == group


def _called_operations() -> dict[str, set[str]]:
    """Operations the source calls on collector clients, read from the code (not from the reads table)."""
    found: dict[str, set[str]] = {"s3": set(), "iam": set()}
    for path in (SRC / "backups" / "aws.py", SRC / "backups" / "drill.py"):
        text = path.read_text(encoding="utf-8")
        found["s3"] |= set(re.findall(r"\bclient\.([a-z][a-z0-9_]+)\(", text)) - {"get_paginator"}
        found["s3"] |= set(re.findall(r'get_paginator\("([a-z0-9_]+)"\)', text))
    found["iam"] |= set(re.findall(r"\biam\.([a-z][a-z0-9_]+)\(", (SRC / "aws" / "collect.py").read_text("utf-8")))
    return found


def test_cut_models_keep_every_operation_the_code_calls() -> None:
    operations = collector_operations()
    called = _called_operations()
    assert {"get_object", "list_objects_v2"} <= called["s3"] and "generate_credential_report" in called["iam"]
    session = lean_session(boto3.Session(aws_access_key_id="A", aws_secret_access_key="x", region_name="eu-west-1"))
    for service in sorted(operations):
        client = session.client(service)
        names = set(client.meta.service_model.operation_names)
        assert len(names) <= len(operations[service]) + 1, f"{service}: the model was not cut"
        for operation in operations[service] | called.get(service, set()):
            assert hasattr(client, operation), f"{service}.{operation} missing from the cut model"
    full = boto3.Session(region_name="eu-west-1").client("ec2")
    assert hasattr(full, "create_security_group")  # other sessions keep botocore's whole model


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"])
def test_cut_endpoint_table_resolves_the_same_endpoints(region: str) -> None:
    source = boto3.Session(aws_access_key_id="A", aws_secret_access_key="x", region_name=region)
    lean = lean_session(source)
    for service in sorted(collector_operations().keys() | (CREDENTIAL_SERVICES - {"signin", "sso-oidc"})):
        expected = source.client(service, region_name=region)
        got = lean.client(service, region_name=region)
        assert got.meta.endpoint_url == expected.meta.endpoint_url, service
        assert got.meta.region_name == expected.meta.region_name, service


def test_lean_session_uses_the_source_credentials_and_leaves_it_whole() -> None:
    source = boto3.Session(aws_access_key_id="AKIASOURCEEXAMPLE01", aws_secret_access_key="s3cr3t",
                           aws_session_token="token", region_name="eu-west-1")
    lean = lean_session(source)
    credentials = lean.get_credentials()
    assert credentials is not None
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (
        "AKIASOURCEEXAMPLE01", "s3cr3t", "token")
    assert lean.region_name == "eu-west-1"
    assert not hasattr(lean.client("ec2"), "create_security_group")
    assert hasattr(source.client("ec2"), "create_security_group")


def test_malloc_arenas_are_limited_where_glibc_runs() -> None:
    assert limit_malloc_arenas() is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


def test_cyclic_gc_pauses_nest_and_restore_the_previous_state() -> None:
    import gc

    from outsidein.allocator import cyclic_gc_paused

    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # a collector someone else turned off stays off
    finally:
        gc.enable()


def test_changed_botocore_internals_fall_back_to_botocores_own_parse(aws: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The only patch in this file: a botocore release without the parser internals the streamed path uses
    cannot be installed here, so its symptom (an AttributeError inside the streamed parse) is injected.
    Server, responses and both parses are real."""
    _seed(aws)
    plain = aws.client("ec2").describe_security_groups()["SecurityGroups"]
    def renamed(*_: Any, **__: Any) -> None:
        raise AttributeError("'StreamingEC2QueryParser' object has no attribute '_member_key_name'")

    monkeypatch.setattr(StreamingEC2QueryParser, "_drain", renamed)  # as if a botocore internal were gone
    streamed = _streaming_session(aws).client("ec2", endpoint_url=aws.endpoint_url).describe_security_groups()
    assert streamed["SecurityGroups"] == plain  # botocore's whole-tree parse: empty lists included
