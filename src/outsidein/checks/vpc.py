"""Layer 6: VPC architecture. If an attacker pivots, how far can they reach?"""

from __future__ import annotations

from collections.abc import Iterator

from outsidein.aws.inventory import AwsInventory, RegionInventory
from outsidein.checks.aws_context import environment, subnet_environment, subnet_intent, vpc_environment
from outsidein.checks.registry import region_check, region_summary
from outsidein.models import Result, ReviewItem, Severity, fail, not_assessed, passed

SUBNETS = "ec2.describe_subnets"
ROUTES = "ec2.describe_route_tables"
# What a subnet's purpose is read from, besides its tags.
INTENT_READS = (SUBNETS, "ec2.describe_nat_gateways", "elbv2.describe_load_balancers",
                "rds.describe_db_instances", "elasticache.describe_cache_clusters",
                "elasticache.describe_cache_subnet_groups", "mq.list_brokers")
MIN_FLOW_LOG_RETENTION_DAYS = 90


@region_check(
    id="vpc-private-subnet-igw-route", layer=6, severity=Severity.CRITICAL,
    title="A subnet that is not meant to be public routes to an internet gateway",
    remediation="Associate the subnet with a private route table (egress through a NAT gateway in its AZ, or "
                "no internet route for data subnets) and remove the igw route.",
    verify="aws ec2 describe-route-tables --region {region} --filters Name=association.subnet-id,Values={resource} "
           "--query \"RouteTables[].Routes[?starts_with(GatewayId || '', 'igw-')]\"  # expect [[]]",
    requires=(*INTENT_READS, ROUTES),
)
def private_subnet_igw_route(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for subnet in region.subnets.values():
        env = subnet_environment(subnet, region, inv)
        intent, why = subnet_intent(subnet, region, inv)
        table = region.route_table_of(subnet.id)
        if intent == "private" and table and table.igw_routes:
            routes = ", ".join(f"{r.destination} -> {r.target}" for r in table.igw_routes)
            how = "associated with" if subnet.id in table.subnet_ids else "inheriting the main route table"
            yield fail("vpc-private-subnet-igw-route", subnet.id,
                       f"private subnet ({why}) {how} {table.id}: {routes}",
                       region=region.region, environment=env)
        else:
            yield passed("vpc-private-subnet-igw-route", subnet.id, region=region.region, environment=env)


@region_check(
    id="vpc-subnet-auto-public-ip", layer=6, severity=Severity.MEDIUM,
    title="A subnet that is not meant to be public auto-assigns public IPs",
    remediation="Turn off MapPublicIpOnLaunch on private subnets "
                "(aws ec2 modify-subnet-attribute --subnet-id <id> --no-map-public-ip-on-launch).",
    verify="aws ec2 describe-subnets --region {region} --subnet-ids {resource} "
           "--query \"Subnets[].MapPublicIpOnLaunch\"  # expect [false]",
    requires=INTENT_READS,
)
def subnet_auto_public_ip(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for subnet in region.subnets.values():
        env = subnet_environment(subnet, region, inv)
        intent, why = subnet_intent(subnet, region, inv)
        if intent == "private" and subnet.map_public_ip:
            yield fail("vpc-subnet-auto-public-ip", subnet.id,
                       f"private subnet ({why}) assigns a public IP to every instance launched in it",
                       region=region.region, environment=env)
        else:
            yield passed("vpc-subnet-auto-public-ip", subnet.id, region=region.region, environment=env)


@region_check(
    id="vpc-nat-per-az", layer=6, severity=Severity.MEDIUM,
    title="NAT gateways are not one per availability zone",
    remediation="Create a NAT gateway in each AZ that has private subnets and route each private subnet to "
                "the NAT gateway in its own AZ (required in production).",
    verify="aws ec2 describe-nat-gateways --region {region} --filter Name=vpc-id,Values={resource} "
           "Name=state,Values=available --query \"NatGateways[].SubnetId\"  # expect one per AZ",
    requires=(SUBNETS, ROUTES, "ec2.describe_nat_gateways", "ec2.describe_vpcs"),
)
def nat_per_az(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    nat_az = {n.id: region.subnets[n.subnet_id].az for n in region.nat_gateways
              if n.state == "available" and n.subnet_id in region.subnets}
    for vpc in region.vpcs.values():
        env = vpc_environment(region, inv, vpc.id)
        crossing = []
        uses_nat = False
        for subnet in (s for s in region.subnets.values() if s.vpc_id == vpc.id):
            table = region.route_table_of(subnet.id)
            nats = {r.target for r in table.routes if r.target.startswith("nat-")} if table else set()
            if not nats:
                continue
            uses_nat = True
            if not any(nat_az.get(n) == subnet.az for n in nats):
                via = ", ".join(sorted(f"{n} ({nat_az.get(n, 'unavailable')})" for n in nats))
                crossing.append(f"{subnet.id} ({subnet.az}) via {via}")
        if not uses_nat:
            continue
        if crossing:
            severity = Severity.HIGH if env == "prod" else Severity.MEDIUM
            yield fail("vpc-nat-per-az", vpc.id,
                       "private subnets leave through a NAT gateway in another AZ: " + "; ".join(sorted(crossing)),
                       region=region.region, environment=env, severity=severity)
        else:
            yield passed("vpc-nat-per-az", vpc.id, region=region.region, environment=env)


@region_check(
    id="vpc-flow-logs", layer=6, severity=Severity.MEDIUM,
    title="VPC has no active flow logs",
    remediation="aws ec2 create-flow-logs --resource-type VPC --resource-ids <vpc-id> --traffic-type ALL "
                "--log-destination-type cloud-watch-logs --log-group-name /aws/vpc/flowlogs "
                "--deliver-logs-permission-arn <role-arn>",
    verify="aws ec2 describe-flow-logs --region {region} --filter Name=resource-id,Values={resource} "
           "--query \"FlowLogs[?FlowLogStatus=='ACTIVE'].FlowLogId\"  # expect at least one",
    requires=("ec2.describe_vpcs", "ec2.describe_flow_logs"),
)
def vpc_flow_logs(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for vpc in region.vpcs.values():
        env = environment(vpc.tags, inv)
        if any(f.resource_id == vpc.id and f.status == "ACTIVE" for f in region.flow_logs):
            yield passed("vpc-flow-logs", vpc.id, region=region.region, environment=env)
        else:
            yield fail("vpc-flow-logs", vpc.id, "no active flow log on the VPC",
                       region=region.region, environment=env)


@region_check(
    id="vpc-flow-logs-retention", layer=6, severity=Severity.MEDIUM,
    title="VPC flow logs are retained for less than 90 days",
    remediation="aws logs put-retention-policy --log-group-name <group> --retention-in-days 90 (or longer)",
    verify="aws logs describe-log-groups --region {region} --log-group-name-prefix <flow log group> "
           "--query \"logGroups[].retentionInDays\"  # expect >= 90 or null (never expire)",
    requires=("ec2.describe_vpcs", "ec2.describe_flow_logs", "logs.describe_log_groups"),
)
def flow_log_retention(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for vpc in region.vpcs.values():
        env = environment(vpc.tags, inv)
        logs = [f for f in region.flow_logs if f.resource_id == vpc.id and f.status == "ACTIVE"]
        if not logs:
            continue  # vpc-flow-logs reports the absence
        short, unknown = [], []
        for log in logs:
            if log.destination_type != "cloud-watch-logs" or not log.log_group:
                unknown.append(f"{log.id} delivers to {log.destination_type} (retention set by its lifecycle)")
                continue
            if log.log_group not in region.log_group_retention:
                unknown.append(f"log group {log.log_group} was not found")
                continue
            days = region.log_group_retention[log.log_group]
            if days is not None and days < MIN_FLOW_LOG_RETENTION_DAYS:
                short.append(f"{log.log_group} keeps {days} days")
        if short:
            yield fail("vpc-flow-logs-retention", vpc.id, "; ".join(short), region=region.region, environment=env)
        elif unknown and len(unknown) == len(logs):
            yield not_assessed("vpc-flow-logs-retention", vpc.id, "; ".join(unknown), region=region.region)
        else:
            yield passed("vpc-flow-logs-retention", vpc.id, region=region.region, environment=env)


@region_check(
    id="vpc-datastore-public", layer=6, severity=Severity.CRITICAL,
    title="A database, cache or broker is publicly accessible or sits in a subnet with an internet route",
    remediation="Set PubliclyAccessible to false and place the data store in private data subnets with no "
                "internet route, reachable only from the app tier's security group.",
    verify="aws rds describe-db-instances --region {region} --db-instance-identifier {resource} --query "
           "\"DBInstances[].[PubliclyAccessible,DBSubnetGroup.Subnets[].SubnetIdentifier]\"  "
           "# expect false and subnets whose route tables have no igw route (for ElastiCache/MQ: "
           "describe-cache-clusters / describe-broker)",
    requires=(*INTENT_READS, ROUTES),
)
def datastore_public(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for key, reason in region.missing.items():
        if key.startswith("mq.describe_broker#"):
            yield not_assessed("vpc-datastore-public", key.partition("#")[2], reason, region=region.region)
    for store in region.data_stores:
        env = environment(store.tags, inv) or vpc_environment(region, inv, store.vpc_id)
        if env is None:
            subnet = next((region.subnets[s] for s in store.subnet_ids if s in region.subnets), None)
            env = subnet_environment(subnet, region, inv) if subnet else None
        problems = []
        if store.publicly_accessible:
            problems.append("PubliclyAccessible is true")
        for subnet_id in store.subnet_ids:
            table = region.route_table_of(subnet_id)
            if table and table.igw_routes:
                problems.append(f"subnet {subnet_id} routes to {table.igw_routes[0].target} via {table.id}")
        if problems:
            yield fail("vpc-datastore-public", store.id, f"{store.kind} {store.engine}: " + "; ".join(problems),
                       region=region.region, environment=env)
        else:
            yield passed("vpc-datastore-public", store.id, region=region.region, environment=env)


@region_check(
    id="vpc-main-route-table-igw", layer=6, severity=Severity.REVIEW,
    title="The VPC's main route table routes to the internet, so every unassociated subnet is public",
    remediation="Give the main route table no internet route and associate public subnets explicitly with a "
                "public route table; re-confirm route-table associations every audit.",
    verify="aws ec2 describe-route-tables --region {region} --filters Name=vpc-id,Values={resource} "
           "Name=association.main,Values=true --query \"RouteTables[].Routes[?starts_with(GatewayId || '', "
           "'igw-')]\"  # expect [[]]",
    requires=(ROUTES, "ec2.describe_vpcs", SUBNETS),
)
def main_route_table_igw(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for vpc in region.vpcs.values():
        env = environment(vpc.tags, inv)
        main = next((t for t in region.route_tables if t.vpc_id == vpc.id and t.is_main), None)
        if vpc.is_default or main is None or not main.igw_routes:
            yield passed("vpc-main-route-table-igw", vpc.id, region=region.region, environment=env)
            continue
        yield fail("vpc-main-route-table-igw", vpc.id,
                   f"main route table {main.id} routes to {main.igw_routes[0].target}; subnets without an "
                   "explicit association inherit it",
                   region=region.region, environment=env)


@region_summary(requires=(ROUTES, SUBNETS, "ec2.describe_vpcs"))
def route_table_associations(region: RegionInventory, inv: AwsInventory) -> Iterator[ReviewItem]:
    """Which subnets each route table serves and where it sends traffic: humans edit these during incidents."""
    explicit = {s for t in region.route_tables for s in t.subnet_ids}
    for table in sorted(region.route_tables, key=lambda t: (t.vpc_id, not t.is_main, t.id)):
        subnets = list(table.subnet_ids)
        if table.is_main:
            subnets += [f"{s.id} (implicit)" for s in region.subnets.values()
                        if s.vpc_id == table.vpc_id and s.id not in explicit]
        exits = sorted({f"{r.destination} -> {r.target}" for r in table.routes if r.target != "local"})
        text = (f"{'main ' if table.is_main else ''}route table of {table.vpc_id}; "
                f"subnets: {', '.join(subnets) or 'none'}; routes: {', '.join(exits) or 'local only'}")
        yield ReviewItem(6, "Route-table associations", table.id, region.region,
                         vpc_environment(region, inv, table.vpc_id), text)
