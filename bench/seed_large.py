"""Seed a large AWS account on moto's server, with a known list of planted problems.

Full scale (the issue's figures): 5,000+ security groups carrying 50,000 ingress rules, 2,000 IAM roles
(each with a permissions boundary and an attached customer-managed policy), 500 subnets in 24 VPCs,
over two regions (us-east-1 holds ~90 %, eu-west-1 the rest). ``--small`` seeds one tenth of it.

Everything is hardened-ish (default SGs stripped, default NACLs carry a deny rule, flow logs kept a
year, roles bounded, buckets behind Block Public Access) except the planted problems, which are
returned as :class:`Planted` records naming the resource each tool must report.

Seeding uses batch-friendly calls (ten IpPermissions per AuthorizeSecurityGroupIngress, one
TagSpecifications per create) from a thread pool; it is not part of the measured figures.

    python bench/seed_large.py --endpoint http://127.0.0.1:5000 [--small] [--json planted.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3
import botocore.exceptions
import botocore.parsers
from botocore.config import Config

PRIMARY = "us-east-1"
SECONDARY = "eu-west-1"
REGIONS = (PRIMARY, SECONDARY)
KNOWN_BAD_CIDR = "198.51.100.0/24"
FOREIGN_ACCOUNT = "999999999999"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY_POLICY_ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ENVS = ("prod", "staging", "dev")
# Corporate / partner ranges outside every VPC: allowed sources that are neither the world nor intra-VPC.
CORP_PREFIX = "192.168"


@dataclass(frozen=True)
class Scale:
    name: str
    vpcs: dict[str, int]  # region -> number of VPCs
    subnets_per_vpc: dict[str, int]
    sgs_per_vpc: dict[str, int]
    rules_per_sg: int
    roles: int
    managed_policies: int
    buckets: int
    users: int

    def totals(self) -> dict[str, int]:
        sgs = sum(self.vpcs[r] * self.sgs_per_vpc[r] for r in REGIONS)
        return {
            "vpcs": sum(self.vpcs.values()),
            "subnets": sum(self.vpcs[r] * self.subnets_per_vpc[r] for r in REGIONS),
            "security_groups": sgs,
            "ingress_rules": sgs * self.rules_per_sg,
            "roles": self.roles,
            "managed_policies": self.managed_policies,
            "buckets": self.buckets,
            "users": self.users,
        }


FULL = Scale("full", vpcs={PRIMARY: 20, SECONDARY: 4}, subnets_per_vpc={PRIMARY: 22, SECONDARY: 15},
             sgs_per_vpc={PRIMARY: 225, SECONDARY: 125}, rules_per_sg=10, roles=2000, managed_policies=100,
             buckets=20, users=12)
SMALL = Scale("small", vpcs={PRIMARY: 2, SECONDARY: 1}, subnets_per_vpc={PRIMARY: 20, SECONDARY: 10},
              sgs_per_vpc={PRIMARY: 225, SECONDARY: 50}, rules_per_sg=10, roles=200, managed_policies=20,
              buckets=10, users=6)


@dataclass(frozen=True)
class Planted:
    """One planted problem. ``kind`` keys the tool-side mapping in run_bench.py.

    ``resource`` is the identifier outsidein reports (sg-…, subnet-…, vpc-…, an IAM ARN, a bucket name,
    an RDS identifier); ``aliases`` are other identifiers of the same problem (the policy ARN a role's
    admin grant is reported under, the resource's ARN) that a finding may carry instead.
    """

    kind: str
    layer: int
    region: str
    resource: str
    description: str
    aliases: tuple[str, ...] = ()


@dataclass
class SeededAccount:
    account_id: str
    scale: str
    regions: tuple[str, ...]
    counts: dict[str, int]
    planted: list[Planted] = field(default_factory=list)
    seconds: float = 0.0
    api_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "planted": [asdict(p) for p in self.planted]}


def _tags(name: str, env: str, **extra: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}, {"Key": "Environment", "Value": env},
            *({"Key": k, "Value": v} for k, v in extra.items())]


def _spec(kind: str, name: str, env: str, **extra: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": _tags(name, env, **extra)}]


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


DUPLICATE_CODES = {"EntityAlreadyExists", "InvalidGroup.Duplicate", "InvalidPermission.Duplicate",
                   "BucketAlreadyOwnedByYou", "InvalidPermission.NotFound"}
ALL_EGRESS = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


@dataclass
class _Vpc:
    region: str
    name: str
    env: str
    vpc_id: str = ""
    public_rtb: str = ""
    default_sg: str = ""
    default_acl: str = ""
    subnets: list[tuple[str, str, str]] = field(default_factory=list)  # (subnet id, tier, az)
    sgs: list[str] = field(default_factory=list)


class LargeSeeder:
    def __init__(self, endpoint_url: str, scale: Scale, workers: int = 8, log: Callable[[str], None] = print) -> None:
        self.endpoint_url = endpoint_url
        self.scale = scale
        self.workers = workers
        self.log = log
        self.session = boto3.session.Session()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.planted: list[Planted] = []
        self.account_id = str(self.client("sts").get_caller_identity()["Account"])

    # ------------------------------------------------------------------ plumbing

    def client(self, service: str, region: str = PRIMARY) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                client = self.session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url,
                    aws_access_key_id="AKIAEMULATOREXAMPLE1", aws_secret_access_key="x",
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"},
                                  max_pool_connections=self.workers * 2),
                )
                client.meta.events.register("before-send", self._count)
                self._clients[key] = client
            return self._clients[key]

    def _count(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1

    @staticmethod
    def retry(call: Callable[..., Any], **kwargs: Any) -> Any:
        """``call(**kwargs)``, retried when moto's threaded server trips over itself (HTTP 500).

        moto's backends are not thread-safe ("dictionary changed size during iteration" under
        concurrent IAM writes). A retry that finds the resource already created returns None.
        """
        for attempt in range(6):
            try:
                return call(**kwargs)
            except botocore.parsers.ResponseParserError:
                pass  # moto's HTML 500 page
            except botocore.exceptions.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                if attempt and code in DUPLICATE_CODES:
                    return None
                if status < 500:
                    raise
            time.sleep(0.2 * (attempt + 1))
        return call(**kwargs)

    def parallel(self, fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(fn, items))

    def plant(self, kind: str, layer: int, region: str, resource: str, description: str,
              *aliases: str) -> None:
        self.planted.append(Planted(kind, layer, region, resource, description, tuple(aliases)))

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:{kind}/{name}"

    # ------------------------------------------------------------------ the account

    def seed(self) -> SeededAccount:
        start = time.monotonic()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("IAM", self.iam), ("S3", self.s3), ("VPC skeletons", self.networks),
            ("security groups", self.security_groups), ("network interfaces", self.interfaces),
            ("planted network problems", self.network_problems), ("RDS", self.rds),
        ]
        for label, step in steps:
            t = time.monotonic()
            step()
            self.log(f"  seeded {label} in {time.monotonic() - t:.1f}s ({self.calls} calls so far)")
        return SeededAccount(self.account_id, self.scale.name, REGIONS, self.scale.totals(), self.planted,
                             round(time.monotonic() - start, 1), self.calls)

    # ------------------------------------------------------------------ IAM

    def iam(self) -> None:
        iam, acct, scale = self.client("iam"), self.account_id, self.scale
        boundary = iam.create_policy(PolicyName="workload-boundary", PolicyDocument=_doc({
            "Effect": "Allow", "Resource": "*",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "sqs:SendMessage", "sqs:ReceiveMessage",
                       "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "logs:CreateLogStream",
                       "logs:PutLogEvents"]}))["Policy"]["Arn"]

        def app_policy(i: int) -> str:
            doc = _doc(
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                 "Resource": f"arn:aws:s3:::bench-app-{i:03d}/*"},
                {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
                 "Resource": f"arn:aws:sqs:{PRIMARY}:{acct}:app-{i:03d}-*"},
                {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
                 "Resource": f"arn:aws:dynamodb:{PRIMARY}:{acct}:table/app-{i:03d}"},
            )
            name = f"app-{i:03d}-access"
            self.retry(iam.create_policy, PolicyName=name, PolicyDocument=doc)
            return f"arn:aws:iam::{acct}:policy/{name}"

        policies = self.parallel(app_policy, range(scale.managed_policies))
        services = ("ec2.amazonaws.com", "lambda.amazonaws.com", "ecs-tasks.amazonaws.com")

        def role(i: int) -> None:
            name, env = f"svc-{i:04d}", ENVS[i % 3]
            trust = _doc({"Effect": "Allow", "Principal": {"Service": services[i % 3]}, "Action": "sts:AssumeRole",
                          "Condition": {"StringEquals": {"aws:SourceAccount": acct}}})
            self.retry(iam.create_role, RoleName=name, AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary,
                       Tags=_tags(name, env))
            self.retry(iam.attach_role_policy, RoleName=name, PolicyArn=policies[i % len(policies)])

        self.parallel(role, range(scale.roles))

        # --- planted IAM problems (every planted role is otherwise ordinary: bounded, tagged)
        def planted_role(name: str, trust: str) -> str:
            return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary,
                                       Tags=_tags(name, "prod"))["Role"]["Arn"])

        service_trust = _doc({"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
                              "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": acct}}})
        ci = planted_role("ci-deployer", service_trust)
        iam.attach_role_policy(RoleName="ci-deployer", PolicyArn=ADMIN_POLICY_ARN)
        self.plant("iam-role-admin", 7, "global", ci, "role ci-deployer has AWS-managed AdministratorAccess",
                   ADMIN_POLICY_ARN)

        ops = planted_role("ops-automation", service_trust)
        iam_full = iam.create_policy(PolicyName="ops-iam-full", PolicyDocument=_doc(
            {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="ops-automation", PolicyArn=iam_full)
        self.plant("iam-policy-escalation", 7, "global", iam_full,
                   "customer policy ops-iam-full (iam:* on *) attached to role ops-automation", ops)

        glass = planted_role("break-glass", service_trust)
        iam.put_role_policy(RoleName="break-glass", PolicyName="everything",
                            PolicyDocument=_doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
        self.plant("iam-inline-admin", 7, "global", glass, "role break-glass has inline policy Action * on *")

        vendor = planted_role("vendor-audit", _doc({"Effect": "Allow",
                                                    "Principal": {"AWS": f"arn:aws:iam::{FOREIGN_ACCOUNT}:root"},
                                                    "Action": "sts:AssumeRole"}))
        iam.attach_role_policy(RoleName="vendor-audit", PolicyArn=READONLY_POLICY_ARN)
        self.plant("iam-cross-account-no-externalid", 7, "global", vendor,
                   f"role vendor-audit trusted by account {FOREIGN_ACCOUNT} without sts:ExternalId "
                   "(ReadOnlyAccess attached)")

        # --- users: console users with MFA, programmatic users without a password, one planted console user
        def user(i: int) -> None:
            name = f"user-{i:02d}"
            iam.create_user(UserName=name, Tags=_tags(name, "prod"))
            if i % 2 == 0:
                iam.create_login_profile(UserName=name, Password=f"Emulator-only-{i}!", PasswordResetRequired=False)
                serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
                iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456",
                                      AuthenticationCode2="654321")

        for i in range(scale.users):  # few, and sequential: MFA devices and login profiles race in moto
            user(i)
        iam.create_user(UserName="carol", Tags=_tags("carol", "prod"))
        iam.create_login_profile(UserName="carol", Password="Emulator-only-c!", PasswordResetRequired=False)
        self.plant("iam-console-no-mfa", 7, "global", self.arn("user", "carol"),
                   "user carol signs in to the console without MFA")
        self.plant("iam-root-no-mfa", 7, "global", f"arn:aws:iam::{acct}:root",
                   "root user has no MFA (moto cannot enable it: present in every emulated account)")

    # ------------------------------------------------------------------ S3

    def s3(self) -> None:
        s3 = self.client("s3")
        pab = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
               "RestrictPublicBuckets": True}

        def bucket(i: int) -> None:
            name = f"bench-app-{i:03d}"
            self.retry(s3.create_bucket, Bucket=name)
            self.retry(s3.put_public_access_block, Bucket=name, PublicAccessBlockConfiguration=pab)

        self.parallel(bucket, range(self.scale.buckets))
        public = "bench-public-assets"
        s3.create_bucket(Bucket=public)
        s3.put_bucket_policy(Bucket=public, Policy=_doc({
            "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{public}/*"}))
        self.plant("s3-public-getobject", 7, "global", public, 'bucket policy grants Principal "*" s3:GetObject',
                   f"arn:aws:s3:::{public}")

    # ------------------------------------------------------------------ networks

    def networks(self) -> None:
        self.vpcs: list[_Vpc] = []
        for region in REGIONS:
            for i in range(self.scale.vpcs[region]):
                prefix = "use1" if region == PRIMARY else "euw1"
                self.vpcs.append(_Vpc(region, f"{prefix}-vpc-{i + 1:02d}", ENVS[i % 3]))
        self.parallel(self._harden_default_vpc, REGIONS)
        self.parallel(self._skeleton, self.vpcs)

    def _harden_default_vpc(self, region: str) -> None:
        """moto, like AWS, gives each region a default VPC; harden it like every other VPC."""
        ec2 = self.client("ec2", region)
        for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
            shell = _Vpc(region, f"default-{region}", "dev", vpc_id=vpc["VpcId"])
            self._strip_and_guard(ec2, shell, strip_sg=True, deny=True)
            self._flow_logs(shell, 365)

    def _strip_and_guard(self, ec2: Any, vpc: _Vpc, *, strip_sg: bool, deny: bool) -> None:
        flt = [{"Name": "vpc-id", "Values": [vpc.vpc_id]}]
        group = ec2.describe_security_groups(Filters=[*flt, {"Name": "group-name", "Values": ["default"]}])
        sg = group["SecurityGroups"][0]
        vpc.default_sg = sg["GroupId"]
        if strip_sg:
            if sg["IpPermissions"]:
                ec2.revoke_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=sg["IpPermissions"])
            if sg["IpPermissionsEgress"]:
                ec2.revoke_security_group_egress(GroupId=sg["GroupId"], IpPermissions=sg["IpPermissionsEgress"])
        acl = next(a for a in ec2.describe_network_acls(Filters=flt)["NetworkAcls"] if a["IsDefault"])
        vpc.default_acl = acl["NetworkAclId"]
        if deny:
            ec2.create_network_acl_entry(NetworkAclId=acl["NetworkAclId"], RuleNumber=90, Protocol="-1",
                                         RuleAction="deny", Egress=False, CidrBlock=KNOWN_BAD_CIDR)

    def _flow_logs(self, vpc: _Vpc, retention: int | None) -> None:
        """Flow logs to a CloudWatch group kept ``retention`` days; None: no flow logs at all."""
        if retention is None:
            return
        logs = self.client("logs", vpc.region)
        group = f"/bench/vpc-flow-logs/{vpc.name}"
        logs.create_log_group(logGroupName=group)
        logs.put_retention_policy(logGroupName=group, retentionInDays=retention)
        self.client("ec2", vpc.region).create_flow_logs(
            ResourceIds=[vpc.vpc_id], ResourceType="VPC", TrafficType="ALL", LogDestinationType="cloud-watch-logs",
            LogGroupName=group, DeliverLogsPermissionArn=self.arn("role", "vpc-flow-logs-delivery"))

    def _skeleton(self, vpc: _Vpc) -> None:
        ec2, region = self.client("ec2", vpc.region), vpc.region
        index = int(vpc.name.rsplit("-", 1)[1])
        second = index if region == PRIMARY else 100 + index
        vpc.vpc_id = ec2.create_vpc(CidrBlock=f"10.{second}.0.0/16",
                                    TagSpecifications=_spec("vpc", vpc.name, vpc.env))["Vpc"]["VpcId"]
        igw = ec2.create_internet_gateway(TagSpecifications=_spec("internet-gateway", f"{vpc.name}-igw", vpc.env))
        igw_id = igw["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc.vpc_id)
        vpc.public_rtb = ec2.create_route_table(
            VpcId=vpc.vpc_id, TagSpecifications=_spec("route-table", f"{vpc.name}-public-rtb", vpc.env),
        )["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=vpc.public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
        azs = [f"{region}{letter}" for letter in "abc"]
        count = self.scale.subnets_per_vpc[region]
        for k in range(count):
            tier = "public" if k < 2 else ("app" if k < 2 + (count - 2) // 2 else "data")
            az = azs[k % len(azs)]
            name = f"{vpc.name}-{tier}-{k:02d}"
            subnet_id = ec2.create_subnet(VpcId=vpc.vpc_id, CidrBlock=f"10.{second}.{k}.0/24", AvailabilityZone=az,
                                          TagSpecifications=_spec("subnet", name, vpc.env, Tier=tier),
                                          )["Subnet"]["SubnetId"]
            vpc.subnets.append((subnet_id, tier, az))
            if tier == "public":
                ec2.associate_route_table(RouteTableId=vpc.public_rtb, SubnetId=subnet_id)
        # Planted: one VPC keeps its default NACL without any deny rule; one keeps a default SG with rules.
        planted_acl = vpc.name == "use1-vpc-07" or (self.scale.name == "small" and vpc.name == "use1-vpc-02")
        planted_sg = vpc.name == "use1-vpc-09" or (self.scale.name == "small" and vpc.name == "use1-vpc-01")
        self._strip_and_guard(ec2, vpc, strip_sg=not planted_sg, deny=not planted_acl)
        if planted_acl:
            self.plant("nacl-no-deny", 1, region, vpc.default_acl,
                       f"{vpc.name}: default NACL (allow all, no deny rule) guards {count} subnets")
        if planted_sg:
            self.plant("default-sg-in-use", 1, region, vpc.default_sg,
                       f"{vpc.name}: default security group keeps its allow rules and is attached to an interface")
        retention: int | None = 365
        if vpc.name == "use1-vpc-05" or (self.scale.name == "small" and vpc.name == "use1-vpc-02"):
            retention = None
            self.plant("vpc-no-flow-logs", 6, region, vpc.vpc_id, f"{vpc.name} (in use) has no flow logs")
        if vpc.name == "use1-vpc-08" or (self.scale.name == "small" and vpc.name == "use1-vpc-01"):
            retention = 30
            self.plant("vpc-flow-logs-short-retention", 6, region, vpc.vpc_id,
                       f"{vpc.name} flow-log group keeps only 30 days")
        self._flow_logs(vpc, retention)

    # ------------------------------------------------------------------ security groups

    def security_groups(self) -> None:
        jobs = [(vpc, j) for vpc in self.vpcs for j in range(self.scale.sgs_per_vpc[vpc.region])]

        def create(job: tuple[_Vpc, int]) -> str:
            vpc, j = job
            name = f"{vpc.name}-svc-{j:04d}"
            ec2 = self.client("ec2", vpc.region)
            created = self.retry(ec2.create_security_group, GroupName=name, Description=f"service {j} in {vpc.name}",
                                 VpcId=vpc.vpc_id, TagSpecifications=_spec("security-group", name, vpc.env))
            if created is None:  # created by an attempt that answered HTTP 500
                found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc.vpc_id]},
                                                              {"Name": "group-name", "Values": [name]}])
                return str(found["SecurityGroups"][0]["GroupId"])
            return str(created["GroupId"])

        ids = self.parallel(create, jobs)
        for (vpc, _), sg_id in zip(jobs, ids, strict=True):
            vpc.sgs.append(sg_id)
        rules = self.scale.rules_per_sg

        def permissions(vpc: _Vpc, j: int) -> list[dict[str, Any]]:
            """Ten hardened rules: app ports from peer SGs in the VPC, or from corporate ranges."""
            perms = []
            for r in range(rules):
                port = 8000 + (j * rules + r) % 1000
                if r % 2 == 0:
                    peer = vpc.sgs[(j + r + 1) % len(vpc.sgs)]
                    perms.append({"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                                  "UserIdGroupPairs": [{"GroupId": peer, "Description": "peer service"}]})
                else:
                    cidr = f"{CORP_PREFIX}.{(j + r) % 256}.0/24"
                    perms.append({"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                                  "IpRanges": [{"CidrIp": cidr, "Description": "corporate VPN"}]})
            return perms

        def rules_for(job: tuple[_Vpc, int]) -> None:
            vpc, j = job
            ec2, sg_id = self.client("ec2", vpc.region), vpc.sgs[j]
            self.retry(ec2.authorize_security_group_ingress, GroupId=sg_id, IpPermissions=permissions(vpc, j))
            self.retry(ec2.revoke_security_group_egress, GroupId=sg_id, IpPermissions=ALL_EGRESS)

        self.parallel(rules_for, jobs)

        # Planted: security groups open to the world on admin/database ports, each attached to an interface.
        self.open_sgs: list[tuple[_Vpc, str]] = []
        primary = [v for v in self.vpcs if v.region == PRIMARY]
        secondary = [v for v in self.vpcs if v.region == SECONDARY]
        world4, world6 = [{"CidrIp": "0.0.0.0/0"}], [{"CidrIpv6": "::/0"}]
        for vpc, name, perm, kind, what in (
            (primary[0], "legacy-bastion-sg", {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                               "IpRanges": world4}, "sg-ssh-world", "SSH 22 from 0.0.0.0/0"),
            (primary[1], "reporting-db-sg", {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                                             "IpRanges": world4}, "sg-postgres-world",
             "PostgreSQL 5432 from 0.0.0.0/0"),
            (primary[0], "debug-all-sg", {"IpProtocol": "-1", "IpRanges": world4}, "sg-all-world",
             "all traffic from 0.0.0.0/0"),
            (primary[-1], "cache-ipv6-sg", {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                                            "Ipv6Ranges": world6}, "sg-redis-world-ipv6", "Redis 6379 from ::/0"),
            (secondary[0], "win-jump-sg", {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389,
                                           "IpRanges": world4}, "sg-rdp-world", "RDP 3389 from 0.0.0.0/0"),
        ):
            ec2 = self.client("ec2", vpc.region)
            sg_id = ec2.create_security_group(GroupName=name, Description=what, VpcId=vpc.vpc_id,
                                              TagSpecifications=_spec("security-group", name, vpc.env))["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=sg_id, IpPermissions=[perm])
            ec2.revoke_security_group_egress(GroupId=sg_id, IpPermissions=ALL_EGRESS)
            self.open_sgs.append((vpc, sg_id))
            self.plant(kind, 1, vpc.region, sg_id, f"{name} in {vpc.name}: {what} (attached to an interface)")
            if name == "reporting-db-sg":
                self.reporting_sg = (vpc, sg_id)

    def interfaces(self) -> None:
        """One interface per subnet, carrying up to five of its VPC's groups: about 1 in 2 groups is in use."""
        jobs = []
        for vpc in self.vpcs:
            for k, (subnet_id, _, _) in enumerate(vpc.subnets):
                groups = vpc.sgs[k * 5:(k + 1) * 5] or vpc.sgs[:1]
                jobs.append((vpc.region, subnet_id, groups, f"{vpc.name}-eni-{k:02d}", vpc.env))
        for vpc, sg_id in self.open_sgs:
            jobs.append((vpc.region, vpc.subnets[0][0], [sg_id], f"{vpc.name}-exposed-eni", vpc.env))
        for vpc in self.vpcs:
            if any(p.kind == "default-sg-in-use" and p.resource == vpc.default_sg for p in self.planted):
                jobs.append((vpc.region, vpc.subnets[2][0], [vpc.default_sg], f"{vpc.name}-default-sg-eni", vpc.env))

        def eni(job: tuple[str, str, list[str], str, str]) -> None:
            region, subnet_id, groups, name, env = job
            self.retry(self.client("ec2", region).create_network_interface, SubnetId=subnet_id, Groups=groups,
                       Description=name, TagSpecifications=_spec("network-interface", name, env))

        self.parallel(eni, jobs)

    # ------------------------------------------------------------------ planted VPC problems

    def network_problems(self) -> None:
        vpc = [v for v in self.vpcs if v.region == PRIMARY][2 if self.scale.name == "full" else 1]
        ec2 = self.client("ec2", vpc.region)
        data = [s for s, tier, _ in vpc.subnets if tier == "data"]
        app = [s for s, tier, _ in vpc.subnets if tier == "app"]
        ec2.associate_route_table(RouteTableId=vpc.public_rtb, SubnetId=data[-1])
        self.plant("private-subnet-igw-route", 6, vpc.region, data[-1],
                   f"{vpc.name}: data-tier subnet associated with the public route table (0.0.0.0/0 -> IGW)")
        ec2.modify_subnet_attribute(SubnetId=app[-1], MapPublicIpOnLaunch={"Value": True})
        self.plant("private-subnet-auto-public-ip", 6, vpc.region, app[-1],
                   f"{vpc.name}: app-tier subnet has MapPublicIpOnLaunch=true")

    def rds(self) -> None:
        rds = self.client("rds")
        prod = next(v for v in self.vpcs if v.region == PRIMARY and v.env == "prod")
        data = [s for s, tier, _ in prod.subnets if tier == "data"][:2]
        rds.create_db_subnet_group(DBSubnetGroupName="orders-data", DBSubnetGroupDescription="orders data subnets",
                                   SubnetIds=data)
        rds.create_db_instance(DBInstanceIdentifier="orders-db", DBInstanceClass="db.t3.micro", Engine="postgres",
                               MasterUsername="orders", MasterUserPassword="emulator-only-password",
                               AllocatedStorage=20, DBSubnetGroupName="orders-data", PubliclyAccessible=False,
                               StorageEncrypted=True, VpcSecurityGroupIds=[prod.sgs[0]])
        vpc, sg_id = self.reporting_sg
        public = [s for s, tier, _ in vpc.subnets if tier == "public"]
        rds.create_db_subnet_group(DBSubnetGroupName="reporting-public", DBSubnetGroupDescription="public subnets",
                                   SubnetIds=public)
        rds.create_db_instance(DBInstanceIdentifier="reporting-db", DBInstanceClass="db.t3.micro", Engine="postgres",
                               MasterUsername="report", MasterUserPassword="emulator-only-password",
                               AllocatedStorage=20, DBSubnetGroupName="reporting-public", PubliclyAccessible=True,
                               StorageEncrypted=True, VpcSecurityGroupIds=[sg_id])
        self.plant("rds-public", 6, PRIMARY, "reporting-db",
                   f"RDS reporting-db: PubliclyAccessible, public subnets of {vpc.name}, 5432 open to the world",
                   f"arn:aws:rds:{PRIMARY}:{self.account_id}:db:reporting-db")


def seed_large(endpoint_url: str, small: bool = False, workers: int = 8,
               log: Callable[[str], None] = print) -> SeededAccount:
    return LargeSeeder(endpoint_url, SMALL if small else FULL, workers, log).seed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--small", action="store_true", help="one tenth of the full scale")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", help="also write the planted problems to this file")
    args = parser.parse_args()
    account = seed_large(args.endpoint, args.small, args.workers, log=lambda m: print(m, file=sys.stderr))
    print(f"seeded {account.scale} account {account.account_id} in {account.seconds}s "
          f"({account.api_calls} API calls): {account.counts}")
    for p in account.planted:
        print(f"  L{p.layer} {p.kind:32} {p.region:10} {p.resource}  {p.description}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(account.to_json(), fh, indent=1)


if __name__ == "__main__":
    main()
