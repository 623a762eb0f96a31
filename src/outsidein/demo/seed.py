"""Seed the AWS emulator with a realistic dev/staging/prod stack that carries the classic mistakes.

``seed_demo_stack(endpoint_url)`` builds, through the ordinary AWS APIs (boto3 against moto's
server), the stack that the demo audits:

* us-east-1 — a prod VPC (10.30.0.0/16), a shared nonprod VPC for dev and staging (10.20.0.0/16),
  a dev "sandbox" VPC (10.40.0.0/16), security groups, NACLs, EC2 instances, RDS, ElastiCache and
  Amazon MQ;
* eu-west-1 — a small prod disaster-recovery VPC (10.31.0.0/16) built correctly;
* global — IAM roles, policies and users, and S3 buckets.

It returns a :class:`DemoStack` naming every problem that was planted on purpose (the audit must
report each of them as failing) and every resource that was built correctly (its check must pass).

The emulator's own default VPC (172.31.0.0/16, one per region) is left in place, as AWS leaves it in
every real account: it has no flow logs and its default NACL carries no deny rule, so it is planted
too. (Deleting it is not an option on moto: its default NACL survives the VPC with dangling subnet
associations.) Two other emulator quirks are corrected or worked around: the instances boot from an
image registered here (the emulator starts without default AMIs), and the plain network interface
moto fabricates for a NAT gateway — carrying the VPC's default security group, unlike AWS — is
removed, so that the prod default group is really unused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

DUMMY_ACCESS_KEY_ID = "AKIAEMULATOREXAMPLE1"
DUMMY_SECRET_ACCESS_KEY = "x"

PRIMARY_REGION = "us-east-1"
DEFAULT_REGIONS: tuple[str, ...] = ("us-east-1", "eu-west-1")

KNOWN_BAD_CIDR = "198.51.100.0/24"  # TEST-NET-2, stands in for a blocklisted range
FOREIGN_ACCOUNT = "999999999999"
PARTNER_ACCOUNT = "888888888888"
PARTNER_EXTERNAL_ID = "outsidein-demo-partner-7f3a"

PUBLIC_BUCKET = "outsidein-demo-public-assets"
BACKUP_BUCKET = "outsidein-demo-prod-backups"
PARTNER_BUCKET = "outsidein-demo-partner-share"

ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
INSTANCE_TYPE = "t3.micro"


@dataclass(frozen=True)
class Planted:
    """One resource and the check that must judge it.

    ``resource`` is the provider identifier the finding will carry: ``sg-…``, ``acl-…``,
    ``subnet-…``, ``rtb-…``, ``vpc-…``, an IAM ARN, an S3 bucket name, an RDS DB instance
    identifier, an ElastiCache CacheClusterId, an Amazon MQ BrokerId, or a region name.
    """

    check_id: str
    resource: str
    note: str


@dataclass
class DemoStack:
    account_id: str
    regions: tuple[str, ...]
    planted: list[Planted] = field(default_factory=list)  # must FAIL
    hardened: list[Planted] = field(default_factory=list)  # must PASS


# --------------------------------------------------------------------------- helpers


def _tags(name: str, env: str, **extra: str) -> list[dict[str, str]]:
    tags = [{"Key": "Name", "Value": name}, {"Key": "Environment", "Value": env}]
    tags += [{"Key": key, "Value": value} for key, value in extra.items()]
    return tags


def _spec(resource_type: str, name: str, env: str, **extra: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": _tags(name, env, **extra)}]


def _perm(
    protocol: str,
    from_port: int | None = None,
    to_port: int | None = None,
    *,
    cidrs: tuple[str, ...] = (),
    cidrs6: tuple[str, ...] = (),
    groups: tuple[str, ...] = (),
    description: str = "",
) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": protocol}
    if from_port is not None:
        perm["FromPort"] = from_port
        perm["ToPort"] = from_port if to_port is None else to_port
    extra = {"Description": description} if description else {}
    if cidrs:
        perm["IpRanges"] = [{"CidrIp": c, **extra} for c in cidrs]
    if cidrs6:
        perm["Ipv6Ranges"] = [{"CidrIpv6": c, **extra} for c in cidrs6]
    if groups:
        perm["UserIdGroupPairs"] = [{"GroupId": g, **extra} for g in groups]
    return perm


ALL_EGRESS = _perm("-1", cidrs=("0.0.0.0/0",))


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _trust_service(service: str) -> str:
    return _doc({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


class _Seeder:
    def __init__(self, endpoint_url: str, regions: tuple[str, ...]) -> None:
        self.endpoint_url = endpoint_url
        self.session = boto3.session.Session()
        self.clients: dict[tuple[str, str], Any] = {}
        self.regions = regions
        self.dr_region = next((r for r in regions if r != PRIMARY_REGION), None)
        self.planted: list[Planted] = []
        self.hardened: list[Planted] = []
        self.ec2 = self.client("ec2")
        self.iam = self.client("iam")
        self.account_id = str(self.client("sts").get_caller_identity()["Account"])
        self.ids: dict[str, str] = {}

    def client(self, service: str, region: str = PRIMARY_REGION) -> Any:
        key = (service, region)
        if key not in self.clients:
            self.clients[key] = self.session.client(
                service,
                region_name=region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=DUMMY_ACCESS_KEY_ID,
                aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"}),
            )
        return self.clients[key]

    def plant(self, check_id: str, resource: str, note: str) -> None:
        self.planted.append(Planted(check_id, resource, note))

    def harden(self, check_id: str, resource: str, note: str) -> None:
        self.hardened.append(Planted(check_id, resource, note))

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:{kind}/{name}"

    # ------------------------------------------------------------------ EC2 building blocks

    def vpc(self, ec2: Any, name: str, cidr: str, env: str) -> str:
        vpc_id = str(ec2.create_vpc(CidrBlock=cidr, TagSpecifications=_spec("vpc", name, env))["Vpc"]["VpcId"])
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        # Name the implicit resources too, so every resource in the stack carries its environment.
        implicit = [
            *(g["GroupId"] for g in self.default_sgs(ec2, vpc_id)),
            *(a["NetworkAclId"] for a in self.acls(ec2, vpc_id)),
            *(t["RouteTableId"] for t in self.route_tables(ec2, vpc_id)),
        ]
        for resource_id in implicit:
            kind = resource_id.split("-", 1)[0]
            ec2.create_tags(Resources=[resource_id], Tags=_tags(f"{name}-default-{kind}", env))
        return vpc_id

    @staticmethod
    def default_sgs(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
        return list(ec2.describe_security_groups(Filters=filters)["SecurityGroups"])

    @staticmethod
    def acls(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
        return list(ec2.describe_network_acls(Filters=filters)["NetworkAcls"])

    @staticmethod
    def route_tables(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
        return list(ec2.describe_route_tables(Filters=filters)["RouteTables"])

    def subnet(self, ec2: Any, vpc_id: str, name: str, cidr: str, az: str, env: str, tier: str, public_ip: bool) -> str:
        subnet_id = str(
            ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=cidr,
                AvailabilityZone=az,
                TagSpecifications=_spec("subnet", name, env, Tier=tier),
            )["Subnet"]["SubnetId"]
        )
        if public_ip:
            ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
        self.ids[name] = subnet_id
        return subnet_id

    def igw(self, ec2: Any, vpc_id: str, name: str, env: str) -> str:
        igw_id = str(
            ec2.create_internet_gateway(TagSpecifications=_spec("internet-gateway", name, env))["InternetGateway"][
                "InternetGatewayId"
            ]
        )
        ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
        return igw_id

    def route_table(self, ec2: Any, vpc_id: str, name: str, env: str, subnets: list[str]) -> str:
        rtb_id = str(
            ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_spec("route-table", name, env))["RouteTable"][
                "RouteTableId"
            ]
        )
        for subnet_id in subnets:
            ec2.associate_route_table(RouteTableId=rtb_id, SubnetId=subnet_id)
        self.ids[name] = rtb_id
        return rtb_id

    def sg(self, ec2: Any, vpc_id: str, name: str, env: str, description: str) -> str:
        sg_id = str(
            ec2.create_security_group(
                GroupName=name,
                Description=description,
                VpcId=vpc_id,
                TagSpecifications=_spec("security-group", name, env),
            )["GroupId"]
        )
        self.ids[name] = sg_id
        return sg_id

    @staticmethod
    def ingress(ec2: Any, sg_id: str, *perms: dict[str, Any]) -> None:
        ec2.authorize_security_group_ingress(GroupId=sg_id, IpPermissions=list(perms))

    @staticmethod
    def egress_only(ec2: Any, sg_id: str, *perms: dict[str, Any]) -> None:
        """Replace the default allow-all egress by exactly ``perms`` (none: no egress at all)."""
        ec2.revoke_security_group_egress(GroupId=sg_id, IpPermissions=[ALL_EGRESS])
        if perms:
            ec2.authorize_security_group_egress(GroupId=sg_id, IpPermissions=list(perms))

    def strip_default_sg(self, ec2: Any, vpc_id: str) -> str:
        group = self.default_sgs(ec2, vpc_id)[0]
        if group["IpPermissions"]:
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
        if group["IpPermissionsEgress"]:
            ec2.revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])
        return str(group["GroupId"])

    def guarded_nacl(self, ec2: Any, vpc_id: str, name: str, env: str, subnets: list[str]) -> str:
        """A custom NACL: deny the known-bad range first, then allow; associated with ``subnets``."""
        acl_id = str(
            ec2.create_network_acl(VpcId=vpc_id, TagSpecifications=_spec("network-acl", name, env))["NetworkAcl"][
                "NetworkAclId"
            ]
        )
        for egress in (False, True):
            ec2.create_network_acl_entry(
                NetworkAclId=acl_id,
                RuleNumber=90,
                Protocol="-1",
                RuleAction="deny",
                Egress=egress,
                CidrBlock=KNOWN_BAD_CIDR,
            )
            ec2.create_network_acl_entry(
                NetworkAclId=acl_id,
                RuleNumber=100,
                Protocol="-1",
                RuleAction="allow",
                Egress=egress,
                CidrBlock="0.0.0.0/0",
            )
        wanted = set(subnets)
        for acl in self.acls(ec2, vpc_id):
            for assoc in acl["Associations"]:
                if assoc["SubnetId"] in wanted and acl["NetworkAclId"] != acl_id:
                    ec2.replace_network_acl_association(
                        AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=acl_id
                    )
        return acl_id

    @staticmethod
    def drop_emulator_nat_eni(ec2: Any, vpc_id: str, allocation_id: str) -> None:
        """Remove the network interface moto fabricates for a NAT gateway.

        AWS gives a NAT gateway a requester-managed interface with no security group; moto instead
        creates a plain interface carrying the VPC's default security group, which would make the
        unused default group look in use. The NAT gateway and its Elastic IP survive the removal.
        """
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
        for eni in ec2.describe_network_interfaces(Filters=filters)["NetworkInterfaces"]:
            if eni.get("Association", {}).get("AllocationId") == allocation_id and not eni.get("Attachment"):
                ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])

    def flow_logs(self, ec2: Any, logs: Any, vpc_id: str, name: str, env: str, retention: int) -> str:
        group = f"/outsidein-demo/vpc-flow-logs/{name}"
        logs.create_log_group(logGroupName=group, tags={"Name": group, "Environment": env})
        logs.put_retention_policy(logGroupName=group, retentionInDays=retention)
        ec2.create_flow_logs(
            ResourceIds=[vpc_id],
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName=group,
            DeliverLogsPermissionArn=self.arn("role", "vpc-flow-logs-delivery"),
            TagSpecifications=_spec("vpc-flow-log", f"{name}-flow-logs", env),
        )
        return group

    def instance(self, name: str, env: str, subnet_id: str, sg_ids: list[str], role: str) -> str:
        tags = {"Role": role}
        reservation = self.ec2.run_instances(
            ImageId=self.ids["ami"],
            InstanceType=INSTANCE_TYPE,
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet_id,
            SecurityGroupIds=sg_ids,
            TagSpecifications=[*_spec("instance", name, env, **tags), *_spec("volume", name, env, **tags)],
        )
        instance_id = str(reservation["Instances"][0]["InstanceId"])
        self.ids[name] = instance_id
        return instance_id

    # ------------------------------------------------------------------ the stack

    def seed(self) -> DemoStack:
        self.default_vpcs()
        self.iam_identities()  # first: the flow-log delivery role is referenced by every VPC
        self.prod_network()
        self.nonprod_network()
        self.sandbox_network()
        if self.dr_region:
            self.dr_network(self.dr_region)
        self.instances()
        self.data_stores()
        self.buckets()
        return DemoStack(self.account_id, self.regions, self.planted, self.hardened)

    def default_vpcs(self) -> None:
        """The emulator, like AWS, gives every region a default VPC; nobody cleaned it up."""
        for region in self.regions:
            ec2 = self.client("ec2", region)
            filters = [{"Name": "is-default", "Values": ["true"]}]
            for vpc in ec2.describe_vpcs(Filters=filters)["Vpcs"]:
                vpc_id = vpc["VpcId"]
                self.plant("vpc-flow-logs", vpc_id, f"{region} default VPC left in place without flow logs")
                for acl in self.acls(ec2, vpc_id):
                    if acl["IsDefault"]:
                        self.plant(
                            "nacl-no-deny",
                            acl["NetworkAclId"],
                            f"{region} default VPC's default NACL: allow-all, no deny, subnets associated",
                        )
                # Its default SG is unused; strip its allow-all egress as AWS's own guidance says.
                self.strip_default_sg(ec2, vpc_id)

    def prod_network(self) -> None:
        ec2, env = self.ec2, "prod"
        a, b = f"{PRIMARY_REGION}a", f"{PRIMARY_REGION}b"
        vpc = self.vpc(ec2, "prod-vpc", "10.30.0.0/16", env)
        self.ids["prod-vpc"] = vpc
        pub_a = self.subnet(ec2, vpc, "prod-public-a", "10.30.0.0/24", a, env, "public", True)
        pub_b = self.subnet(ec2, vpc, "prod-public-b", "10.30.1.0/24", b, env, "public", True)
        app_a = self.subnet(ec2, vpc, "prod-app-a", "10.30.10.0/24", a, env, "app", False)
        app_b = self.subnet(ec2, vpc, "prod-app-b", "10.30.11.0/24", b, env, "app", False)
        data_a = self.subnet(ec2, vpc, "prod-data-a", "10.30.20.0/24", a, env, "data", False)
        # PLANTED: someone "temporarily" put data-b behind the public route table and let it
        # hand out public IPs.
        data_b = self.subnet(ec2, vpc, "prod-data-b", "10.30.21.0/24", b, env, "data", True)

        igw = self.igw(ec2, vpc, "prod-igw", env)
        public_rtb = self.route_table(ec2, vpc, "prod-public-rtb", env, [pub_a, pub_b, data_b])
        ec2.create_route(RouteTableId=public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)

        eip = ec2.allocate_address(Domain="vpc", TagSpecifications=_spec("elastic-ip", "prod-nat-a-eip", env))
        nat = str(
            ec2.create_nat_gateway(
                SubnetId=pub_a,
                AllocationId=eip["AllocationId"],
                TagSpecifications=_spec("natgateway", "prod-nat-a", env),
            )["NatGateway"]["NatGatewayId"]
        )
        self.ids["prod-nat-a"] = nat
        self.drop_emulator_nat_eni(ec2, vpc, eip["AllocationId"])
        app_rtb = self.route_table(ec2, vpc, "prod-app-rtb", env, [app_a, app_b])
        ec2.create_route(RouteTableId=app_rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        self.route_table(ec2, vpc, "prod-data-rtb", env, [data_a])

        # S3 gateway endpoint: the partner-share bucket is readable only through it.
        vpce = ec2.create_vpc_endpoint(
            VpcId=vpc,
            VpcEndpointType="Gateway",
            ServiceName=f"com.amazonaws.{PRIMARY_REGION}.s3",
            RouteTableIds=[app_rtb],
            TagSpecifications=_spec("vpc-endpoint", "prod-s3-endpoint", env),
        )
        self.ids["prod-s3-vpce"] = str(vpce["VpcEndpoint"]["VpcEndpointId"])

        self.plant("vpc-nat-per-az", vpc, f"single NAT gateway {nat} in {a}; app subnet in {b} depends on it")
        self.plant("vpc-private-subnet-igw-route", data_b, "data subnet b associated with the public route table")
        self.plant("vpc-subnet-auto-public-ip", data_b, "data subnet b has MapPublicIpOnLaunch=true")
        self.harden("vpc-private-subnet-igw-route", data_a, "data subnet a: data route table, local route only")
        self.harden("vpc-subnet-auto-public-ip", data_a, "data subnet a does not auto-assign public IPs")

        acl = self.guarded_nacl(ec2, vpc, "prod-nacl", env, [pub_a, pub_b, app_a, app_b, data_a, data_b])
        self.ids["prod-nacl"] = acl
        self.harden("nacl-no-deny", acl, f"prod NACL denies {KNOWN_BAD_CIDR}, associated with all prod subnets")

        self.flow_logs(ec2, self.client("logs"), vpc, "prod", env, 365)
        self.harden("vpc-flow-logs", vpc, "prod VPC flow logs (ALL) to CloudWatch Logs")
        self.harden("vpc-flow-logs-retention", vpc, "prod flow-log group retains 365 days")

        default_sg = self.strip_default_sg(ec2, vpc)
        self.harden("sg-default-in-use", default_sg, "prod default SG: all rules revoked, attached to nothing")

        # Security groups: create all first, since rules reference one another.
        alb = self.sg(ec2, vpc, "prod-alb-sg", env, "Public HTTPS load balancer")
        bastion = self.sg(ec2, vpc, "prod-bastion-sg", env, "SSH bastion")
        app = self.sg(ec2, vpc, "prod-app-sg", env, "Application servers")
        db = self.sg(ec2, vpc, "prod-db-sg", env, "PostgreSQL")
        redis = self.sg(ec2, vpc, "prod-redis-sg", env, "Redis cache")
        monitoring = self.sg(ec2, vpc, "prod-monitoring-sg", env, "Grafana and Prometheus")

        world4, world6 = ("0.0.0.0/0",), ("::/0",)
        self.ingress(ec2, alb, _perm("tcp", 443, cidrs=world4, cidrs6=world6, description="public HTTPS"))
        self.egress_only(ec2, alb, _perm("tcp", 443, groups=(app,)), _perm("tcp", 8080, groups=(app,)))

        self.ingress(ec2, bastion, _perm("tcp", 22, cidrs=world4, description="temporary - remove"))
        self.egress_only(ec2, bastion, _perm("tcp", 22, groups=(app,)))

        self.ingress(
            ec2,
            app,
            _perm("tcp", 8080, groups=(alb,), description="from ALB"),
            _perm("tcp", 22, groups=(bastion,), description="from bastion"),
        )
        self.egress_only(
            ec2,
            app,
            _perm("tcp", 443, cidrs=world4, description="HTTPS to AWS APIs"),
            _perm("tcp", 5432, groups=(db,)),
            _perm("tcp", 6379, groups=(redis,)),
        )

        self.ingress(ec2, db, _perm("tcp", 5432, cidrs=("10.30.10.0/24",), description="app subnet a"))
        self.egress_only(ec2, db)

        self.ingress(ec2, redis, _perm("tcp", 6379, groups=(app,)))
        self.egress_only(ec2, redis)

        self.ingress(
            ec2,
            monitoring,
            _perm("tcp", 3000, cidrs=world4, description="Grafana"),
            _perm("tcp", 9090, cidrs=world4, description="Prometheus"),
        )
        self.egress_only(ec2, monitoring)

        self.plant("sg-open-ingress", bastion, "prod-bastion-sg: SSH 22 from 0.0.0.0/0")
        self.plant("sg-open-ingress", monitoring, "prod-monitoring-sg: 3000 and 9090 from 0.0.0.0/0")
        self.plant("sg-cidr-intra-vpc", db, "prod-db-sg: 5432 from CIDR 10.30.10.0/24 instead of the app SG")
        self.harden("sg-open-ingress", alb, "prod-alb-sg: only 443 from the internet (a public ALB)")
        self.harden("sg-open-ingress", app, "prod-app-sg: 8080 from the ALB SG, 22 from the bastion SG")
        self.harden("sg-cidr-intra-vpc", redis, "prod-redis-sg: 6379 from prod-app-sg (SG reference)")
        self.harden("sg-shared-across-envs", app, "prod-app-sg is used by prod instances only")
        self.load_balancers(env, [pub_a, pub_b], alb)
        for sg_id, name in (
            (alb, "prod-alb-sg"),
            (bastion, "prod-bastion-sg"),
            (app, "prod-app-sg"),
            (db, "prod-db-sg"),
            (redis, "prod-redis-sg"),
            (monitoring, "prod-monitoring-sg"),
        ):
            self.harden("sg-open-egress", sg_id, f"{name}: default allow-all egress revoked")

    def load_balancers(self, env: str, subnets: list[str], sg: str) -> None:
        """Three public ALBs: one without WAF, one whose web ACL rate-limits, one whose ACL does not."""
        elbv2, waf = self.client("elbv2"), self.client("wafv2")

        def alb(name: str) -> str:
            created = elbv2.create_load_balancer(Name=name, Subnets=subnets, SecurityGroups=[sg],
                                                 Scheme="internet-facing", Type="application",
                                                 Tags=_tags(name, env))
            return str(created["LoadBalancers"][0]["LoadBalancerArn"])

        def visibility(name: str) -> dict[str, Any]:
            return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}

        common = {"Name": "aws-common", "Priority": 10, "OverrideAction": {"None": {}},
                  "VisibilityConfig": visibility("aws-common"),
                  "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS",
                                                              "Name": "AWSManagedRulesCommonRuleSet"}}}
        rate = {"Name": "per-ip-flood", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": visibility("flood"),
                "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}}}

        def web_acl(name: str, *rules: dict[str, Any]) -> str:
            created = waf.create_web_acl(Name=name, Scope="REGIONAL", DefaultAction={"Allow": {}},
                                         VisibilityConfig=visibility(name), Rules=list(rules),
                                         Tags=_tags(name, env))
            return str(created["Summary"]["ARN"])

        web = alb("prod-web")
        self.plant("waf-alb-unprotected", web, "prod-web: internet-facing ALB with no web ACL")
        api, api_acl = alb("prod-api"), web_acl("prod-api-edge", rate, common)
        waf.associate_web_acl(WebACLArn=api_acl, ResourceArn=api)
        self.harden("waf-alb-unprotected", api, "prod-api: web ACL prod-api-edge")
        self.harden("waf-no-rate-based-rule", api_acl, "prod-api-edge: rate-based rule per-ip-flood (2,000/5 min)")
        admin, admin_acl = alb("prod-admin"), web_acl("prod-admin-edge", common)
        waf.associate_web_acl(WebACLArn=admin_acl, ResourceArn=admin)
        self.harden("waf-alb-unprotected", admin, "prod-admin: web ACL prod-admin-edge")
        self.plant("waf-no-rate-based-rule", admin_acl, "prod-admin-edge: managed common rules only, no rate limit")

    def nonprod_network(self) -> None:
        ec2 = self.ec2
        a, b = f"{PRIMARY_REGION}a", f"{PRIMARY_REGION}b"
        vpc = self.vpc(ec2, "nonprod-vpc", "10.20.0.0/16", "nonprod")
        self.ids["nonprod-vpc"] = vpc
        pub = self.subnet(ec2, vpc, "dev-public-a", "10.20.0.0/24", a, "dev", "public", True)
        self.subnet(ec2, vpc, "dev-app-a", "10.20.10.0/24", a, "dev", "app", False)
        self.subnet(ec2, vpc, "staging-app-a", "10.20.20.0/24", a, "staging", "app", False)
        self.subnet(ec2, vpc, "staging-app-b", "10.20.21.0/24", b, "staging", "app", False)
        igw = self.igw(ec2, vpc, "nonprod-igw", "nonprod")
        rtb = self.route_table(ec2, vpc, "nonprod-public-rtb", "nonprod", [pub])
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        # App subnets stay on the main route table (local route only).

        default_acl = next(acl for acl in self.acls(ec2, vpc) if acl["IsDefault"])
        self.plant(
            "nacl-no-deny",
            default_acl["NetworkAclId"],
            "nonprod default NACL: allow-all, no deny, all subnets",
        )

        self.flow_logs(ec2, self.client("logs"), vpc, "nonprod", "nonprod", 30)
        self.plant("vpc-flow-logs-retention", vpc, "nonprod flow-log group keeps only 30 days")

        default_sg = str(self.default_sgs(ec2, vpc)[0]["GroupId"])
        self.ids["nonprod-default-sg"] = default_sg
        app = self.sg(ec2, vpc, "app-sg", "dev", "App servers (dev, reused by staging)")
        db = self.sg(ec2, vpc, "staging-db-sg", "staging", "Staging databases")
        mq = self.sg(ec2, vpc, "staging-mq-sg", "staging", "Staging RabbitMQ")
        debug = self.sg(ec2, vpc, "dev-debug-sg", "dev", "debugging - open everything")

        self.ingress(ec2, app, _perm("tcp", 8080, groups=(app,), description="service to service"))
        self.egress_only(
            ec2,
            app,
            _perm("tcp", 443, cidrs=("0.0.0.0/0",)),
            _perm("tcp", 5432, groups=(db,)),
            _perm("tcp", 3306, groups=(db,)),
            _perm("tcp", 5671, groups=(mq,)),
        )
        self.ingress(
            ec2,
            db,
            _perm("tcp", 5432, cidrs=("0.0.0.0/0",), description="vendor BI tool"),
            _perm("tcp", 3306, cidrs=("0.0.0.0/0",), description="vendor BI tool"),
        )
        self.ingress(ec2, mq, _perm("tcp", 5671, groups=(app,)))
        self.egress_only(ec2, mq)
        self.ingress(ec2, debug, _perm("-1", cidrs=("0.0.0.0/0",), description="debug"))

        self.plant("sg-shared-across-envs", app, "app-sg attached to a dev and a staging instance")
        self.plant("sg-open-ingress", db, "staging-db-sg: 5432 and 3306 from 0.0.0.0/0")
        self.plant("sg-open-egress", db, "staging-db-sg keeps the default allow-all egress")
        self.plant("sg-open-ingress", debug, "dev-debug-sg: all traffic (-1) from 0.0.0.0/0")
        self.plant("sg-open-egress", debug, "dev-debug-sg keeps the default allow-all egress")
        self.plant("sg-default-in-use", default_sg, "nonprod default SG attached to dev-scratch-1")

    def sandbox_network(self) -> None:
        vpc = self.vpc(self.ec2, "sandbox-vpc", "10.40.0.0/16", "dev")
        self.ids["sandbox-vpc"] = vpc
        self.strip_default_sg(self.ec2, vpc)
        self.plant("vpc-flow-logs", vpc, "dev sandbox VPC has no flow logs")

    def dr_network(self, region: str) -> None:
        ec2, env = self.client("ec2", region), "prod"
        vpc = self.vpc(ec2, "prod-dr-vpc", "10.31.0.0/16", env)
        self.ids["prod-dr-vpc"] = vpc
        sub_a = self.subnet(ec2, vpc, "prod-dr-app-a", "10.31.10.0/24", f"{region}a", env, "app", False)
        sub_b = self.subnet(ec2, vpc, "prod-dr-app-b", "10.31.11.0/24", f"{region}b", env, "app", False)
        acl = self.guarded_nacl(ec2, vpc, "prod-dr-nacl", env, [sub_a, sub_b])
        self.flow_logs(ec2, self.client("logs", region), vpc, "prod-dr", env, 365)
        default_sg = self.strip_default_sg(ec2, vpc)
        sg = self.sg(ec2, vpc, "prod-dr-app-sg", env, "DR application servers")
        self.ingress(ec2, sg, _perm("tcp", 8080, groups=(sg,)))
        self.egress_only(ec2, sg, _perm("tcp", 443, cidrs=("0.0.0.0/0",)))
        self.harden("vpc-flow-logs", vpc, f"{region} prod DR VPC flow logs")
        self.harden("vpc-flow-logs-retention", vpc, f"{region} prod DR flow-log group retains 365 days")
        self.harden("nacl-no-deny", acl, f"{region} prod DR NACL denies {KNOWN_BAD_CIDR}")
        self.harden("sg-default-in-use", default_sg, f"{region} prod DR default SG: no rules, unused")
        self.harden("sg-open-ingress", sg, "prod-dr-app-sg: 8080 from itself only")
        self.harden("sg-open-egress", sg, "prod-dr-app-sg: egress 443 only")

    def instances(self) -> None:
        ec2, ids = self.ec2, self.ids
        ami = ec2.register_image(
            Name="outsidein-demo-al2023",
            Description="Demo base image",
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
            TagSpecifications=_spec("image", "outsidein-demo-al2023", "prod"),
        )
        ids["ami"] = str(ami["ImageId"])
        self.instance("prod-bastion-1", "prod", ids["prod-public-a"], [ids["prod-bastion-sg"]], "bastion")
        self.instance("prod-app-1", "prod", ids["prod-app-a"], [ids["prod-app-sg"]], "app")
        self.instance("prod-app-2", "prod", ids["prod-app-b"], [ids["prod-app-sg"]], "app")
        self.instance("prod-monitoring-1", "prod", ids["prod-public-b"], [ids["prod-monitoring-sg"]], "monitoring")
        self.instance("dev-app-1", "dev", ids["dev-app-a"], [ids["app-sg"], ids["dev-debug-sg"]], "app")
        self.instance("staging-app-1", "staging", ids["staging-app-a"], [ids["app-sg"]], "app")
        self.instance("dev-scratch-1", "dev", ids["dev-app-a"], [ids["nonprod-default-sg"]], "scratch")

    def data_stores(self) -> None:
        ids = self.ids
        rds = self.client("rds")

        rds.create_db_subnet_group(
            DBSubnetGroupName="prod-data",
            DBSubnetGroupDescription="prod data subnets",
            SubnetIds=[ids["prod-data-a"], ids["prod-data-b"]],
            Tags=_tags("prod-data", "prod"),
        )
        rds.create_db_instance(
            DBInstanceIdentifier="prod-orders-db",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            EngineVersion="16.3",
            MasterUsername="orders_admin",
            MasterUserPassword="emulator-only-password",
            AllocatedStorage=20,
            DBSubnetGroupName="prod-data",
            VpcSecurityGroupIds=[ids["prod-db-sg"]],
            PubliclyAccessible=False,
            StorageEncrypted=True,
            Tags=_tags("prod-orders-db", "prod"),
        )
        self.plant(
            "vpc-datastore-public",
            "prod-orders-db",
            "RDS DB instance identifier; not publicly accessible, but its subnet group includes "
            "prod-data-b, which routes 0.0.0.0/0 to the IGW",
        )

        rds.create_db_subnet_group(
            DBSubnetGroupName="staging-app",
            DBSubnetGroupDescription="staging app subnets",
            SubnetIds=[ids["staging-app-a"], ids["staging-app-b"]],
            Tags=_tags("staging-app", "staging"),
        )
        rds.create_db_instance(
            DBInstanceIdentifier="staging-mysql",
            DBInstanceClass="db.t3.micro",
            Engine="mysql",
            EngineVersion="8.0.36",
            MasterUsername="admin",
            MasterUserPassword="emulator-only-password",
            AllocatedStorage=20,
            DBSubnetGroupName="staging-app",
            VpcSecurityGroupIds=[ids["staging-db-sg"]],
            PubliclyAccessible=True,
            Tags=_tags("staging-mysql", "staging"),
        )
        self.plant("vpc-datastore-public", "staging-mysql", "RDS DB instance identifier; PubliclyAccessible=true")

        cache = self.client("elasticache")
        cache.create_cache_subnet_group(
            CacheSubnetGroupName="prod-cache",
            CacheSubnetGroupDescription="prod data subnet a",
            SubnetIds=[ids["prod-data-a"]],
            Tags=_tags("prod-cache", "prod"),
        )
        cache.create_cache_cluster(
            CacheClusterId="prod-sessions",
            Engine="redis",
            EngineVersion="7.1",
            CacheNodeType="cache.t3.micro",
            NumCacheNodes=1,
            CacheSubnetGroupName="prod-cache",
            SecurityGroupIds=[ids["prod-redis-sg"]],
            Tags=_tags("prod-sessions", "prod"),
        )
        self.harden(
            "vpc-datastore-public",
            "prod-sessions",
            "ElastiCache CacheClusterId; subnet group = prod-data-a only (no internet route)",
        )

        mq = self.client("mq")
        broker = mq.create_broker(
            BrokerName="staging-events",
            EngineType="RABBITMQ",
            EngineVersion="3.13",
            HostInstanceType="mq.t3.micro",
            DeploymentMode="SINGLE_INSTANCE",
            PubliclyAccessible=True,
            AutoMinorVersionUpgrade=True,
            SubnetIds=[ids["staging-app-a"]],
            SecurityGroups=[ids["staging-mq-sg"]],
            Users=[{"Username": "events", "Password": "emulator-only-password"}],
            Tags={"Name": "staging-events", "Environment": "staging"},
        )
        self.plant(
            "vpc-datastore-public",
            str(broker["BrokerId"]),
            "Amazon MQ BrokerId; RabbitMQ PubliclyAccessible=true",
        )

    def iam_identities(self) -> None:
        iam, acct = self.iam, self.account_id

        def tags(env: str, name: str) -> list[dict[str, str]]:
            return _tags(name, env)

        def policy(name: str, env: str, *statements: dict[str, Any]) -> str:
            created = iam.create_policy(PolicyName=name, PolicyDocument=_doc(*statements), Tags=tags(env, name))
            return str(created["Policy"]["Arn"])

        def role(name: str, env: str, trust: str, boundary: str | None = None) -> str:
            kwargs: dict[str, Any] = {"PermissionsBoundary": boundary} if boundary else {}
            created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, Tags=tags(env, name), **kwargs)
            return str(created["Role"]["Arn"])

        boundary = policy(
            "workload-boundary",
            "prod",
            {
                "Sid": "WorkloadCeiling",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:ListBucket",
                    "sqs:SendMessage",
                    "sqs:ReceiveMessage",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                ],
                "Resource": "*",
            },
        )

        # --- flow-log delivery (hardened, used by every VPC's flow logs)
        flow = role("vpc-flow-logs-delivery", "prod", _trust_service("vpc-flow-logs.amazonaws.com"), boundary)
        deliver = policy(
            "vpc-flow-logs-deliver",
            "prod",
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                ],
                "Resource": f"arn:aws:logs:*:{acct}:log-group:/outsidein-demo/vpc-flow-logs/*",
            },
        )
        iam.attach_role_policy(RoleName="vpc-flow-logs-delivery", PolicyArn=deliver)
        self.harden("iam-permission-boundary", flow, "flow-log delivery role has a permission boundary")

        # --- ci-deployer: AdministratorAccess
        ci = role("ci-deployer", "prod", _trust_service("codebuild.amazonaws.com"))
        iam.attach_role_policy(RoleName="ci-deployer", PolicyArn=ADMIN_POLICY_ARN)
        self.plant("iam-wildcard-admin", ADMIN_POLICY_ARN, "AWS-managed AdministratorAccess attached to ci-deployer")
        self.plant("iam-permission-boundary", ci, "ci-deployer (admin) has no permission boundary")

        # --- ops-automation: iam:* on *
        ops = role("ops-automation", "prod", _trust_service("lambda.amazonaws.com"))
        iam_full = policy("iam-full-access", "prod", {"Effect": "Allow", "Action": "iam:*", "Resource": "*"})
        iam.attach_role_policy(RoleName="ops-automation", PolicyArn=iam_full)
        self.plant("iam-wildcard-admin", iam_full, "iam:* on * (privilege escalation), attached to ops-automation")
        self.plant("iam-permission-boundary", ops, "ops-automation has no permission boundary")

        # --- app-prod: s3:* on *, plus an inline policy
        app_prod = role("app-prod", "prod", _trust_service("ec2.amazonaws.com"))
        s3_all = policy("s3-everything", "prod", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
        iam.attach_role_policy(RoleName="app-prod", PolicyArn=s3_all)
        iam.put_role_policy(
            RoleName="app-prod",
            PolicyName="orders-queue",
            PolicyDocument=_doc(
                {
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
                    "Resource": f"arn:aws:sqs:{PRIMARY_REGION}:{acct}:prod-orders",
                }
            ),
        )
        self.plant("iam-service-wildcard", s3_all, "s3:* on *, attached to app-prod")
        self.plant("iam-inline-policy", app_prod, "app-prod carries inline policy orders-queue")
        self.plant("iam-permission-boundary", app_prod, "app-prod has no permission boundary")

        # --- app-staging: scoped, with boundary
        app_staging = role("app-staging", "staging", _trust_service("ec2.amazonaws.com"), boundary)
        staging_read = policy(
            "app-staging-objects",
            "staging",
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": "arn:aws:s3:::outsidein-demo-staging-uploads/*",
            },
        )
        iam.attach_role_policy(RoleName="app-staging", PolicyArn=staging_read)
        self.harden("iam-permission-boundary", app_staging, "app-staging has a permission boundary")

        # --- cross-account trust
        vendor = role(
            "vendor-audit",
            "prod",
            _doc(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{FOREIGN_ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                }
            ),
        )
        vendor_read = policy(
            "vendor-audit-read",
            "prod",
            {
                "Effect": "Allow",
                "Action": ["iam:GetAccountSummary", "iam:ListRoles", "ec2:DescribeSecurityGroups"],
                "Resource": "*",
            },
        )
        iam.attach_role_policy(RoleName="vendor-audit", PolicyArn=vendor_read)
        self.plant("iam-cross-account-trust", vendor, f"trusted by account {FOREIGN_ACCOUNT} without ExternalId")
        self.plant("iam-permission-boundary", vendor, "vendor-audit has no permission boundary")

        partner = role(
            "partner-reporting",
            "prod",
            _doc(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{PARTNER_ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": PARTNER_EXTERNAL_ID}},
                }
            ),
            boundary,
        )
        partner_read = policy(
            "partner-reporting-read",
            "prod",
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{PARTNER_BUCKET}", f"arn:aws:s3:::{PARTNER_BUCKET}/*"],
            },
        )
        iam.attach_role_policy(RoleName="partner-reporting", PolicyArn=partner_read)
        self.harden("iam-cross-account-trust", partner, f"trusted by {PARTNER_ACCOUNT} with sts:ExternalId")
        self.harden("iam-permission-boundary", partner, "partner-reporting has a permission boundary")

        legacy = role(
            "legacy-any",
            "dev",
            _doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}),
        )
        self.plant("iam-cross-account-trust", legacy, 'trust policy Principal {"AWS": "*"}')
        self.plant("iam-permission-boundary", legacy, "legacy-any has no permission boundary")

        # --- backup writer (the only principal the backup bucket allows)
        backup = role("backup-writer", "prod", _trust_service("backup.amazonaws.com"), boundary)
        backup_write = policy(
            "backup-writer-objects",
            "prod",
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"arn:aws:s3:::{BACKUP_BUCKET}/*",
            },
        )
        iam.attach_role_policy(RoleName="backup-writer", PolicyArn=backup_write)
        self.ids["backup-writer"] = backup
        self.harden("iam-permission-boundary", backup, "backup-writer has a permission boundary")

        # --- users
        for user, env in (("alice", "prod"), ("bob", "prod"), ("svc-backup", "prod")):
            iam.create_user(UserName=user, Tags=tags(env, user))
        iam.create_login_profile(UserName="alice", Password="Emulator-only-1!", PasswordResetRequired=False)
        iam.create_login_profile(UserName="bob", Password="Emulator-only-2!", PasswordResetRequired=False)
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="bob")["VirtualMFADevice"]["SerialNumber"]
        iam.enable_mfa_device(
            UserName="bob", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
        )
        iam.create_access_key(UserName="svc-backup")
        self.plant("iam-console-mfa", self.arn("user", "alice"), "alice: console password, no MFA")
        self.harden("iam-console-mfa", self.arn("user", "bob"), "bob: console password with a virtual MFA")

        # moto cannot enable MFA on the root user, so root has none — as in a neglected account.
        self.plant("iam-root-mfa", f"arn:aws:iam::{acct}:root", "root user has no MFA device")

    def buckets(self) -> None:
        s3 = self.client("s3")

        def bucket(name: str, env: str) -> None:
            s3.create_bucket(Bucket=name)
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(name, env)})

        bucket(PUBLIC_BUCKET, "prod")
        s3.put_bucket_policy(
            Bucket=PUBLIC_BUCKET,
            Policy=_doc(
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{PUBLIC_BUCKET}/*",
                }
            ),
        )
        self.plant("s3-public-getobject", PUBLIC_BUCKET, 'bucket policy: Principal "*" s3:GetObject')

        bucket(BACKUP_BUCKET, "prod")
        s3.put_public_access_block(
            Bucket=BACKUP_BUCKET,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_policy(
            Bucket=BACKUP_BUCKET,
            Policy=_doc(
                {
                    "Sid": "BackupWriterOnly",
                    "Effect": "Allow",
                    "Principal": {"AWS": self.ids["backup-writer"]},
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": f"arn:aws:s3:::{BACKUP_BUCKET}/*",
                }
            ),
        )
        self.harden("s3-public-getobject", BACKUP_BUCKET, "public access block on; policy allows backup-writer only")

        bucket(PARTNER_BUCKET, "prod")
        s3.put_bucket_policy(
            Bucket=PARTNER_BUCKET,
            Policy=_doc(
                {
                    "Sid": "ReadThroughProdEndpointOnly",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{PARTNER_BUCKET}/*",
                    "Condition": {"StringEquals": {"aws:SourceVpce": self.ids["prod-s3-vpce"]}},
                }
            ),
        )
        self.harden("s3-public-getobject", PARTNER_BUCKET, "GetObject for * only via the prod S3 VPC endpoint")


def seed_demo_stack(endpoint_url: str, regions: tuple[str, ...] = DEFAULT_REGIONS) -> DemoStack:
    """Build the demo stack in the emulator at ``endpoint_url`` and say what the audit must find.

    ``regions`` must include us-east-1 (which holds almost everything); the first other region,
    if any, receives the prod disaster-recovery VPC.
    """
    if PRIMARY_REGION not in regions:
        raise ValueError(f"regions must include {PRIMARY_REGION}: {regions!r}")
    return _Seeder(endpoint_url, tuple(regions)).seed()
