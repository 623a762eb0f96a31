"""Collection of the backup buckets' configuration: which buckets are backup buckets, and what they hold.

Runs inside ``AwsCollector`` once ``s3.list_buckets`` is in, only when the scope has a ``[backups]`` section.
A bucket is a backup bucket when it is named in ``[backups] buckets``, or (``discover = true``) its name holds
"backup", or its tags say so (``Backup = true|yes|1``, or a ``Purpose``/``Role``/``Type``/``Usage`` tag whose
value holds "backup"). The decision is kept as the pseudo-read ``outsidein.backup_buckets`` so an offline
audit knows it too. For each backup bucket: default encryption, versioning, Object Lock, lifecycle, access
logging, the objects under the scope's prefixes (key, time, size, class only) and the KMS key its default
encryption names (``kms.describe_key``: AWS-managed or customer-managed).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from outsidein.aws.reads import (
    BACKUP_BUCKETS,
    KMS_DESCRIBE_KEY,
    S3_BUCKET_ENCRYPTION,
    S3_BUCKET_LIFECYCLE,
    S3_BUCKET_LOGGING,
    S3_BUCKET_TAGGING,
    S3_BUCKET_VERSIONING,
    S3_LIST_OBJECTS,
    S3_OBJECT_LOCK,
)
from outsidein.evidence import GLOBAL, AwsEvidence
from outsidein.scope import BACKUP_BUCKET_WORD, BackupsScope

if TYPE_CHECKING:
    from outsidein.aws.collect import AwsCollector

MAX_OBJECTS = 100_000  # per bucket: the listing is bounded
TAG_FLAGS = ("backup", "backups")
TAG_PURPOSE = ("purpose", "role", "type", "usage", "class", "data-class")


def why_backup_by_name(name: str, scope: BackupsScope) -> str | None:
    if name in scope.buckets:
        return "named in [backups] buckets"
    if scope.discover and BACKUP_BUCKET_WORD in name.lower():
        return f"name holds {BACKUP_BUCKET_WORD!r}"
    return None


def why_backup_by_tags(tags: dict[str, str]) -> str | None:
    for key, value in sorted(tags.items()):
        low_key, low_value = key.lower(), value.lower()
        if low_key in TAG_FLAGS and low_value in ("true", "yes", "1", "enabled"):
            return f"tag {key}={value}"
        if low_key in TAG_PURPOSE and BACKUP_BUCKET_WORD in low_value:
            return f"tag {key}={value}"
    return None


def _tags(data: Any) -> dict[str, str]:
    return {str(t.get("Key", "")): str(t.get("Value", "")) for t in (data or {}).get("TagSet", [])}


def _listing(collector: AwsCollector, bucket: str, prefixes: tuple[str, ...]) -> dict[str, Any]:
    """Every object under the prefixes (or the whole bucket), reduced to key, time, size and storage class."""
    client = collector.client("s3", collector.regions[0])
    contents: list[dict[str, Any]] = []
    truncated = False
    for prefix in prefixes or ("",):
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000, "MaxItems": MAX_OBJECTS})
        for page in pages:
            for obj in page.get("Contents", []):
                contents.append({"Key": obj["Key"], "LastModified": obj.get("LastModified"),
                                 "Size": obj.get("Size", 0), "StorageClass": obj.get("StorageClass", "STANDARD")})
        truncated = truncated or len(contents) >= MAX_OBJECTS
    return {"Contents": contents, "Prefixes": list(prefixes), "Truncated": truncated}


def collect_backup_buckets(collector: AwsCollector, evidence: AwsEvidence, scope: BackupsScope) -> None:
    """Decide which buckets are backup buckets and read their configuration (failures become recorded reasons)."""
    listing = evidence.get(GLOBAL, "s3.list_buckets")
    if not listing.ok:
        evidence.put_error(GLOBAL, BACKUP_BUCKETS, listing.error or "s3.list_buckets was not collected")
        return
    names = [str(b["Name"]) for b in (listing.data or {}).get("Buckets", [])]
    found: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for name in names:
        why = why_backup_by_name(name, scope)
        if why is None and scope.discover:
            tags = collector._store(evidence, S3_BUCKET_TAGGING, GLOBAL, name,
                                    partial(collector._read, S3_BUCKET_TAGGING, GLOBAL, Bucket=name))
            record = evidence.get(GLOBAL, S3_BUCKET_TAGGING.call, name)
            if not record.ok:
                unknown[name] = record.error or "tags unreadable"
            why = why_backup_by_tags(_tags(tags))
        if why is not None:
            found[name] = why
    for name in found:
        for read in (S3_BUCKET_ENCRYPTION, S3_BUCKET_VERSIONING, S3_OBJECT_LOCK, S3_BUCKET_LIFECYCLE,
                     S3_BUCKET_LOGGING):
            data = collector._store(evidence, read, GLOBAL, name, partial(collector._read, read, GLOBAL, Bucket=name))
            if read is S3_BUCKET_ENCRYPTION:
                for key_id in kms_keys(data):
                    region = key_id.split(":")[3] if key_id.startswith("arn:") else collector.regions[0]
                    collector._store(evidence, KMS_DESCRIBE_KEY, GLOBAL, key_id,
                                     partial(collector._read, KMS_DESCRIBE_KEY, region, KeyId=key_id))
        collector._store(evidence, S3_LIST_OBJECTS, GLOBAL, name, partial(_listing, collector, name, scope.prefixes))
    missing = [b for b in scope.buckets if b not in names]
    evidence.put(GLOBAL, BACKUP_BUCKETS, {"buckets": found, "missing": missing, "untagged_unknown": unknown,
                                          "prefixes": list(scope.prefixes)})


def kms_keys(encryption: Any) -> list[str]:
    """The KMS key ids a bucket's default-encryption rules name."""
    rules = ((encryption or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules", [])
    keys = []
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("KMSMasterKeyID"):
            keys.append(str(default["KMSMasterKeyID"]))
    return keys
