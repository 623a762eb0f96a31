"""Shared readings of the AWS inventory: which environment a resource is in, what a subnet is for."""

from __future__ import annotations

import re

from outsidein.aws.inventory import AwsInventory, RegionInventory, SecurityGroup, Subnet

PUBLIC_TIERS = {"public", "dmz", "edge", "ingress", "web-public"}
PRIVATE_TIERS = {
    "private", "app", "application", "data", "db", "database", "mgmt", "management", "internal",
    "isolated", "backend", "cache", "queue",
}


# Spellings of the same environment, so "production" and "prod" are not counted as two.
ENVIRONMENT_ALIASES = {"production": "prod", "prd": "prod", "stage": "staging", "stg": "staging",
                       "development": "dev", "develop": "dev"}


def environment(tags: dict[str, str], inv: AwsInventory) -> str | None:
    """The resource's environment from the scope's tag (any key case), normalised."""
    value = tags.get(inv.environment_tag) or next(
        (v for k, v in tags.items() if k.lower() == inv.environment_tag.lower()), None)
    if not value or not value.strip():
        return None
    name = value.strip().lower()
    return ENVIRONMENT_ALIASES.get(name, name)


def vpc_environment(region: RegionInventory, inv: AwsInventory, vpc_id: str | None) -> str | None:
    vpc = region.vpcs.get(vpc_id or "")
    return environment(vpc.tags, inv) if vpc else None


def sg_environment(sg: SecurityGroup, region: RegionInventory, inv: AwsInventory) -> str | None:
    return environment(sg.tags, inv) or vpc_environment(region, inv, sg.vpc_id)


def subnet_environment(subnet: Subnet, region: RegionInventory, inv: AwsInventory) -> str | None:
    return environment(subnet.tags, inv) or vpc_environment(region, inv, subnet.vpc_id)


def _words(text: str) -> set[str]:
    """Words of a Name tag, whatever the convention: prod-data-a, prod_data, shop/Vpc/PrivateSubnet1."""
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", text)}


def subnet_intent(subnet: Subnet, region: RegionInventory, inv: AwsInventory) -> tuple[str, str]:
    """Whether a subnet is meant to be public: ("public" | "private" | "unknown", why we think so).

    Declared intent (the tier tag, then the Name tag) comes first; without it, what runs in the
    subnet decides: NAT gateways and internet-facing load balancers are public, data stores private.
    """
    tier = next((v for k, v in subnet.tags.items() if k.lower() == inv.tier_tag.lower()), "").strip().lower()
    if tier in PUBLIC_TIERS:
        return "public", f"{inv.tier_tag}={tier}"
    if tier in PRIVATE_TIERS:
        return "private", f"{inv.tier_tag}={tier}"
    name = subnet.tags.get("Name", "")
    name_words = _words(name)
    if "public" in name.lower() or "dmz" in name_words:
        return "public", f"Name={subnet.tags['Name']}"
    if "private" in name.lower() or name_words & PRIVATE_TIERS:
        return "private", f"Name={subnet.tags['Name']}"
    if any(n.subnet_id == subnet.id and n.connectivity == "public" and n.state in ("available", "pending")
           for n in region.nat_gateways):
        return "public", "hosts a NAT gateway"
    if any(lb.scheme == "internet-facing" and subnet.id in lb.subnet_ids for lb in region.load_balancers):
        return "public", "hosts an internet-facing load balancer"
    stores = [d for d in region.data_stores if subnet.id in d.subnet_ids]
    if stores:
        return "private", f"hosts {stores[0].kind} {stores[0].id}"
    return "unknown", "no tier tag and nothing that tells"
