"""The backup target the layer-9 account checks read: the plan, the backup buckets (from the AWS inventory and
evidence), the RDS instances, and the restore drills. ``parse_backups`` never raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from outsidein.aws.reads import BACKUP_BUCKETS
from outsidein.evidence import GLOBAL, AwsEvidence, Record, SourceEvidence

if TYPE_CHECKING:
    from outsidein.aws.inventory import AwsInventory, Bucket, DataStore

AWS_KEY, DRILLS_KEY, BUCKETS_KEY = "aws", "drills", "backup buckets"


@dataclass
class BackupBucket:
    name: str
    why: str  # why it is a backup bucket
    exists: bool = True
    base: Bucket | None = None  # policy, public access block, ACL (the layer-7 reads)
    reads: dict[str, Record] = field(default_factory=dict)  # call -> record (encryption, versioning …)
    kms: dict[str, Record] = field(default_factory=dict)  # key id -> kms.describe_key record

    def data(self, call: str) -> tuple[Any, str | None]:
        record = self.reads.get(call)
        if record is None:
            return None, f"{call} was not collected for {self.name}"
        return record.data, record.error


@dataclass
class BackupTarget:
    name: str
    environment: str | None
    collected_at: datetime
    plan: dict[str, Any]
    buckets: list[BackupBucket] = field(default_factory=list)
    databases: list[tuple[str, DataStore]] = field(default_factory=list)  # (region, RDS instance)
    account_pab: dict[str, bool] | None = None
    drills: list[dict[str, Any]] = field(default_factory=list)
    drill_where: list[str] = field(default_factory=list)  # "log:line" of each drill record (its index otherwise)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(self.plan.get("prefixes") or ())


BUCKET_CALLS = ("s3.get_bucket_encryption", "s3.get_bucket_versioning", "s3.get_object_lock_configuration",
                "s3.get_bucket_lifecycle_configuration", "s3.get_bucket_logging", "s3.list_objects_v2")


def parse_backups(entry: SourceEvidence, aws: AwsEvidence | None, inventory: AwsInventory | None,
                  collected_at: datetime) -> BackupTarget:
    data = entry.data.data if entry.data.ok and isinstance(entry.data.data, dict) else {}
    target = BackupTarget(entry.name, entry.environment, collected_at, dict(data.get("plan") or {}))
    if not entry.data.ok:
        target.missing[DRILLS_KEY] = entry.data.error or "backup evidence unreadable"
    elif data.get("drills") is None:
        target.missing[DRILLS_KEY] = str(data.get("drills_error") or "drill log not read")
    else:
        log = str(data.get("drill_log") or "drill log")
        lines = data.get("drill_lines")
        lines = lines if isinstance(lines, list) and len(lines) == len(data["drills"]) else None
        for i, record in enumerate(data["drills"]):
            if isinstance(record, dict):
                target.drills.append(record)
                target.drill_where.append(f"{log}:{lines[i]}" if lines else f"{log} record {i + 1}")
    if aws is None or inventory is None:
        reason = "no AWS evidence in this audit: backup buckets and RDS instances unknown"
        target.missing[AWS_KEY] = target.missing[BUCKETS_KEY] = reason
        return target
    try:
        _parse_aws(target, aws, inventory)
    except Exception as exc:  # a parser bug costs the bucket checks, not the audit
        target.missing[BUCKETS_KEY] = f"backup evidence could not be parsed ({type(exc).__name__}: {exc})"
    return target


def _parse_aws(target: BackupTarget, aws: AwsEvidence, inventory: AwsInventory) -> None:
    for region, region_inv in inventory.regions.items():
        if "rds.describe_db_instances" in region_inv.missing:
            target.missing[f"rds@{region}"] = region_inv.missing["rds.describe_db_instances"]
        target.databases += [(region, d) for d in region_inv.data_stores if d.kind == "RDS"]
    target.account_pab = inventory.global_.account_public_access_block
    found = aws.get(GLOBAL, BACKUP_BUCKETS)
    if not found.ok:
        target.missing[BUCKETS_KEY] = found.error or "backup buckets not collected"
        return
    listing = found.data or {}
    by_name = {b.name: b for b in inventory.global_.buckets}
    for name, why in sorted((listing.get("buckets") or {}).items()):
        bucket = BackupBucket(name, str(why), base=by_name.get(name))
        for call in BUCKET_CALLS:
            bucket.reads[call] = aws.get(GLOBAL, call, name)
        encryption = bucket.reads["s3.get_bucket_encryption"]
        from outsidein.backups.aws import kms_keys

        for key_id in kms_keys(encryption.data if encryption.ok else None):
            bucket.kms[key_id] = aws.get(GLOBAL, "kms.describe_key", key_id)
        target.buckets.append(bucket)
    for name in listing.get("missing") or []:
        target.buckets.append(BackupBucket(str(name), "named in [backups] buckets", exists=False))
    if not target.buckets:
        target.missing[BUCKETS_KEY] = "no backup bucket found: none named in [backups] buckets, none whose name " \
                                      "holds 'backup', none tagged Backup=true or Purpose=backup"
