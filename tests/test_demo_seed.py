"""The demo seeder against a real moto server: the planted problems must really be there."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from outsidein.demo.emulator import MotoServer
from outsidein.demo.seed import DemoStack, Planted, seed_demo_stack

PRIMARY = "us-east-1"
DR = "eu-west-1"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


@dataclass
class Seeded:
    stack: DemoStack
    seconds: float
    client: Callable[..., Any]


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    with MotoServer() as server:
        session = boto3.session.Session()

        def client(service: str, region: str = PRIMARY) -> Any:
            return session.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=server.endpoint_url,
                aws_access_key_id="AKIAEMULATOREXAMPLE1",
                aws_secret_access_key="x",
                config=Config(s3={"addressing_style": "path"}),
            )

        started = time.monotonic()
        stack = seed_demo_stack(server.endpoint_url)
        yield Seeded(stack, time.monotonic() - started, client)


# --------------------------------------------------------------------------- helpers


def ec2(s: Seeded, region: str = PRIMARY) -> Any:
    return s.client("ec2", region)


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def sg_by_name(s: Seeded, name: str, region: str = PRIMARY) -> dict[str, Any]:
    groups = ec2(s, region).describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    (group,) = groups["SecurityGroups"]
    return dict(group)


def vpc_by_name(s: Seeded, name: str, region: str = PRIMARY) -> dict[str, Any]:
    (vpc,) = ec2(s, region).describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
    return dict(vpc)


def subnet_by_name(s: Seeded, name: str, region: str = PRIMARY) -> dict[str, Any]:
    (subnet,) = ec2(s, region).describe_subnets(Filters=[{"Name": "tag:Name", "Values": [name]}])["Subnets"]
    return dict(subnet)


def route_table_of(s: Seeded, subnet_id: str) -> dict[str, Any]:
    found = ec2(s).describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    (table,) = found["RouteTables"]
    return dict(table)


def default_route(table: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None)


def world_ports(group: dict[str, Any]) -> set[tuple[str, int | None]]:
    return {
        (p["IpProtocol"], p.get("FromPort"))
        for p in group["IpPermissions"]
        if any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))
    }


def allows_all_egress(group: dict[str, Any]) -> bool:
    return any(
        p["IpProtocol"] == "-1" and any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))
        for p in group["IpPermissionsEgress"]
    )


def instances(s: Seeded) -> list[dict[str, Any]]:
    return [i for r in ec2(s).describe_instances()["Reservations"] for i in r["Instances"]]


def attached_policies(s: Seeded, role: str) -> set[str]:
    return {p["PolicyArn"] for p in s.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]}


def policy_document(s: Seeded, arn: str) -> dict[str, Any]:
    iam = s.client("iam")
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return dict(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])


def planted_ids(stack: DemoStack) -> set[str]:
    return {p.check_id for p in stack.planted}


def find(items: list[Planted], check_id: str, note_part: str = "") -> Planted:
    return next(p for p in items if p.check_id == check_id and note_part in p.note)


# --------------------------------------------------------------------------- the stack as a whole


def test_seeding_is_fast(seeded: Seeded) -> None:
    assert seeded.seconds < 20, f"seeding took {seeded.seconds:.1f}s"


def test_stack_summary(seeded: Seeded) -> None:
    stack = seeded.stack
    assert stack.account_id == seeded.client("sts").get_caller_identity()["Account"]
    assert stack.regions == (PRIMARY, DR)
    assert {
        "sg-open-ingress",
        "sg-open-egress",
        "sg-shared-across-envs",
        "sg-cidr-intra-vpc",
        "sg-default-in-use",
        "nacl-no-deny",
        "vpc-nat-per-az",
        "vpc-private-subnet-igw-route",
        "vpc-subnet-auto-public-ip",
        "vpc-flow-logs",
        "vpc-flow-logs-retention",
        "vpc-datastore-public",
        "iam-wildcard-admin",
        "iam-service-wildcard",
        "iam-inline-policy",
        "iam-cross-account-trust",
        "iam-permission-boundary",
        "iam-console-mfa",
        "iam-root-mfa",
        "s3-public-getobject",
        "waf-alb-unprotected",
        "waf-no-rate-based-rule",
    } <= planted_ids(stack)
    assert {
        "sg-open-ingress",
        "sg-open-egress",
        "sg-cidr-intra-vpc",
        "sg-default-in-use",
        "nacl-no-deny",
        "vpc-flow-logs",
        "vpc-datastore-public",
        "iam-cross-account-trust",
        "iam-permission-boundary",
        "iam-console-mfa",
        "s3-public-getobject",
    } <= {p.check_id for p in stack.hardened}
    planted = {(p.check_id, p.resource) for p in stack.planted}
    hardened = {(p.check_id, p.resource) for p in stack.hardened}
    assert not planted & hardened, "a resource cannot both fail and pass the same check"
    assert len(planted) == len(stack.planted) and len(hardened) == len(stack.hardened), "duplicates"


def _exists(s: Seeded, resource: str) -> bool:
    regions = s.stack.regions
    describe = {
        "sg-": ("describe_security_groups", "GroupIds", "SecurityGroups"),
        "acl-": ("describe_network_acls", "NetworkAclIds", "NetworkAcls"),
        "subnet-": ("describe_subnets", "SubnetIds", "Subnets"),
        "rtb-": ("describe_route_tables", "RouteTableIds", "RouteTables"),
        "vpc-": ("describe_vpcs", "VpcIds", "Vpcs"),
    }
    for prefix, (method, param, key) in describe.items():
        if resource.startswith(prefix):
            for region in regions:
                try:
                    if getattr(ec2(s, region), method)(**{param: [resource]})[key]:
                        return True
                except ClientError:
                    continue
            return False
    if resource in regions:
        return True
    iam = s.client("iam")
    if resource.startswith("arn:aws:iam::"):
        kind_name = resource.split(":", 5)[5]
        if kind_name == "root":
            return resource == f"arn:aws:iam::{s.stack.account_id}:root"
        kind, _, name = kind_name.partition("/")
        try:
            if kind == "policy":
                iam.get_policy(PolicyArn=resource)
            elif kind == "role":
                iam.get_role(RoleName=name)
            elif kind == "user":
                iam.get_user(UserName=name)
            else:
                return False
        except ClientError:
            return False
        return True
    if resource.startswith("arn:aws:elasticloadbalancing:"):
        return bool(s.client("elbv2").describe_load_balancers(LoadBalancerArns=[resource])["LoadBalancers"])
    if resource.startswith("arn:aws:wafv2:"):
        name, acl_id = resource.split("/")[-2:]
        return s.client("wafv2").get_web_acl(Name=name, Id=acl_id, Scope="REGIONAL")["WebACL"]["ARN"] == resource
    lookups: list[Callable[[], Any]] = [
        lambda: s.client("s3").head_bucket(Bucket=resource),
        lambda: s.client("rds").describe_db_instances(DBInstanceIdentifier=resource),
        lambda: s.client("elasticache").describe_cache_clusters(CacheClusterId=resource),
        lambda: s.client("mq").describe_broker(BrokerId=resource),
    ]
    for lookup in lookups:
        try:
            lookup()
        except ClientError:
            continue
        return True
    return False


def test_every_planted_and_hardened_resource_exists(seeded: Seeded) -> None:
    missing = [p for p in seeded.stack.planted + seeded.stack.hardened if not _exists(seeded, p.resource)]
    assert not missing


def test_every_resource_carries_environment_and_name(seeded: Seeded) -> None:
    for region in seeded.stack.regions:
        client = ec2(seeded, region)
        own_vpcs = {
            v["VpcId"] for v in client.describe_vpcs()["Vpcs"] if not v["IsDefault"] and "Environment" in tags(v)
        }
        assert own_vpcs, region
        filters = [{"Name": "vpc-id", "Values": sorted(own_vpcs)}]
        resources = [
            *client.describe_subnets(Filters=filters)["Subnets"],
            *client.describe_security_groups(Filters=filters)["SecurityGroups"],
            *client.describe_network_acls(Filters=filters)["NetworkAcls"],
            *client.describe_route_tables(Filters=filters)["RouteTables"],
            *client.describe_instances(Filters=filters)["Reservations"],
        ]
        for resource in resources:
            for item in resource.get("Instances", [resource]):
                assert {"Name", "Environment"} <= tags(item).keys(), item
        for subnet in client.describe_subnets(Filters=filters)["Subnets"]:
            assert tags(subnet)["Tier"] in {"public", "app", "data", "mgmt"}
            assert tags(subnet)["Environment"] in {"dev", "staging", "prod"}
    assert tags(vpc_by_name(seeded, "nonprod-vpc"))["Environment"] == "nonprod"


def test_instances_use_a_registered_image(seeded: Seeded) -> None:
    images = {i["ImageId"] for i in ec2(seeded).describe_images(Owners=["self"])["Images"]}
    launched = instances(seeded)
    assert len(launched) >= 6
    assert {i["ImageId"] for i in launched} <= images
    assert {i["InstanceType"] for i in launched} == {"t3.micro"}


# --------------------------------------------------------------------------- layer 1: SGs and NACLs


def test_bastion_and_monitoring_open_to_the_world(seeded: Seeded) -> None:
    bastion = sg_by_name(seeded, "prod-bastion-sg")
    assert ("tcp", 22) in world_ports(bastion)
    assert find(seeded.stack.planted, "sg-open-ingress", "bastion").resource == bastion["GroupId"]
    monitoring = sg_by_name(seeded, "prod-monitoring-sg")
    assert {("tcp", 3000), ("tcp", 9090)} <= world_ports(monitoring)


def test_alb_only_443_and_egress_to_app(seeded: Seeded) -> None:
    alb, app = sg_by_name(seeded, "prod-alb-sg"), sg_by_name(seeded, "prod-app-sg")
    assert world_ports(alb) == {("tcp", 443)}
    assert any(r["CidrIpv6"] == "::/0" for p in alb["IpPermissions"] for r in p.get("Ipv6Ranges", []))
    egress = {(p["FromPort"], pair["GroupId"]) for p in alb["IpPermissionsEgress"] for pair in p["UserIdGroupPairs"]}
    assert egress == {(443, app["GroupId"]), (8080, app["GroupId"])}
    assert all(not p.get("IpRanges") for p in alb["IpPermissionsEgress"])


def test_prod_sgs_have_no_allow_all_egress(seeded: Seeded) -> None:
    prod_vpc = vpc_by_name(seeded, "prod-vpc")["VpcId"]
    groups = ec2(seeded).describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [prod_vpc]}])
    assert len(groups["SecurityGroups"]) == 7  # six named + default
    for group in groups["SecurityGroups"]:
        assert not allows_all_egress(group), group["GroupName"]
    hardened = {p.resource for p in seeded.stack.hardened if p.check_id == "sg-open-egress"}
    assert sg_by_name(seeded, "prod-alb-sg")["GroupId"] in hardened


def test_db_by_cidr_and_redis_by_sg(seeded: Seeded) -> None:
    db, redis, app = (sg_by_name(seeded, n) for n in ("prod-db-sg", "prod-redis-sg", "prod-app-sg"))
    (rule,) = db["IpPermissions"]
    assert (rule["FromPort"], [r["CidrIp"] for r in rule["IpRanges"]]) == (5432, ["10.30.10.0/24"])
    assert db["IpPermissionsEgress"] == []
    (rule,) = redis["IpPermissions"]
    assert [pair["GroupId"] for pair in rule["UserIdGroupPairs"]] == [app["GroupId"]]
    assert find(seeded.stack.planted, "sg-cidr-intra-vpc").resource == db["GroupId"]
    assert find(seeded.stack.hardened, "sg-cidr-intra-vpc").resource == redis["GroupId"]


def test_nonprod_open_groups(seeded: Seeded) -> None:
    staging_db = sg_by_name(seeded, "staging-db-sg")
    assert ("tcp", 5432) in world_ports(staging_db)
    assert allows_all_egress(staging_db)
    debug = sg_by_name(seeded, "dev-debug-sg")
    assert ("-1", None) in world_ports(debug)


def test_app_sg_shared_by_dev_and_staging_instances(seeded: Seeded) -> None:
    app_sg = sg_by_name(seeded, "app-sg")["GroupId"]
    using = [i for i in instances(seeded) if app_sg in {g["GroupId"] for g in i["SecurityGroups"]}]
    assert {tags(i)["Environment"] for i in using} == {"dev", "staging"}
    enis = ec2(seeded).describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [app_sg]}])
    assert len(enis["NetworkInterfaces"]) == 2
    assert find(seeded.stack.planted, "sg-shared-across-envs").resource == app_sg


def test_default_sgs(seeded: Seeded) -> None:
    nonprod = vpc_by_name(seeded, "nonprod-vpc")["VpcId"]
    prod = vpc_by_name(seeded, "prod-vpc")["VpcId"]
    nonprod_default = sg_by_name_in_vpc(seeded, nonprod)
    prod_default = sg_by_name_in_vpc(seeded, prod)
    users = [i for i in instances(seeded) if nonprod_default["GroupId"] in {g["GroupId"] for g in i["SecurityGroups"]}]
    assert [tags(i)["Environment"] for i in users] == ["dev"]
    assert find(seeded.stack.planted, "sg-default-in-use").resource == nonprod_default["GroupId"]
    assert prod_default["IpPermissions"] == [] and prod_default["IpPermissionsEgress"] == []
    enis = ec2(seeded).describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [prod_default["GroupId"]]}])
    assert enis["NetworkInterfaces"] == []
    assert prod_default["GroupId"] in {p.resource for p in seeded.stack.hardened if p.check_id == "sg-default-in-use"}


def sg_by_name_in_vpc(s: Seeded, vpc_id: str, name: str = "default") -> dict[str, Any]:
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
    (group,) = ec2(s).describe_security_groups(Filters=filters)["SecurityGroups"]
    return dict(group)


def test_nacls(seeded: Seeded) -> None:
    prod = vpc_by_name(seeded, "prod-vpc")["VpcId"]
    nonprod = vpc_by_name(seeded, "nonprod-vpc")["VpcId"]
    client = ec2(seeded)
    prod_subnets = {
        s["SubnetId"] for s in client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [prod]}])["Subnets"]
    }
    (custom,) = client.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [prod]}, {"Name": "default", "Values": ["false"]}]
    )["NetworkAcls"]
    assert {a["SubnetId"] for a in custom["Associations"]} == prod_subnets
    denies = [e for e in custom["Entries"] if e["RuleAction"] == "deny" and e["RuleNumber"] < 32767]
    assert {e["CidrBlock"] for e in denies} == {"198.51.100.0/24"}
    assert find(seeded.stack.hardened, "nacl-no-deny", "prod NACL").resource == custom["NetworkAclId"]

    (default,) = client.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [nonprod]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"]
    assert len(default["Associations"]) == 4
    assert not [e for e in default["Entries"] if e["RuleAction"] == "deny" and e["RuleNumber"] < 32767]
    assert find(seeded.stack.planted, "nacl-no-deny", "nonprod").resource == default["NetworkAclId"]


# --------------------------------------------------------------------------- layer 6: VPC


def test_data_subnet_b_routes_to_the_internet(seeded: Seeded) -> None:
    data_b = subnet_by_name(seeded, "prod-data-b")
    route = default_route(route_table_of(seeded, data_b["SubnetId"]))
    assert route is not None and route["GatewayId"].startswith("igw-")
    assert data_b["MapPublicIpOnLaunch"] is True
    assert tags(data_b)["Tier"] == "data"
    assert find(seeded.stack.planted, "vpc-private-subnet-igw-route").resource == data_b["SubnetId"]
    assert find(seeded.stack.planted, "vpc-subnet-auto-public-ip").resource == data_b["SubnetId"]

    data_a = subnet_by_name(seeded, "prod-data-a")
    assert default_route(route_table_of(seeded, data_a["SubnetId"])) is None
    assert data_a["MapPublicIpOnLaunch"] is False


def test_single_nat_for_both_app_subnets(seeded: Seeded) -> None:
    prod = vpc_by_name(seeded, "prod-vpc")["VpcId"]
    (nat,) = ec2(seeded).describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [prod]}])["NatGateways"]
    for name in ("prod-app-a", "prod-app-b"):
        route = default_route(route_table_of(seeded, subnet_by_name(seeded, name)["SubnetId"]))
        assert route is not None and route["NatGatewayId"] == nat["NatGatewayId"]
    for name in ("prod-public-a", "prod-public-b"):
        subnet = subnet_by_name(seeded, name)
        assert subnet["MapPublicIpOnLaunch"] is True and tags(subnet)["Tier"] == "public"
    assert find(seeded.stack.planted, "vpc-nat-per-az").resource == prod


def test_flow_logs(seeded: Seeded) -> None:
    def retention(vpc_id: str, region: str = PRIMARY) -> int | None:
        logs = ec2(seeded, region).describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])
        if not logs["FlowLogs"]:
            return None
        (flow,) = logs["FlowLogs"]
        group = flow["LogGroupName"]
        (found,) = seeded.client("logs", region).describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        return int(found["retentionInDays"])

    assert retention(vpc_by_name(seeded, "prod-vpc")["VpcId"]) == 365
    assert retention(vpc_by_name(seeded, "nonprod-vpc")["VpcId"]) == 30
    sandbox = vpc_by_name(seeded, "sandbox-vpc")["VpcId"]
    assert retention(sandbox) is None
    assert retention(vpc_by_name(seeded, "prod-dr-vpc", DR)["VpcId"], DR) == 365
    assert sandbox in {p.resource for p in seeded.stack.planted if p.check_id == "vpc-flow-logs"}


def test_data_stores(seeded: Seeded) -> None:
    rds = seeded.client("rds")
    (prod_db,) = rds.describe_db_instances(DBInstanceIdentifier="prod-orders-db")["DBInstances"]
    assert prod_db["PubliclyAccessible"] is False and prod_db["Engine"] == "postgres"
    data_b = subnet_by_name(seeded, "prod-data-b")["SubnetId"]
    assert data_b in {s["SubnetIdentifier"] for s in prod_db["DBSubnetGroup"]["Subnets"]}
    (staging_db,) = rds.describe_db_instances(DBInstanceIdentifier="staging-mysql")["DBInstances"]
    assert staging_db["PubliclyAccessible"] is True and staging_db["Engine"] == "mysql"

    cache = seeded.client("elasticache")
    (cluster,) = cache.describe_cache_clusters(CacheClusterId="prod-sessions")["CacheClusters"]
    (group,) = cache.describe_cache_subnet_groups(CacheSubnetGroupName=cluster["CacheSubnetGroupName"])[
        "CacheSubnetGroups"
    ]
    assert [s["SubnetIdentifier"] for s in group["Subnets"]] == [subnet_by_name(seeded, "prod-data-a")["SubnetId"]]

    planted = {p.resource for p in seeded.stack.planted if p.check_id == "vpc-datastore-public"}
    assert {"prod-orders-db", "staging-mysql"} <= planted
    (broker_id,) = planted - {"prod-orders-db", "staging-mysql"}
    broker = seeded.client("mq").describe_broker(BrokerId=broker_id)
    assert broker["PubliclyAccessible"] is True and broker["EngineType"].upper() == "RABBITMQ"
    assert "prod-sessions" in {p.resource for p in seeded.stack.hardened if p.check_id == "vpc-datastore-public"}


# --------------------------------------------------------------------------- layer 7: IAM


def test_admin_and_wildcard_policies(seeded: Seeded) -> None:
    acct = seeded.stack.account_id
    assert ADMIN in attached_policies(seeded, "ci-deployer")
    iam_full = f"arn:aws:iam::{acct}:policy/iam-full-access"
    assert iam_full in attached_policies(seeded, "ops-automation")
    assert policy_document(seeded, iam_full)["Statement"][0]["Action"] == "iam:*"
    s3_all = f"arn:aws:iam::{acct}:policy/s3-everything"
    assert s3_all in attached_policies(seeded, "app-prod")
    assert policy_document(seeded, s3_all)["Statement"][0]["Action"] == "s3:*"
    assert {p.resource for p in seeded.stack.planted if p.check_id == "iam-wildcard-admin"} == {
        ADMIN,
        iam_full,
    }
    assert find(seeded.stack.planted, "iam-service-wildcard").resource == s3_all
    assert seeded.client("iam").list_role_policies(RoleName="app-prod")["PolicyNames"]


def test_trust_policies(seeded: Seeded) -> None:
    iam = seeded.client("iam")

    def statement(role: str) -> dict[str, Any]:
        return dict(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0])

    vendor = statement("vendor-audit")
    assert vendor["Principal"]["AWS"] == "arn:aws:iam::999999999999:root" and "Condition" not in vendor
    partner = statement("partner-reporting")
    assert partner["Principal"]["AWS"] == "arn:aws:iam::888888888888:root"
    assert "sts:ExternalId" in partner["Condition"]["StringEquals"]
    assert statement("legacy-any")["Principal"] == {"AWS": "*"}


def test_permission_boundaries(seeded: Seeded) -> None:
    iam = seeded.client("iam")
    for role in ("app-prod", "ci-deployer", "vendor-audit"):
        assert "PermissionsBoundary" not in iam.get_role(RoleName=role)["Role"], role
    for role in ("partner-reporting", "app-staging"):
        assert "PermissionsBoundary" in iam.get_role(RoleName=role)["Role"], role
    planted = {p.resource.rsplit("/", 1)[1] for p in seeded.stack.planted if p.check_id == "iam-permission-boundary"}
    assert {"app-prod", "ci-deployer", "vendor-audit"} <= planted


def test_users(seeded: Seeded) -> None:
    iam = seeded.client("iam")
    assert iam.get_login_profile(UserName="alice")
    assert iam.list_mfa_devices(UserName="alice")["MFADevices"] == []
    assert iam.get_login_profile(UserName="bob")
    assert len(iam.list_mfa_devices(UserName="bob")["MFADevices"]) == 1
    with pytest.raises(ClientError):
        iam.get_login_profile(UserName="svc-backup")
    assert len(iam.list_access_keys(UserName="svc-backup")["AccessKeyMetadata"]) == 1
    acct = seeded.stack.account_id
    assert find(seeded.stack.planted, "iam-root-mfa").resource == f"arn:aws:iam::{acct}:root"


# --------------------------------------------------------------------------- S3


def test_buckets(seeded: Seeded) -> None:
    s3 = seeded.client("s3")

    def statement(bucket: str) -> dict[str, Any]:
        return dict(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0])

    public = statement("outsidein-demo-public-assets")
    assert public["Principal"] == "*" and public["Action"] == "s3:GetObject" and "Condition" not in public
    backups = statement("outsidein-demo-prod-backups")
    assert backups["Principal"] != "*"
    block = s3.get_public_access_block(Bucket="outsidein-demo-prod-backups")["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    partner = statement("outsidein-demo-partner-share")
    assert partner["Principal"] == "*" and "aws:SourceVpce" in partner["Condition"]["StringEquals"]
    assert find(seeded.stack.planted, "s3-public-getobject").resource == "outsidein-demo-public-assets"
