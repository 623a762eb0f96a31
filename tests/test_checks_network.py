"""Layer 1 (security groups, NACLs) and layer 6 (VPC architecture) checks, on a real moto server.

Every resource is built through boto3 against the emulator, audited through the same collector a
real account uses, and judged on what a user sees: the finding's resource id, severity and detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from outsidein.audit import AuditReport, LayerStatus, evaluate
from outsidein.aws.collect import AwsCollector
from outsidein.demo.emulator import DUMMY_CREDENTIALS, MotoServer
from outsidein.models import Finding, Severity, Status
from outsidein.scope import AwsScope
from tests.conftest import REGION, Emulator, failed, verdicts

AZ_A, AZ_B = f"{REGION}a", f"{REGION}b"
WORLD4, WORLD6 = "0.0.0.0/0", "::/0"
ADMIN_HOST = "203.0.113.10/32"  # TEST-NET-3: outside every VPC built here
BAD_RANGE = "198.51.100.0/24"  # TEST-NET-2: a "known-bad" range to deny


# --------------------------------------------------------------------------- building blocks


def _tag_spec(kind: str, tags: dict[str, str]) -> dict[str, Any]:
    if not tags:
        return {}
    return {"TagSpecifications": [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]}


def make_vpc(ec2: Any, cidr: str, **tags: str) -> str:
    return str(ec2.create_vpc(CidrBlock=cidr, **_tag_spec("vpc", tags))["Vpc"]["VpcId"])


def make_subnet(ec2: Any, vpc: str, cidr: str, az: str = AZ_A, *, public_ip: bool = False, **tags: str) -> str:
    subnet = str(ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az,
                                   **_tag_spec("subnet", tags))["Subnet"]["SubnetId"])
    if public_ip:
        ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    return subnet


def make_sg(ec2: Any, vpc: str, name: str, *ingress: dict[str, Any], **tags: str) -> str:
    sg = str(ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc,
                                       **_tag_spec("security-group", tags))["GroupId"])
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=list(ingress))
    return sg


def perm(protocol: str, low: int | None = None, high: int | None = None, *, cidrs: tuple[str, ...] = (),
         cidrs6: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> dict[str, Any]:
    p: dict[str, Any] = {"IpProtocol": protocol}
    if low is not None:
        p["FromPort"], p["ToPort"] = low, low if high is None else high
    if cidrs:
        p["IpRanges"] = [{"CidrIp": c} for c in cidrs]
    if cidrs6:
        p["Ipv6Ranges"] = [{"CidrIpv6": c} for c in cidrs6]
    if groups:
        p["UserIdGroupPairs"] = [{"GroupId": g} for g in groups]
    return p


def default_sg(ec2: Any, vpc: str) -> dict[str, Any]:
    filters = [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    (group,) = ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
    return dict(group)


def strip_rules(ec2: Any, group: dict[str, Any]) -> str:
    """Revoke every rule of a security group (as AWS advises for default groups)."""
    if group["IpPermissions"]:
        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    if group["IpPermissionsEgress"]:
        ec2.revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])
    return str(group["GroupId"])


def default_vpc(ec2: Any) -> str:
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return str(vpc["VpcId"])


def make_igw(ec2: Any, vpc: str) -> str:
    igw = str(ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"])
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    return igw


def route_table(ec2: Any, vpc: str, subnets: tuple[str, ...] = (), *, igw: str | None = None,
                nat: str | None = None) -> str:
    rtb = str(ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"])
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
    if igw:
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=WORLD4, GatewayId=igw)
    if nat:
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=WORLD4, NatGatewayId=nat)
    return rtb


def main_route_table(ec2: Any, vpc: str) -> str:
    filters = [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
    (table,) = ec2.describe_route_tables(Filters=filters)["RouteTables"]
    return str(table["RouteTableId"])


def make_nat(ec2: Any, subnet: str) -> str:
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return str(ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"])


def register_ami(ec2: Any) -> str:
    return str(ec2.register_image(Name="test-base", Architecture="x86_64", RootDeviceName="/dev/xvda",
                                  VirtualizationType="hvm")["ImageId"])


def launch(ec2: Any, ami: str, subnet: str, *sgs: str, **tags: str) -> str:
    reservation = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                    SubnetId=subnet, SecurityGroupIds=list(sgs), **_tag_spec("instance", tags))
    return str(reservation["Instances"][0]["InstanceId"])


def make_nacl(ec2: Any, vpc: str, subnets: tuple[str, ...] = (),
              entries: tuple[tuple[int, str, bool, str], ...] = ()) -> str:
    """A custom NACL with ``(rule number, allow|deny, egress, cidr)`` entries, taking over ``subnets``."""
    acl = str(ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"])
    for number, action, egress, cidr in entries:
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=number, Protocol="-1", RuleAction=action,
                                     Egress=egress, CidrBlock=cidr)
    wanted = set(subnets)
    for existing in ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]:
        for assoc in existing["Associations"]:
            if assoc["SubnetId"] in wanted:
                ec2.replace_network_acl_association(AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=acl)
    return acl


def default_nacl(ec2: Any, vpc: str) -> str:
    filters = [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default", "Values": ["true"]}]
    (acl,) = ec2.describe_network_acls(Filters=filters)["NetworkAcls"]
    return str(acl["NetworkAclId"])


# --------------------------------------------------------------------------- reading the report


def finding(report: AuditReport, check_id: str, resource: str) -> Finding:
    """The one finding a check raised on a resource."""
    found = [f for f in report.findings if f.check_id == check_id and f.resource == resource]
    assert len(found) == 1, f"{check_id} on {resource}: expected one finding, got {found}; " \
                            f"verdicts {verdicts(report, check_id).get(resource)}"
    assert verdicts(report, check_id)[resource] == {Status.FAIL}
    return found[0]


def assert_passed(report: AuditReport, check_id: str, resource: str) -> None:
    assert verdicts(report, check_id).get(resource) == {Status.PASS}, failed(report, check_id).get(resource)
    assert resource not in failed(report, check_id)


def assert_not_judged(report: AuditReport, check_id: str, resource: str) -> None:
    assert resource not in verdicts(report, check_id)


def layer(report: AuditReport, number: int) -> LayerStatus:
    return next(s for s in report.layers if s.layer.number == number)


# --------------------------------------------------------------------------- layer 1: sg-open-ingress


@dataclass
class Exposure:
    report: AuditReport
    sg: dict[str, str]


@pytest.fixture(scope="module")
def exposure(moto_server) -> Exposure:  # type: ignore[no-untyped-def]
    """One VPC, one security group per way of opening (or not opening) a port to the world; one audit."""
    moto_server.reset()
    aws = Emulator(moto_server)
    ec2 = aws.client("ec2")
    vpc = make_vpc(ec2, "10.10.0.0/16", Environment="prod")
    rules = {
        "ssh-world": perm("tcp", 22, cidrs=(WORLD4,)),
        "postgres-world": perm("tcp", 5432, cidrs=(WORLD4,)),
        "all-traffic-world": perm("-1", cidrs=(WORLD4,)),
        "ssh-ipv6-world": perm("tcp", 22, cidrs6=(WORLD6,)),
        "grafana-world": perm("tcp", 3000, cidrs=(WORLD4,)),
        "unlisted-world": perm("tcp", 8443, cidrs=(WORLD4,)),
        "range-world": perm("tcp", 20, 25, cidrs=(WORLD4,)),
        "https-world": perm("tcp", 443, cidrs=(WORLD4,), cidrs6=(WORLD6,)),
        "ssh-admin-host": perm("tcp", 22, cidrs=(ADMIN_HOST,)),
    }
    sgs = {name: make_sg(ec2, vpc, name, rule) for name, rule in rules.items()}
    return Exposure(aws.audit(), sgs)


@pytest.mark.parametrize(("name", "severity", "fragments"), [
    ("ssh-world", Severity.CRITICAL, ("tcp/22 open to 0.0.0.0/0", "22 (SSH)")),
    ("postgres-world", Severity.CRITICAL, ("tcp/5432 open to 0.0.0.0/0", "5432 (PostgreSQL)")),
    ("all-traffic-world", Severity.CRITICAL, ("all traffic open to 0.0.0.0/0", "all ports")),
    ("ssh-ipv6-world", Severity.CRITICAL, ("tcp/22 open to ::/0", "22 (SSH)")),
    ("grafana-world", Severity.HIGH, ("tcp/3000 open to 0.0.0.0/0", "3000 (Grafana)")),
    ("unlisted-world", Severity.MEDIUM, ("tcp/8443 open to 0.0.0.0/0", "(8443)")),
    ("range-world", Severity.CRITICAL, ("tcp/20-25 open to 0.0.0.0/0", "22 (SSH)", "23 (Telnet)")),
])
def test_sg_open_ingress_fails_with_port_severity(exposure: Exposure, name: str, severity: Severity,
                                                  fragments: tuple[str, ...]) -> None:
    sg = exposure.sg[name]
    f = finding(exposure.report, "sg-open-ingress", sg)
    assert f.severity is severity
    assert f.detail.startswith(f"{name}: ")
    for fragment in fragments:
        assert fragment in f.detail
    assert f.layer == 1 and f.environment == "prod" and f.region == REGION
    assert sg in f.verify


@pytest.mark.parametrize("name", ["https-world", "ssh-admin-host"])
def test_sg_open_ingress_passes_public_web_port_and_narrow_source(exposure: Exposure, name: str) -> None:
    assert_passed(exposure.report, "sg-open-ingress", exposure.sg[name])


# --------------------------------------------------------------------------- layer 1: the other SG checks


def test_sg_open_egress(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    vpc = make_vpc(ec2, "10.11.0.0/16")
    open_egress = make_sg(ec2, vpc, "keeps-default-egress")
    restricted = make_sg(ec2, vpc, "https-egress-only")
    ec2.revoke_security_group_egress(GroupId=restricted, IpPermissions=[perm("-1", cidrs=(WORLD4,))])
    ec2.authorize_security_group_egress(GroupId=restricted, IpPermissions=[perm("tcp", 443, cidrs=(WORLD4,))])
    default = default_sg(ec2, vpc)
    assert default["IpPermissionsEgress"], "the default group keeps its allow-all egress here"

    report = aws.audit()

    f = finding(report, "sg-open-egress", open_egress)
    assert f.severity is Severity.HIGH
    assert f.detail == "keeps-default-egress: all ports open to 0.0.0.0/0"
    assert_passed(report, "sg-open-egress", restricted)
    assert_not_judged(report, "sg-open-egress", default["GroupId"])  # sg-default-in-use's business


def test_sg_cidr_intra_vpc(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    vpc = make_vpc(ec2, "10.12.0.0/16")
    app = make_sg(ec2, vpc, "app")
    by_cidr = make_sg(ec2, vpc, "db-by-app-cidr", perm("tcp", 5432, cidrs=("10.12.1.0/24",)))
    by_group = make_sg(ec2, vpc, "db-by-app-sg", perm("tcp", 5432, groups=(app,)))
    by_outside = make_sg(ec2, vpc, "db-by-partner-cidr", perm("tcp", 5432, cidrs=("192.168.50.0/24",)))

    report = aws.audit()

    f = finding(report, "sg-cidr-intra-vpc", by_cidr)
    assert f.severity is Severity.REVIEW
    assert f.detail == "db-by-app-cidr: tcp/5432 from 10.12.1.0/24"
    assert_passed(report, "sg-cidr-intra-vpc", by_group)
    assert_passed(report, "sg-cidr-intra-vpc", by_outside)


def test_sg_shared_across_envs(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    ami = register_ami(ec2)
    vpc = make_vpc(ec2, "10.13.0.0/16", Environment="prod")
    dev_subnet = make_subnet(ec2, vpc, "10.13.1.0/24", Environment="dev")
    plain_subnet = make_subnet(ec2, vpc, "10.13.2.0/24")  # no tag: the VPC's prod applies

    shared = make_sg(ec2, vpc, "shared-by-tags")
    dev_1 = launch(ec2, ami, plain_subnet, shared, Environment="dev")
    prod_1 = launch(ec2, ami, plain_subnet, shared, Environment="prod")

    by_network = make_sg(ec2, vpc, "shared-by-network")
    dev_2 = launch(ec2, ami, dev_subnet, by_network)  # untagged: the subnet says dev
    prod_2 = launch(ec2, ami, plain_subnet, by_network)  # untagged, untagged subnet: the VPC says prod

    tag_wins = make_sg(ec2, vpc, "prod-tagged-in-dev-subnet")
    launch(ec2, ami, dev_subnet, tag_wins, Environment="prod")  # the instance's own tag beats its subnet's
    launch(ec2, ami, plain_subnet, tag_wins)

    prod_only = make_sg(ec2, vpc, "prod-only")
    launch(ec2, ami, plain_subnet, prod_only, Environment="prod")
    launch(ec2, ami, dev_subnet, prod_only, Environment="Prod")

    report = aws.audit()

    f = finding(report, "sg-shared-across-envs", shared)
    assert f.severity is Severity.HIGH
    assert f.detail == f"shared-by-tags is used by dev ({dev_1}), prod ({prod_1})"
    assert f.environment == "dev+prod"
    g = finding(report, "sg-shared-across-envs", by_network)
    assert g.detail == f"shared-by-network is used by dev ({dev_2}), prod ({prod_2})"
    assert_passed(report, "sg-shared-across-envs", tag_wins)
    assert_passed(report, "sg-shared-across-envs", prod_only)


def _iam_user(iam: Any, name: str, *statements: dict[str, Any]) -> dict[str, str]:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="policy", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def test_sg_shared_across_envs_is_not_assessed_without_the_vpc_read() -> None:
    """The environment may come from the VPC's tag, so a denied DescribeVpcs must not turn into a PASS."""
    allow_all = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    with MotoServer(extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as server:  # enforces IAM after 3 calls
        kw = {"endpoint_url": server.endpoint_url, "region_name": REGION}
        bootstrap = boto3.client("iam", aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key="x", **kw)
        admin = _iam_user(bootstrap, "admin", allow_all)
        auditor = _iam_user(boto3.client("iam", **admin, **kw), "auditor", allow_all,
                            {"Effect": "Deny", "Action": "ec2:DescribeVpcs", "Resource": "*"})
        ec2 = boto3.client("ec2", **admin, **kw)
        ami = register_ami(ec2)
        vpc = make_vpc(ec2, "10.17.0.0/16", Environment="prod")
        dev_subnet = make_subnet(ec2, vpc, "10.17.1.0/24", Environment="dev")
        plain_subnet = make_subnet(ec2, vpc, "10.17.2.0/24")
        shared = make_sg(ec2, vpc, "shared-by-network")
        launch(ec2, ami, dev_subnet, shared)
        launch(ec2, ami, plain_subnet, shared)  # prod only by its VPC's tag

        scope = AwsScope(regions=(REGION,), endpoint_url=server.endpoint_url, max_attempts=2)
        report = evaluate(AwsCollector(scope, session=boto3.Session(region_name=REGION, **auditor)).collect())

    assert verdicts(report, "sg-cidr-intra-vpc") == {REGION: {Status.NOT_ASSESSED}}  # the denial is seen
    assert verdicts(report, "sg-shared-across-envs").get(shared) != {Status.PASS}, (
        "BUG checks/security_groups.py sg-shared-across-envs requires=(...) omits ec2.describe_vpcs although "
        "subnet_environment() falls back to the VPC's tag: with DescribeVpcs denied, an SG shared by a dev "
        "and a prod (VPC-tagged) instance silently PASSES instead of being NOT_ASSESSED")
    assert verdicts(report, "sg-shared-across-envs") == {REGION: {Status.NOT_ASSESSED}}


def test_sg_default_in_use(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    ami = register_ami(ec2)
    used_vpc = make_vpc(ec2, "10.14.0.0/16")
    subnet = make_subnet(ec2, used_vpc, "10.14.1.0/24")
    used = strip_rules(ec2, default_sg(ec2, used_vpc))
    instance = launch(ec2, ami, subnet, used)
    clean_vpc = make_vpc(ec2, "10.15.0.0/16")
    clean = strip_rules(ec2, default_sg(ec2, clean_vpc))
    with_rules = default_sg(ec2, default_vpc(ec2))  # unused, but keeps its allow-all egress

    report = aws.audit()

    f = finding(report, "sg-default-in-use", used)
    assert f.severity is Severity.MEDIUM
    assert f.detail == f"default group of {used_vpc}: in use by {instance}"
    g = finding(report, "sg-default-in-use", with_rules["GroupId"])
    assert g.detail.endswith("0 inbound and 1 outbound rules")
    assert "in use" not in g.detail
    assert_passed(report, "sg-default-in-use", clean)


def test_nacl_no_deny(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    vpc = make_vpc(ec2, "10.16.0.0/16")
    s1, s2, s3 = (make_subnet(ec2, vpc, f"10.16.{n}.0/24") for n in (1, 2, 3))
    allow_only = make_nacl(ec2, vpc, (s1,), ((100, "allow", False, WORLD4), (100, "allow", True, WORLD4)))
    egress_deny_only = make_nacl(ec2, vpc, (s2,), ((90, "deny", True, BAD_RANGE), (100, "allow", False, WORLD4)))
    guarded = make_nacl(ec2, vpc, (s3,), ((90, "deny", False, BAD_RANGE), (100, "allow", False, WORLD4)))
    unassociated = make_nacl(ec2, vpc, (), ((100, "allow", False, WORLD4),))
    emptied_default = default_nacl(ec2, vpc)  # every subnet moved to a custom NACL
    default_of_default_vpc = default_nacl(ec2, default_vpc(ec2))

    report = aws.audit()

    f = finding(report, "nacl-no-deny", allow_only)
    assert f.severity is Severity.MEDIUM
    assert f.detail == f"NACL of {vpc} guarding 1 subnet(s) has no inbound deny rule"
    assert "no inbound deny rule" in finding(report, "nacl-no-deny", egress_deny_only).detail
    assert finding(report, "nacl-no-deny", default_of_default_vpc).detail.startswith("default NACL of ")
    assert_passed(report, "nacl-no-deny", guarded)
    assert_not_judged(report, "nacl-no-deny", unassociated)
    assert_not_judged(report, "nacl-no-deny", emptied_default)


# --------------------------------------------------------------------------- layer 1 on the dashboard


def test_layer_1_dashboard_passes_when_clean_and_fails_on_a_critical(aws: Emulator) -> None:
    region = "eu-west-2"  # audited alone: only its default VPC exists there
    ec2 = aws.client("ec2", region)
    vpc = default_vpc(ec2)
    strip_rules(ec2, default_sg(ec2, vpc))
    ec2.create_network_acl_entry(NetworkAclId=default_nacl(ec2, vpc), RuleNumber=50, Protocol="-1",
                                 RuleAction="deny", Egress=False, CidrBlock=BAD_RANGE)

    clean = aws.audit(regions=(region,))

    status = layer(clean, 1)
    assert [f for f in clean.findings if f.layer == 1] == []
    assert status.status == "PASS", status.note
    assert status.passed > 0 and status.note == f"{status.passed} resources checked"

    ssh = make_sg(ec2, vpc, "ssh-from-anywhere", perm("tcp", 22, cidrs=(WORLD4,)))
    ec2.revoke_security_group_egress(GroupId=ssh, IpPermissions=[perm("-1", cidrs=(WORLD4,))])

    exposed = aws.audit(regions=(region,))

    assert finding(exposed, "sg-open-ingress", ssh).severity is Severity.CRITICAL
    status = layer(exposed, 1)
    assert status.status == "FAIL"
    assert status.note == "1 CRITICAL"
    assert status.findings == 1


# --------------------------------------------------------------------------- layer 6: subnets and routes


def test_private_subnet_associated_with_igw_route_table(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    vpc = make_vpc(ec2, "10.20.0.0/16", Environment="prod")
    data = make_subnet(ec2, vpc, "10.20.20.0/24", Tier="data")
    public = make_subnet(ec2, vpc, "10.20.0.0/24", Tier="public")
    untagged = make_subnet(ec2, vpc, "10.20.30.0/24")  # no declared intent, nothing in it
    igw = make_igw(ec2, vpc)
    rtb = route_table(ec2, vpc, (data, public, untagged), igw=igw)

    report = aws.audit()

    f = finding(report, "vpc-private-subnet-igw-route", data)
    assert f.severity is Severity.CRITICAL
    assert f.detail == f"private subnet (Tier=data) associated with {rtb}: 0.0.0.0/0 -> {igw}"
    assert f.environment == "prod"
    assert_passed(report, "vpc-private-subnet-igw-route", public)
    assert_passed(report, "vpc-private-subnet-igw-route", untagged)


def test_private_subnet_inheriting_a_main_route_table_with_igw(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    leaky = make_vpc(ec2, "10.21.0.0/16")
    private = make_subnet(ec2, leaky, "10.21.10.0/24", Name="prod-private-a")
    main = main_route_table(ec2, leaky)
    igw = make_igw(ec2, leaky)
    ec2.create_route(RouteTableId=main, DestinationCidrBlock=WORLD4, GatewayId=igw)
    tidy = make_vpc(ec2, "10.22.0.0/16")
    route_table(ec2, tidy, (make_subnet(ec2, tidy, "10.22.0.0/24", Tier="public"),), igw=make_igw(ec2, tidy))

    report = aws.audit()

    f = finding(report, "vpc-private-subnet-igw-route", private)
    assert f.detail == (f"private subnet (Name=prod-private-a) inheriting the main route table {main}: "
                        f"0.0.0.0/0 -> {igw}")
    m = finding(report, "vpc-main-route-table-igw", leaky)
    assert m.severity is Severity.REVIEW
    assert m.detail.startswith(f"main route table {main} routes to {igw}")
    assert_passed(report, "vpc-main-route-table-igw", tidy)
    assert_passed(report, "vpc-main-route-table-igw", default_vpc(ec2))  # AWS's own default VPC is exempt
    # REVIEW findings alone do not fail layer 6; the CRITICAL one does.
    assert layer(report, 6).status == "FAIL"


def test_cdk_style_private_subnet_name_is_read_as_private(aws: Emulator) -> None:
    """A Name tag that contains "private" (CDK names subnets ``Stack/Vpc/PrivateSubnet1``) declares intent."""
    ec2 = aws.client("ec2")
    vpc = make_vpc(ec2, "10.23.0.0/16")
    private = make_subnet(ec2, vpc, "10.23.10.0/24", Name="shop/Vpc/PrivateSubnet1")
    igw = make_igw(ec2, vpc)
    ec2.create_route(RouteTableId=main_route_table(ec2, vpc), DestinationCidrBlock=WORLD4, GatewayId=igw)

    report = aws.audit()

    assert verdicts(report, "vpc-private-subnet-igw-route").get(private) == {Status.FAIL}, (
        "BUG checks/aws_context.py:_words/subnet_intent: Name 'shop/Vpc/PrivateSubnet1' is split only on "
        "'-', '_' and ' ', so 'private' is never seen; the subnet is judged 'unknown' and its igw route passes")


def test_subnet_auto_public_ip(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    vpc = make_vpc(ec2, "10.24.0.0/16", Environment="staging")
    app = make_subnet(ec2, vpc, "10.24.10.0/24", Tier="app", public_ip=True)
    public = make_subnet(ec2, vpc, "10.24.0.0/24", Tier="public", public_ip=True)
    quiet_app = make_subnet(ec2, vpc, "10.24.11.0/24", Tier="app")

    report = aws.audit()

    f = finding(report, "vpc-subnet-auto-public-ip", app)
    assert f.severity is Severity.MEDIUM
    assert f.detail == "private subnet (Tier=app) assigns a public IP to every instance launched in it"
    assert f.environment == "staging"
    assert_passed(report, "vpc-subnet-auto-public-ip", public)
    assert_passed(report, "vpc-subnet-auto-public-ip", quiet_app)


def test_nat_per_az(aws: Emulator) -> None:
    ec2 = aws.client("ec2")

    def single_nat_vpc(cidr_prefix: str, env: str) -> tuple[str, str, str]:
        vpc = make_vpc(ec2, f"{cidr_prefix}.0.0/16", Environment=env)
        public_a = make_subnet(ec2, vpc, f"{cidr_prefix}.0.0/24", AZ_A, Tier="public")
        route_table(ec2, vpc, (public_a,), igw=make_igw(ec2, vpc))
        nat = make_nat(ec2, public_a)
        app_a = make_subnet(ec2, vpc, f"{cidr_prefix}.10.0/24", AZ_A, Tier="app")
        app_b = make_subnet(ec2, vpc, f"{cidr_prefix}.11.0/24", AZ_B, Tier="app")
        route_table(ec2, vpc, (app_a, app_b), nat=nat)
        return vpc, nat, app_b

    prod_vpc, prod_nat, prod_b = single_nat_vpc("10.30", "prod")
    dev_vpc, dev_nat, dev_b = single_nat_vpc("10.31", "dev")

    ha_vpc = make_vpc(ec2, "10.32.0.0/16", Environment="prod")
    igw = make_igw(ec2, ha_vpc)
    for n, az in ((0, AZ_A), (1, AZ_B)):
        public = make_subnet(ec2, ha_vpc, f"10.32.{n}.0/24", az, Tier="public")
        route_table(ec2, ha_vpc, (public,), igw=igw)
        app = make_subnet(ec2, ha_vpc, f"10.32.1{n}.0/24", az, Tier="app")
        route_table(ec2, ha_vpc, (app,), nat=make_nat(ec2, public))

    report = aws.audit()

    f = finding(report, "vpc-nat-per-az", prod_vpc)
    assert f.severity is Severity.HIGH
    assert f.detail == (f"private subnets leave through a NAT gateway in another AZ: "
                        f"{prod_b} ({AZ_B}) via {prod_nat} ({AZ_A})")
    g = finding(report, "vpc-nat-per-az", dev_vpc)
    assert g.severity is Severity.MEDIUM
    assert f"{dev_b} ({AZ_B}) via {dev_nat} ({AZ_A})" in g.detail
    assert_passed(report, "vpc-nat-per-az", ha_vpc)
    assert_not_judged(report, "vpc-nat-per-az", default_vpc(ec2))  # no NAT at all: nothing to judge


# --------------------------------------------------------------------------- layer 6: flow logs


def _flow_log(aws: Emulator, vpc: str, group: str, retention: int | None) -> None:
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group)
    if retention is not None:
        logs.put_retention_policy(logGroupName=group, retentionInDays=retention)
    aws.client("ec2").create_flow_logs(
        ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogDestinationType="cloud-watch-logs",
        LogGroupName=group, DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs")


def test_vpc_flow_logs(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    dark = make_vpc(ec2, "10.40.0.0/16", Environment="dev")
    logged = make_vpc(ec2, "10.41.0.0/16")
    _flow_log(aws, logged, "/vpc/logged", 365)

    report = aws.audit()

    f = finding(report, "vpc-flow-logs", dark)
    assert f.severity is Severity.MEDIUM
    assert f.detail == "no active flow log on the VPC"
    assert f.environment == "dev"
    assert_passed(report, "vpc-flow-logs", logged)
    assert_not_judged(report, "vpc-flow-logs-retention", dark)  # the absence is vpc-flow-logs' finding


def test_vpc_flow_logs_retention(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    month = make_vpc(ec2, "10.42.0.0/16")
    _flow_log(aws, month, "/vpc/month", 30)
    year = make_vpc(ec2, "10.43.0.0/16")
    _flow_log(aws, year, "/vpc/year", 365)
    forever = make_vpc(ec2, "10.44.0.0/16")
    _flow_log(aws, forever, "/vpc/forever", None)

    report = aws.audit()

    f = finding(report, "vpc-flow-logs-retention", month)
    assert f.severity is Severity.MEDIUM
    assert f.detail == "/vpc/month keeps 30 days"
    assert_passed(report, "vpc-flow-logs-retention", year)
    assert_passed(report, "vpc-flow-logs-retention", forever)


# --------------------------------------------------------------------------- layer 6: data stores


@dataclass
class DataNet:
    vpc: str
    igw: str
    public_rtb: str
    public_a: str
    public_b: str
    data_a: str
    data_b: str


def _data_network(ec2: Any) -> DataNet:
    vpc = make_vpc(ec2, "10.50.0.0/16", Environment="prod")
    public_a = make_subnet(ec2, vpc, "10.50.0.0/24", AZ_A, Tier="public")
    public_b = make_subnet(ec2, vpc, "10.50.1.0/24", AZ_B, Tier="public")
    data_a = make_subnet(ec2, vpc, "10.50.20.0/24", AZ_A, Tier="data")
    data_b = make_subnet(ec2, vpc, "10.50.21.0/24", AZ_B, Tier="data")
    igw = make_igw(ec2, vpc)
    rtb = route_table(ec2, vpc, (public_a, public_b), igw=igw)  # data subnets keep the main table: local only
    return DataNet(vpc, igw, rtb, public_a, public_b, data_a, data_b)


def _postgres(rds: Any, name: str, subnet_group: str, *, public: bool) -> None:
    rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
                           MasterUsername="admin_user", MasterUserPassword="emulator-only-password",
                           AllocatedStorage=20, DBSubnetGroupName=subnet_group, PubliclyAccessible=public)


def test_rds_public_or_in_an_internet_routed_subnet(aws: Emulator) -> None:
    net = _data_network(aws.client("ec2"))
    rds = aws.client("rds")
    rds.create_db_subnet_group(DBSubnetGroupName="data", DBSubnetGroupDescription="data",
                               SubnetIds=[net.data_a, net.data_b])
    rds.create_db_subnet_group(DBSubnetGroupName="mixed", DBSubnetGroupDescription="data a + public b",
                               SubnetIds=[net.data_a, net.public_b])
    _postgres(rds, "public-db", "data", public=True)
    _postgres(rds, "exposed-db", "mixed", public=False)
    _postgres(rds, "private-db", "data", public=False)

    report = aws.audit()

    f = finding(report, "vpc-datastore-public", "public-db")
    assert f.severity is Severity.CRITICAL
    assert f.detail == "RDS postgres: PubliclyAccessible is true"
    assert f.environment == "prod"
    g = finding(report, "vpc-datastore-public", "exposed-db")
    assert g.detail == f"RDS postgres: subnet {net.public_b} routes to {net.igw} via {net.public_rtb}"
    assert_passed(report, "vpc-datastore-public", "private-db")


def test_cache_and_broker_exposed(aws: Emulator) -> None:
    ec2 = aws.client("ec2")
    net = _data_network(ec2)
    cache = aws.client("elasticache")
    cache.create_cache_subnet_group(CacheSubnetGroupName="edge", CacheSubnetGroupDescription="public a",
                                    SubnetIds=[net.public_a])
    cache.create_cache_cluster(CacheClusterId="sessions", Engine="redis", CacheNodeType="cache.t3.micro",
                               NumCacheNodes=1, CacheSubnetGroupName="edge")
    cache.create_cache_subnet_group(CacheSubnetGroupName="inner", CacheSubnetGroupDescription="data a",
                                    SubnetIds=[net.data_a])
    cache.create_cache_cluster(CacheClusterId="quiet-cache", Engine="redis", CacheNodeType="cache.t3.micro",
                               NumCacheNodes=1, CacheSubnetGroupName="inner")
    mq_sg = make_sg(ec2, net.vpc, "mq")
    broker = aws.client("mq").create_broker(
        BrokerName="events", EngineType="RABBITMQ", EngineVersion="3.13", HostInstanceType="mq.t3.micro",
        DeploymentMode="SINGLE_INSTANCE", PubliclyAccessible=True, AutoMinorVersionUpgrade=True,
        SubnetIds=[net.data_a], SecurityGroups=[mq_sg],
        Users=[{"Username": "events", "Password": "emulator-only-password"}])["BrokerId"]

    report = aws.audit()

    f = finding(report, "vpc-datastore-public", "sessions")
    assert f.severity is Severity.CRITICAL
    assert f.detail == f"ElastiCache redis: subnet {net.public_a} routes to {net.igw} via {net.public_rtb}"
    b = finding(report, "vpc-datastore-public", broker)
    assert b.detail == "MQ RABBITMQ: PubliclyAccessible is true"
    assert_passed(report, "vpc-datastore-public", "quiet-cache")
