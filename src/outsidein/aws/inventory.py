"""Parse raw AWS evidence into small typed models the checks read."""

from __future__ import annotations

import base64
import binascii
import csv
import functools
import io
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from outsidein.aws.reads import internet_facing_alb
from outsidein.evidence import GLOBAL, AwsEvidence

ANY_IPV4 = "0.0.0.0/0"
ANY_IPV6 = "::/0"
ALL_PROTOCOLS = "-1"


def tags_of(raw: dict[str, Any], key: str = "Tags") -> dict[str, str]:
    """AWS tag lists (``[{"Key": k, "Value": v}]``, any key case) as a dict."""
    tags = raw.get(key) or raw.get("TagList") or []
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t.get("Key", t.get("key", ""))): str(t.get("Value", t.get("value", ""))) for t in tags}


# -- layer 1 -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SgRule:
    """One permission of a security group: protocol, port range, and its sources or destinations."""

    protocol: str  # "-1" for all, "tcp", "udp", "icmp", "icmpv6" or a protocol number
    from_port: int | None
    to_port: int | None
    cidrs: tuple[str, ...] = ()  # IPv4 and IPv6 ranges
    group_ids: tuple[str, ...] = ()  # security-group sources
    prefix_lists: tuple[str, ...] = ()

    @property
    def all_ports(self) -> bool:
        if self.protocol == ALL_PROTOCOLS:
            return True
        if self.protocol not in ("tcp", "udp", "6", "17"):
            return False
        return (self.from_port in (None, 0, -1)) and (self.to_port in (None, 65535, -1))

    def covers_port(self, port: int) -> bool:
        if self.protocol == ALL_PROTOCOLS:
            return True
        if self.protocol not in ("tcp", "udp", "6", "17"):
            return False
        low = 0 if self.from_port in (None, -1) else int(self.from_port)
        high = 65535 if self.to_port in (None, -1) else int(self.to_port)
        return low <= port <= high

    @property
    def ports_text(self) -> str:
        if self.protocol == ALL_PROTOCOLS:
            return "all traffic"
        proto = {"6": "tcp", "17": "udp"}.get(self.protocol, self.protocol)
        if self.protocol in ("icmp", "icmpv6", "1", "58"):
            return proto
        if self.all_ports:
            return f"{proto}/all ports"
        if self.from_port == self.to_port:
            return f"{proto}/{self.from_port}"
        return f"{proto}/{self.from_port}-{self.to_port}"


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    id: str
    name: str
    vpc_id: str | None
    tags: dict[str, str]
    ingress: tuple[SgRule, ...]
    egress: tuple[SgRule, ...]

    @property
    def is_default(self) -> bool:
        return self.name == "default"


def _rules(permissions: Iterable[dict[str, Any]]) -> tuple[SgRule, ...]:
    rules = []
    for perm in permissions:
        protocol = str(perm.get("IpProtocol", ALL_PROTOCOLS)).lower()
        cidrs = tuple(r["CidrIp"] for r in perm.get("IpRanges", []) if "CidrIp" in r)
        cidrs += tuple(r["CidrIpv6"] for r in perm.get("Ipv6Ranges", []) if "CidrIpv6" in r)
        groups = tuple(g["GroupId"] for g in perm.get("UserIdGroupPairs", []) if "GroupId" in g)
        prefix = tuple(p["PrefixListId"] for p in perm.get("PrefixListIds", []) if "PrefixListId" in p)
        from_port = perm.get("FromPort")
        to_port = perm.get("ToPort")
        rules.append(SgRule(protocol, None if from_port is None else int(from_port),
                            None if to_port is None else int(to_port), cidrs, groups, prefix))
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class NaclEntry:
    rule_number: int
    egress: bool
    action: str  # "allow" | "deny"
    cidr: str
    protocol: str
    from_port: int | None
    to_port: int | None


@dataclass(frozen=True, slots=True)
class NetworkAcl:
    id: str
    vpc_id: str
    is_default: bool
    entries: tuple[NaclEntry, ...]
    subnet_ids: tuple[str, ...]
    tags: dict[str, str]


# -- layer 6 -------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Vpc:
    id: str
    cidrs: tuple[str, ...]
    is_default: bool
    tags: dict[str, str]

    def contains(self, cidr: str) -> bool:
        """Whether a CIDR lies wholly inside one of this VPC's ranges."""
        net = _network(cidr)
        if net is None:
            return False
        for own in self.cidrs:
            own_net = _network(own)
            if own_net is not None and net.version == own_net.version and net.subnet_of(own_net):  # type: ignore[arg-type]
                return True
        return False


@dataclass(frozen=True, slots=True)
class Subnet:
    id: str
    vpc_id: str
    az: str
    cidr: str
    map_public_ip: bool
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class Route:
    destination: str
    target: str  # igw-…, nat-…, local, pcx-…, tgw-…, eni-…, vgw-…
    state: str

    @property
    def to_internet_gateway(self) -> bool:
        return self.target.startswith("igw-") and self.state != "blackhole"


@dataclass(frozen=True, slots=True)
class RouteTable:
    id: str
    vpc_id: str
    routes: tuple[Route, ...]
    subnet_ids: tuple[str, ...]  # explicit associations
    is_main: bool
    tags: dict[str, str]

    @property
    def igw_routes(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.to_internet_gateway)


@dataclass(frozen=True, slots=True)
class NatGateway:
    id: str
    vpc_id: str
    subnet_id: str
    state: str
    connectivity: str  # "public" | "private"


@dataclass(frozen=True, slots=True)
class FlowLog:
    id: str
    resource_id: str
    status: str
    destination_type: str  # "cloud-watch-logs" | "s3" | "kinesis-data-firehose"
    log_group: str | None
    destination: str | None


@dataclass(frozen=True, slots=True)
class NetworkInterface:
    id: str
    vpc_id: str | None
    subnet_id: str | None
    group_ids: tuple[str, ...]
    instance_id: str | None
    interface_type: str
    description: str
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    vpc_id: str | None
    subnet_id: str | None
    group_ids: tuple[str, ...]
    state: str
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class DataStore:
    """A database, cache or broker: RDS, ElastiCache or Amazon MQ."""

    kind: str  # "RDS" | "ElastiCache" | "MQ"
    id: str
    engine: str
    publicly_accessible: bool | None  # None: the service has no such switch (ElastiCache)
    subnet_ids: tuple[str, ...]
    vpc_id: str | None
    tags: dict[str, str]
    backup_retention_days: int | None = None  # RDS automated backups (0: off); None: the service has none
    latest_restorable: str | None = None  # RDS LatestRestorableTime (ISO 8601), when automated backups run


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    name: str
    scheme: str
    subnet_ids: tuple[str, ...]
    vpc_id: str | None
    arn: str = ""
    kind: str = "application"  # elbv2 Type: application | network | gateway


@dataclass
class RegionInventory:
    """Everything parsed for one region. ``missing`` says which reads have no data, and why."""

    region: str
    security_groups: list[SecurityGroup] = field(default_factory=list)
    network_acls: list[NetworkAcl] = field(default_factory=list)
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    route_tables: list[RouteTable] = field(default_factory=list)
    nat_gateways: list[NatGateway] = field(default_factory=list)
    flow_logs: list[FlowLog] = field(default_factory=list)
    log_group_retention: dict[str, int | None] = field(default_factory=dict)  # None: never expires
    interfaces: list[NetworkInterface] = field(default_factory=list)
    instances: dict[str, Instance] = field(default_factory=dict)
    data_stores: list[DataStore] = field(default_factory=list)
    load_balancers: list[LoadBalancer] = field(default_factory=list)
    analyzers: list[dict[str, Any]] = field(default_factory=list)
    secrets_manager: list[dict[str, Any]] = field(default_factory=list)  # layer 5: list_secrets entries
    lambda_functions: list[dict[str, Any]] = field(default_factory=list)  # environment values masked
    task_definitions: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # arn -> masked (None: unread)
    user_data: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)  # instance -> masked hits
    # layer 12: internet-facing ALB arn -> its WAF web ACL ({} when none, None when unread)
    web_acls: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # call -> reason

    def unread(self, call: str, param: str) -> str:
        """Why a per-resource read (kept by ``_Reader.resource``) has no data."""
        return self.missing.get(f"{call}#{param}", f"{call} for {param} was not collected")

    @functools.cached_property
    def _route_index(self) -> tuple[dict[str, RouteTable], dict[str, RouteTable]]:
        explicit = {sid: t for t in self.route_tables for sid in t.subnet_ids}
        main = {t.vpc_id: t for t in self.route_tables if t.is_main}
        return explicit, main

    def route_table_of(self, subnet_id: str) -> RouteTable | None:
        """The explicitly associated route table, else the VPC's main one (read after parsing is complete)."""
        explicit, main = self._route_index
        if subnet_id in explicit:
            return explicit[subnet_id]
        subnet = self.subnets.get(subnet_id)
        return main.get(subnet.vpc_id) if subnet else None


# -- layer 7 -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IamPrincipal:
    """A user, group or role, with the documents that govern it."""

    kind: str  # "user" | "group" | "role"
    name: str
    arn: str
    path: str
    inline_policies: dict[str, Any]  # name -> document
    attached_policy_arns: tuple[str, ...]
    permission_boundary: str | None
    trust_policy: Any | None  # roles only
    groups: tuple[str, ...]  # users only: group names
    tags: dict[str, str]

    @property
    def service_linked(self) -> bool:
        return self.path.startswith("/aws-service-role/") or self.path.startswith("/aws-reserved/")


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    arn: str
    name: str
    document: Any  # the default version's document
    attachment_count: int

    @property
    def aws_managed(self) -> bool:
        return self.arn.startswith("arn:aws:iam::aws:") or ":iam::aws:policy/" in self.arn


@dataclass(frozen=True, slots=True)
class CredentialRow:
    """One row of the IAM credential report."""

    user: str
    arn: str
    password_enabled: bool
    mfa_active: bool
    access_keys: tuple[tuple[int, bool, datetime | None], ...]  # (slot, active, last_rotated)

    @property
    def is_root(self) -> bool:
        return self.user == "<root_account>"


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    policy: Any | None  # the policy document (JSON text), None if the bucket has none
    public_access_block: dict[str, bool] | None
    policy_error: str | None = None
    pab_error: str | None = None
    acl_grants: tuple[tuple[str, str], ...] = ()  # (grantee URI or id, permission)
    acl_error: str | None = None


@dataclass
class GlobalInventory:
    account_id: str | None = None
    principals: list[IamPrincipal] = field(default_factory=list)
    policies: dict[str, ManagedPolicy] = field(default_factory=dict)
    credential_rows: list[CredentialRow] = field(default_factory=list)
    account_summary: dict[str, int] = field(default_factory=dict)
    buckets: list[Bucket] = field(default_factory=list)
    account_public_access_block: dict[str, bool] | None = None
    missing: dict[str, str] = field(default_factory=dict)

    principals_by_name: dict[tuple[str, str], IamPrincipal] = field(default_factory=dict)

    def principal(self, kind: str, name: str) -> IamPrincipal | None:
        return self.principals_by_name.get((kind, name))


@dataclass
class AwsInventory:
    account_id: str | None
    collected_at: datetime
    environment_tag: str
    tier_tag: str
    regions: dict[str, RegionInventory]
    global_: GlobalInventory


# -- parsing -------------------------------------------------------------------


class _Reader:
    """Pulls one call's data out of the evidence, remembering what is missing."""

    def __init__(self, evidence: AwsEvidence, region: str, missing: dict[str, str]) -> None:
        self.evidence = evidence
        self.region = region
        self.missing = missing

    def items(self, call: str, key: str) -> list[dict[str, Any]]:
        record = self.evidence.get(self.region, call)
        if not record.ok:
            self.missing[call] = record.error or "not collected"
            return []
        data = record.data or {}
        value = data.get(key, []) if isinstance(data, dict) else []
        return list(value) if isinstance(value, list) else []

    def resource(self, call: str, param: str) -> dict[str, Any] | None:
        """One per-resource read's data ({} when empty), or None with the reason kept under ``call#param``."""
        record = self.evidence.get(self.region, call, param)
        if record.ok:
            return record.data or {}
        self.missing[f"{call}#{param}"] = record.error or "not collected"
        return None

    def data(self, call: str) -> Any:
        record = self.evidence.get(self.region, call)
        if not record.ok:
            self.missing[call] = record.error or "not collected"
            return None
        return record.data


def parse_region(evidence: AwsEvidence, region: str) -> RegionInventory:
    inv = RegionInventory(region)
    read = _Reader(evidence, region, inv.missing)
    for raw in read.items("ec2.describe_security_groups", "SecurityGroups"):
        inv.security_groups.append(SecurityGroup(
            raw["GroupId"], raw.get("GroupName", ""), raw.get("VpcId"), tags_of(raw),
            _rules(raw.get("IpPermissions", [])), _rules(raw.get("IpPermissionsEgress", []))))
    for raw in read.items("ec2.describe_network_acls", "NetworkAcls"):
        entries = tuple(
            NaclEntry(int(e["RuleNumber"]), bool(e.get("Egress")), str(e.get("RuleAction", "")).lower(),
                      e.get("CidrBlock") or e.get("Ipv6CidrBlock") or "", str(e.get("Protocol", "-1")),
                      (e.get("PortRange") or {}).get("From"), (e.get("PortRange") or {}).get("To"))
            for e in raw.get("Entries", []))
        subnets = tuple(a["SubnetId"] for a in raw.get("Associations", []) if a.get("SubnetId"))
        inv.network_acls.append(NetworkAcl(raw["NetworkAclId"], raw.get("VpcId", ""), bool(raw.get("IsDefault")),
                                           entries, subnets, tags_of(raw)))
    for raw in read.items("ec2.describe_vpcs", "Vpcs"):
        cidrs = [a["CidrBlock"] for a in raw.get("CidrBlockAssociationSet", []) if a.get("CidrBlock")]
        if not cidrs and raw.get("CidrBlock"):
            cidrs = [raw["CidrBlock"]]
        cidrs += [a["Ipv6CidrBlock"] for a in raw.get("Ipv6CidrBlockAssociationSet", []) if a.get("Ipv6CidrBlock")]
        inv.vpcs[raw["VpcId"]] = Vpc(raw["VpcId"], tuple(cidrs), bool(raw.get("IsDefault")), tags_of(raw))
    for raw in read.items("ec2.describe_subnets", "Subnets"):
        inv.subnets[raw["SubnetId"]] = Subnet(raw["SubnetId"], raw.get("VpcId", ""), raw.get("AvailabilityZone", ""),
                                              raw.get("CidrBlock", ""), bool(raw.get("MapPublicIpOnLaunch")),
                                              tags_of(raw))
    for raw in read.items("ec2.describe_route_tables", "RouteTables"):
        routes = []
        for r in raw.get("Routes", []):
            dest = r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock") or r.get(
                "DestinationPrefixListId", "")
            target = next((str(r[k]) for k in ("GatewayId", "NatGatewayId", "TransitGatewayId",
                                                "VpcPeeringConnectionId", "NetworkInterfaceId", "InstanceId",
                                                "EgressOnlyInternetGatewayId", "LocalGatewayId",
                                                "CarrierGatewayId") if r.get(k)), "")
            routes.append(Route(dest, target, str(r.get("State", "active"))))
        assocs = raw.get("Associations", [])
        inv.route_tables.append(RouteTable(
            raw["RouteTableId"], raw.get("VpcId", ""), tuple(routes),
            tuple(a["SubnetId"] for a in assocs if a.get("SubnetId")),
            any(a.get("Main") for a in assocs), tags_of(raw)))
    for raw in read.items("ec2.describe_nat_gateways", "NatGateways"):
        inv.nat_gateways.append(NatGateway(raw["NatGatewayId"], raw.get("VpcId", ""), raw.get("SubnetId", ""),
                                           str(raw.get("State", "")), str(raw.get("ConnectivityType", "public"))))
    for raw in read.items("ec2.describe_flow_logs", "FlowLogs"):
        inv.flow_logs.append(FlowLog(raw.get("FlowLogId", ""), raw.get("ResourceId", ""),
                                     str(raw.get("FlowLogStatus", "ACTIVE")),
                                     str(raw.get("LogDestinationType", "cloud-watch-logs")),
                                     raw.get("LogGroupName"), raw.get("LogDestination")))
    for raw in read.items("logs.describe_log_groups", "logGroups"):
        days = raw.get("retentionInDays")
        inv.log_group_retention[raw["logGroupName"]] = int(days) if days else None
    for raw in read.items("ec2.describe_network_interfaces", "NetworkInterfaces"):
        inv.interfaces.append(NetworkInterface(
            raw["NetworkInterfaceId"], raw.get("VpcId"), raw.get("SubnetId"),
            tuple(g["GroupId"] for g in raw.get("Groups", [])),
            (raw.get("Attachment") or {}).get("InstanceId"), str(raw.get("InterfaceType", "interface")),
            str(raw.get("Description", "")), tags_of(raw, "TagSet")))
    for reservation in read.items("ec2.describe_instances", "Reservations"):
        for raw in reservation.get("Instances", []):
            groups = tuple(g["GroupId"] for g in raw.get("SecurityGroups", []))
            inv.instances[raw["InstanceId"]] = Instance(
                raw["InstanceId"], raw.get("VpcId"), raw.get("SubnetId"), groups,
                str((raw.get("State") or {}).get("Name", "")), tags_of(raw))
    _parse_data_stores(read, inv)
    for raw in read.items("elbv2.describe_load_balancers", "LoadBalancers"):
        inv.load_balancers.append(LoadBalancer(
            raw.get("LoadBalancerName", ""), str(raw.get("Scheme", "")),
            tuple(z["SubnetId"] for z in raw.get("AvailabilityZones", []) if z.get("SubnetId")), raw.get("VpcId"),
            str(raw.get("LoadBalancerArn", "")), str(raw.get("Type", "application"))))
        if internet_facing_alb(raw):
            found = read.resource("wafv2.get_web_acl_for_resource", raw["LoadBalancerArn"])
            inv.web_acls[raw["LoadBalancerArn"]] = None if found is None else found.get("WebACL") or {}
    inv.analyzers = read.items("accessanalyzer.list_analyzers", "analyzers")
    _parse_secrets(read, inv)
    return inv


def _parse_secrets(read: _Reader, inv: RegionInventory) -> None:
    """Layer 5: Secrets Manager, Lambda, ECS task definitions, EC2 user data (values masked at collection)."""
    inv.secrets_manager = read.items("secretsmanager.list_secrets", "SecretList")
    inv.lambda_functions = read.items("lambda.list_functions", "Functions")
    for arn in read.items("ecs.list_task_definitions", "taskDefinitionArns"):
        found = read.resource("ecs.describe_task_definition", str(arn))
        inv.task_definitions[str(arn)] = None if found is None else found.get("taskDefinition") or {}
    if "ec2.describe_instances" in inv.missing:
        return
    for instance_id, instance in inv.instances.items():
        if instance.state == "terminated":
            continue
        found = read.resource("ec2.describe_instance_attribute", instance_id)
        inv.user_data[instance_id] = None if found is None else found.get("OutsideinSecrets") or []


def _parse_data_stores(read: _Reader, inv: RegionInventory) -> None:
    for raw in read.items("rds.describe_db_instances", "DBInstances"):
        group = raw.get("DBSubnetGroup") or {}
        inv.data_stores.append(DataStore(
            "RDS", raw["DBInstanceIdentifier"], str(raw.get("Engine", "")), bool(raw.get("PubliclyAccessible")),
            tuple(s["SubnetIdentifier"] for s in group.get("Subnets", []) if s.get("SubnetIdentifier")),
            group.get("VpcId"), tags_of(raw, "TagList"),
            backup_retention_days=int(raw.get("BackupRetentionPeriod") or 0),
            latest_restorable=raw.get("LatestRestorableTime")))
    cache_groups = {g["CacheSubnetGroupName"]: g
                    for g in read.items("elasticache.describe_cache_subnet_groups", "CacheSubnetGroups")}
    for raw in read.items("elasticache.describe_cache_clusters", "CacheClusters"):
        group = cache_groups.get(raw.get("CacheSubnetGroupName", ""), {})
        inv.data_stores.append(DataStore(
            "ElastiCache", raw["CacheClusterId"], str(raw.get("Engine", "")), None,
            tuple(s["SubnetIdentifier"] for s in group.get("Subnets", []) if s.get("SubnetIdentifier")),
            group.get("VpcId"), {}))
    for summary in read.items("mq.list_brokers", "BrokerSummaries"):
        broker_id = summary["BrokerId"]
        broker = read.resource("mq.describe_broker", broker_id)
        if broker is None:
            continue
        subnet_ids = tuple(broker.get("SubnetIds", []))
        vpc = next((inv.subnets[s].vpc_id for s in subnet_ids if s in inv.subnets), None)
        inv.data_stores.append(DataStore(
            "MQ", broker_id, str(broker.get("EngineType", "")), bool(broker.get("PubliclyAccessible")),
            subnet_ids, vpc, tags_of(broker)))


def _parse_time(text: str | None) -> datetime | None:
    if not text or text in ("N/A", "no_information", "not_supported"):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def decode_credential_report(content: str) -> str:
    """boto3 gives the report's CSV itself; the AWS CLI prints it base64-encoded."""
    if content.startswith("user,"):
        return content
    try:
        return base64.b64decode(content, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return content


def parse_credential_report(content: str) -> list[CredentialRow]:
    rows = []
    for row in csv.DictReader(io.StringIO(decode_credential_report(content))):
        keys = tuple(
            (slot, row.get(f"access_key_{slot}_active", "false").lower() == "true",
             _parse_time(row.get(f"access_key_{slot}_last_rotated")))
            for slot in (1, 2))
        rows.append(CredentialRow(
            row.get("user", ""), row.get("arn", ""), row.get("password_enabled", "false").lower() == "true",
            row.get("mfa_active", "false").lower() == "true", keys))
    return rows


def parse_global(evidence: AwsEvidence) -> GlobalInventory:
    inv = GlobalInventory(account_id=evidence.account_id)
    read = _Reader(evidence, GLOBAL, inv.missing)
    details = read.data("iam.get_account_authorization_details") or {}
    for raw in details.get("UserDetailList", []):
        inv.principals.append(IamPrincipal(
            "user", raw["UserName"], raw["Arn"], raw.get("Path", "/"),
            {p["PolicyName"]: p.get("PolicyDocument") for p in raw.get("UserPolicyList", [])},
            tuple(p["PolicyArn"] for p in raw.get("AttachedManagedPolicies", [])),
            (raw.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"), None,
            tuple(raw.get("GroupList", [])), tags_of(raw)))
    for raw in details.get("GroupDetailList", []):
        inv.principals.append(IamPrincipal(
            "group", raw["GroupName"], raw["Arn"], raw.get("Path", "/"),
            {p["PolicyName"]: p.get("PolicyDocument") for p in raw.get("GroupPolicyList", [])},
            tuple(p["PolicyArn"] for p in raw.get("AttachedManagedPolicies", [])), None, None, (), {}))
    for raw in details.get("RoleDetailList", []):
        inv.principals.append(IamPrincipal(
            "role", raw["RoleName"], raw["Arn"], raw.get("Path", "/"),
            {p["PolicyName"]: p.get("PolicyDocument") for p in raw.get("RolePolicyList", [])},
            tuple(p["PolicyArn"] for p in raw.get("AttachedManagedPolicies", [])),
            (raw.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            raw.get("AssumeRolePolicyDocument"), (), tags_of(raw)))
    for raw in details.get("Policies", []):
        default = next((v for v in raw.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), None)
        name = raw.get("PolicyName") or raw["Arn"].rsplit("/", 1)[-1]
        inv.policies[raw["Arn"]] = ManagedPolicy(raw["Arn"], name,
                                                 (default or {}).get("Document"), int(raw.get("AttachmentCount", 0)))
    report = read.data("iam.get_credential_report")
    if report:
        inv.credential_rows = parse_credential_report(str(report.get("Content", "")))
    summary = read.data("iam.get_account_summary")
    if summary:
        inv.account_summary = {k: int(v) for k, v in summary.get("SummaryMap", {}).items()}
    account_pab = read.data("s3control.get_public_access_block")
    if account_pab:
        inv.account_public_access_block = account_pab.get("PublicAccessBlockConfiguration")
    for raw in read.items("s3.list_buckets", "Buckets"):
        name = raw["Name"]
        policy = evidence.get(GLOBAL, "s3.get_bucket_policy", name)
        pab = evidence.get(GLOBAL, "s3.get_public_access_block", name)
        acl = evidence.get(GLOBAL, "s3.get_bucket_acl", name)
        grants = tuple(
            (str(g.get("Grantee", {}).get("URI") or g.get("Grantee", {}).get("ID", "")), str(g.get("Permission", "")))
            for g in ((acl.data or {}).get("Grants", []) if acl.ok else []))
        inv.buckets.append(Bucket(
            name,
            (policy.data or {}).get("Policy") if policy.ok else None,
            (pab.data or {}).get("PublicAccessBlockConfiguration") if pab.ok else None,
            policy.error, pab.error, grants, acl.error))
    inv.principals_by_name = {(p.kind, p.name): p for p in inv.principals}
    if not inv.account_id:
        inv.account_id = next((p.arn.split(":")[4] for p in inv.principals if p.arn.count(":") >= 5), None)
    return inv


def parse_evidence(evidence: AwsEvidence) -> AwsInventory:
    regions = {region: parse_region(evidence, region) for region in evidence.regions}
    return AwsInventory(evidence.account_id, evidence.collected_at, evidence.environment_tag, evidence.tier_tag,
                        regions, parse_global(evidence))
