"""Layer 1: security groups and network ACLs. Can an attacker connect at all?"""

from __future__ import annotations

from collections.abc import Iterator

from outsidein.aws.inventory import ANY_IPV4, ANY_IPV6, AwsInventory, RegionInventory, SgRule
from outsidein.checks.aws_context import environment, sg_environment, subnet_environment
from outsidein.checks.ports import port_policy
from outsidein.checks.registry import region_check
from outsidein.models import Result, Severity, fail, passed

WORLD = (ANY_IPV4, ANY_IPV6)
SG_READ = "ec2.describe_security_groups"
USAGE_READS = ("ec2.describe_network_interfaces", "ec2.describe_instances")


def _world_sources(rule: SgRule) -> list[str]:
    return [c for c in rule.cidrs if c in WORLD]


@region_check(
    id="sg-open-ingress", layer=1, severity=Severity.CRITICAL,
    title="Security group allows inbound traffic from the whole internet",
    remediation="Restrict the rule to the bastion/VPN CIDR or an app-tier security group; keep databases, "
                "brokers and admin ports in private subnets reachable only from their clients' SGs.",
    verify="aws ec2 describe-security-groups --region {region} --group-ids {resource} --query "
           "\"SecurityGroups[].IpPermissions[?contains(IpRanges[].CidrIp, '0.0.0.0/0') || "
           "contains(Ipv6Ranges[].CidrIpv6, '::/0')][]\"  # expect only the intended public web ports",
    requires=(SG_READ,),
)
def sg_open_ingress(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    policy = port_policy()
    for sg in region.security_groups:
        env = sg_environment(sg, region, inv)
        found = False
        for rule in sg.ingress:
            sources = _world_sources(rule)
            if not sources or rule.protocol in ("icmp", "icmpv6", "1", "58"):
                continue
            if rule.all_ports:
                low, high = 0, 65535
            else:
                low, high = int(rule.from_port or 0), int(rule.to_port if rule.to_port is not None else 65535)
            verdict = policy.judge(low, high)
            if verdict is None:
                continue
            severity, what = verdict
            found = True
            yield fail("sg-open-ingress", sg.id,
                       f"{sg.name}: {rule.ports_text} open to {' and '.join(sources)} ({what})",
                       region=region.region, environment=env, severity=severity)
        if not found:
            yield passed("sg-open-ingress", sg.id, region=region.region, environment=env)


@region_check(
    id="sg-open-egress", layer=1, severity=Severity.HIGH,
    title="Security group allows all outbound traffic to the internet",
    remediation="Limit egress to the CIDRs and ports the workload needs (e.g. 443 to a proxy or VPC endpoints, "
                "the database port to the data tier's SG).",
    verify="aws ec2 describe-security-groups --region {region} --group-ids {resource} --query "
           "\"SecurityGroups[].IpPermissionsEgress[?IpProtocol=='-1']\"  # expect []",
    requires=(SG_READ,),
)
def sg_open_egress(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for sg in region.security_groups:
        if sg.is_default:
            continue  # the default group's rules are judged by sg-default-in-use
        env = sg_environment(sg, region, inv)
        open_rules = [r for r in sg.egress if r.all_ports and _world_sources(r)]
        if open_rules:
            targets = sorted({c for r in open_rules for c in _world_sources(r)})
            yield fail("sg-open-egress", sg.id, f"{sg.name}: all ports open to {' and '.join(targets)}",
                       region=region.region, environment=env)
        else:
            yield passed("sg-open-egress", sg.id, region=region.region, environment=env)


def _users_by_group(region: RegionInventory) -> dict[str, list[tuple[str, str | None]]]:
    """Security group id -> [(user resource id, its subnet)] from interfaces and instances."""
    users: dict[str, list[tuple[str, str | None]]] = {}
    seen_instances = set()
    for eni in region.interfaces:
        user = eni.instance_id or eni.id
        seen_instances.add(eni.instance_id)
        for gid in eni.group_ids:
            users.setdefault(gid, []).append((user, eni.subnet_id))
    for inst in region.instances.values():
        if inst.id in seen_instances or inst.state == "terminated":
            continue
        for gid in inst.group_ids:
            users.setdefault(gid, []).append((inst.id, inst.subnet_id))
    return users


@region_check(
    id="sg-shared-across-envs", layer=1, severity=Severity.HIGH,
    title="One security group is shared across environments",
    remediation="Create a separate security group per environment (dev, staging, prod) so a compromise in one "
                "cannot move laterally through rules that trust the same group.",
    verify="aws ec2 describe-network-interfaces --region {region} --filters Name=group-id,Values={resource} "
           "--query \"NetworkInterfaces[].[NetworkInterfaceId,Attachment.InstanceId,SubnetId]\"  "
           "# expect members of one environment only",
    requires=(SG_READ, *USAGE_READS, "ec2.describe_subnets", "ec2.describe_vpcs"),
)
def sg_shared_across_envs(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    users = _users_by_group(region)
    for sg in region.security_groups:
        envs: dict[str, str] = {}
        for user, subnet_id in users.get(sg.id, []):
            inst = region.instances.get(user)
            env = environment(inst.tags, inv) if inst else None
            subnet = region.subnets.get(subnet_id or "")
            if env is None and subnet:
                env = subnet_environment(subnet, region, inv)
            if env:
                envs.setdefault(env, user)
        if len(envs) > 1:
            used = ", ".join(f"{env} ({who})" for env, who in sorted(envs.items()))
            yield fail("sg-shared-across-envs", sg.id, f"{sg.name} is used by {used}",
                       region=region.region, environment="+".join(sorted(envs)))
        else:
            yield passed("sg-shared-across-envs", sg.id, region=region.region,
                         environment=next(iter(envs), None) or sg_environment(sg, region, inv))


@region_check(
    id="sg-default-in-use", layer=1, severity=Severity.MEDIUM,
    title="Default security group is in use or has rules",
    remediation="Remove every rule from the VPC's default security group and move its members to per-app "
                "security groups.",
    verify="aws ec2 describe-security-groups --region {region} --group-ids {resource} --query "
           "\"SecurityGroups[].[IpPermissions,IpPermissionsEgress]\"  # expect [[[], []]]; and "
           "aws ec2 describe-network-interfaces --region {region} --filters Name=group-id,Values={resource}  "
           "# expect none",
    requires=(SG_READ, *USAGE_READS),
)
def sg_default_in_use(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    users = _users_by_group(region)
    for sg in region.security_groups:
        if not sg.is_default:
            continue
        env = sg_environment(sg, region, inv)
        problems = []
        members = sorted({user for user, _ in users.get(sg.id, [])})
        if members:
            shown = ", ".join(members[:5]) + (f" and {len(members) - 5} more" if len(members) > 5 else "")
            problems.append(f"in use by {shown}")
        if sg.ingress or sg.egress:
            problems.append(f"{len(sg.ingress)} inbound and {len(sg.egress)} outbound rules")
        if problems:
            yield fail("sg-default-in-use", sg.id, f"default group of {sg.vpc_id}: " + "; ".join(problems),
                       region=region.region, environment=env)
        else:
            yield passed("sg-default-in-use", sg.id, region=region.region, environment=env)


@region_check(
    id="nacl-no-deny", layer=1, severity=Severity.MEDIUM,
    title="Network ACL has no deny rules",
    remediation="Add inbound NACL deny entries for known-bad CIDRs (and ports no subnet should receive) ahead "
                "of the allow rules.",
    verify="aws ec2 describe-network-acls --region {region} --network-acl-ids {resource} --query "
           "\"NetworkAcls[].Entries[?RuleAction=='deny' && RuleNumber<`32767` && Egress==`false`]\"  "
           "# expect at least one entry",
    requires=("ec2.describe_network_acls",),
)
def nacl_no_deny(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for acl in region.network_acls:
        if not acl.subnet_ids:
            continue  # guards nothing
        env = environment(acl.tags, inv)
        if env is None:
            vpc = region.vpcs.get(acl.vpc_id)
            env = environment(vpc.tags, inv) if vpc else None
        denies = [e for e in acl.entries if e.action == "deny" and not e.egress and e.rule_number < 32767]
        if denies:
            yield passed("nacl-no-deny", acl.id, region=region.region, environment=env)
        else:
            yield fail("nacl-no-deny", acl.id,
                       f"{'default ' if acl.is_default else ''}NACL of {acl.vpc_id} guarding "
                       f"{len(acl.subnet_ids)} subnet(s) has no inbound deny rule",
                       region=region.region, environment=env)


@region_check(
    id="sg-cidr-intra-vpc", layer=1, severity=Severity.REVIEW,
    title="Rules between tiers use VPC CIDRs where a security-group source would do",
    remediation="Replace intra-VPC CIDR sources with the source tier's security group (e.g. allow 5432 from "
                "sg-app-tier), which survives autoscaling and subnet changes.",
    verify="aws ec2 describe-security-groups --region {region} --group-ids {resource} --query "
           "\"SecurityGroups[].IpPermissions[].IpRanges[].CidrIp\"  # expect no ranges inside the VPC",
    requires=(SG_READ, "ec2.describe_vpcs"),
)
def sg_cidr_intra_vpc(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for sg in region.security_groups:
        vpc = region.vpcs.get(sg.vpc_id or "")
        if vpc is None:
            continue
        env = sg_environment(sg, region, inv)
        rules = sorted({f"{rule.ports_text} from {cidr}" for rule in sg.ingress for cidr in rule.cidrs
                        if cidr not in WORLD and vpc.contains(cidr)})
        if rules:
            yield fail("sg-cidr-intra-vpc", sg.id, f"{sg.name}: " + "; ".join(rules),
                       region=region.region, environment=env)
        else:
            yield passed("sg-cidr-intra-vpc", sg.id, region=region.region, environment=env)
