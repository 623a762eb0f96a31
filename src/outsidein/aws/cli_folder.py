"""Evidence from a folder of the playbook's own AWS CLI outputs (``aws … --output json``).

Layout (see docs/evidence.md)::

    evidence/
      describe-security-groups.json          # regional reads: at the top (one region) …
      us-east-1/describe-subnets.json        # … or in one folder per region
      get-account-authorization-details.json # account-wide reads at the top
      get-bucket-policy/<bucket>.json        # per-resource reads: one folder per command
      us-east-1/describe-broker/<broker-id>.json
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from outsidein.aws.reads import (
    ALL_READS,
    GLOBAL_READS,
    MQ_DESCRIBE_BROKER,
    PER_BUCKET_READS,
    REGIONAL_READS,
    WAF_WEB_ACL_FOR_RESOURCE,
    ApiRead,
    internet_facing_alb,
)
from outsidein.evidence import GLOBAL, AwsEvidence, EvidenceError
from outsidein.secrets.aws import sanitize

REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
REGIONAL_NAMES = {r.cli_name: r for r in (*REGIONAL_READS, MQ_DESCRIBE_BROKER, WAF_WEB_ACL_FOR_RESOURCE)}
GLOBAL_NAMES = {r.cli_name: r for r in ALL_READS if r not in REGIONAL_NAMES.values()}
PER_RESOURCE = {r.cli_name: r for r in PER_BUCKET_READS}


def _load_json(path: Path, read: ApiRead) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}); save the output of "
                            f"`aws {read.service} {read.cli_name} --output json`") from None
    if data is not None and (not isinstance(data, dict) or read.result_key not in data) and not (
            read.empty_ok and data == {}):
        raise EvidenceError(
            f"{path}: expected a JSON object with \"{read.result_key}\": save the full output of "
            f"`aws {_cli_service(read)} {read.cli_name} --output json`, without --query")
    return data


def _cli_service(read: ApiRead) -> str:
    return {"s3": "s3api"}.get(read.service, read.service)


def _infer_region(folder: Path) -> str | None:
    """The region of top-level regional files, read from availability zones in them."""
    for name in ("describe-subnets.json", "describe-instances.json", "describe-nat-gateways.json"):
        path = folder / name
        if path.is_file():
            match = re.search(r'"AvailabilityZone"\s*:\s*"([a-z]{2}(?:-gov)?-[a-z]+-\d)[a-z]"', path.read_text())
            if match:
                return match.group(1)
    return None


def _infer_account(evidence: AwsEvidence) -> str | None:
    """The account id: from get-caller-identity, else the owner of the VPCs or security groups, else an ARN."""
    identity = evidence.get(GLOBAL, "sts.get_caller_identity")
    if identity.ok and identity.data and identity.data.get("Account"):
        return str(identity.data["Account"])
    for key, record in sorted(evidence.records.items()):
        if not record.ok or not isinstance(record.data, dict):
            continue
        for item in record.data.get("Vpcs", []) + record.data.get("SecurityGroups", []):
            if isinstance(item, dict) and str(item.get("OwnerId", "")).isdigit():
                return str(item["OwnerId"])
        match = re.search(r"arn:aws[a-z-]*:iam::(\d{12}):", json.dumps(record.data)) if "iam." in key else None
        if match:
            return match.group(1)
    return None


def load_cli_folder(folder: Path, regions_hint: tuple[str, ...] = ()) -> tuple[AwsEvidence, list[str]]:
    """Read a folder of AWS CLI outputs; returns the evidence and the files that were not recognised."""
    if not folder.is_dir():
        raise EvidenceError(f"{folder}: not a folder")
    files = [p for p in folder.rglob("*.json") if p.is_file()]
    if not files:
        raise EvidenceError(f"{folder}: no .json files (expected outputs such as describe-security-groups.json)")
    collected_at = datetime.fromtimestamp(max(p.stat().st_mtime for p in files), UTC).replace(microsecond=0)
    region_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and REGION_RE.match(p.name))
    top_region = (regions_hint[0] if regions_hint else None) or _infer_region(folder) or "unknown-region"
    has_top_regional = any((folder / f"{name}.json").is_file() for name in REGIONAL_NAMES)
    regions = [d.name for d in region_dirs] + ([top_region] if has_top_regional else [])
    evidence = AwsEvidence(collected_at=collected_at, regions=tuple(dict.fromkeys(regions)), origin="aws-cli folder")
    ignored: list[str] = []
    used: set[Path] = set()

    def take_one(region: str, base: Path, read: ApiRead, file_name: str, param: str) -> None:
        path = base / read.cli_name / f"{file_name}.json"
        if path.is_file():
            evidence.put(region, read.call, _load_json(path, read), param)
            used.add(path)
        else:
            evidence.put_error(region, read.call, f"not in evidence folder: {path.relative_to(folder)}", param)

    def take(region: str, base: Path) -> None:
        for read in REGIONAL_READS:
            path = base / f"{read.cli_name}.json"
            if path.is_file():
                evidence.put(region, read.call, sanitize(read.call, _load_json(path, read)))
                used.add(path)
            else:
                evidence.put_error(region, read.call, f"not in evidence folder: {path.relative_to(folder)}")
        brokers = evidence.get(region, "mq.list_brokers")
        for broker in (brokers.data or {}).get("BrokerSummaries", []) if brokers.ok else []:
            take_one(region, base, MQ_DESCRIBE_BROKER, broker["BrokerId"], broker["BrokerId"])
        balancers = evidence.get(region, "elbv2.describe_load_balancers")
        for lb in (balancers.data or {}).get("LoadBalancers", []) if balancers.ok else []:
            if internet_facing_alb(lb):  # saved per load balancer name: get-web-acl-for-resource/<name>.json
                take_one(region, base, WAF_WEB_ACL_FOR_RESOURCE, lb.get("LoadBalancerName", "?"), lb["LoadBalancerArn"])

    for region_dir in region_dirs:
        take(region_dir.name, region_dir)
    if has_top_regional:
        take(top_region, folder)
    for read in (*GLOBAL_READS, *(r for r in GLOBAL_NAMES.values() if r not in PER_RESOURCE.values())):
        path = folder / f"{read.cli_name}.json"
        if path in used:
            continue
        if path.is_file():
            evidence.put(GLOBAL, read.call, _load_json(path, read))
            used.add(path)
        else:
            evidence.put_error(GLOBAL, read.call, f"not in evidence folder: {path.name}")
    buckets = evidence.get(GLOBAL, "s3.list_buckets")
    for bucket in (buckets.data or {}).get("Buckets", []) if buckets.ok else []:
        for read in PER_RESOURCE.values():
            path = folder / read.cli_name / f"{bucket['Name']}.json"
            if path.is_file():
                evidence.put(GLOBAL, read.call, _load_json(path, read), bucket["Name"])
                used.add(path)
            else:
                evidence.put_error(GLOBAL, read.call, f"not in evidence folder: {path.relative_to(folder)}",
                                   bucket["Name"])
    evidence.account_id = _infer_account(evidence)
    ignored = sorted(str(p.relative_to(folder)) for p in files if p not in used)
    return evidence, ignored
