"""Raw evidence: what the APIs returned, kept as JSON so an audit can be saved and re-run offline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

SNAPSHOT_FORMAT = "outsidein-snapshot/1"
GLOBAL = "global"  # the pseudo-region of account-wide services (IAM, S3 bucket list)


class EvidenceError(ValueError):
    """A snapshot or evidence folder that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Record:
    """One API read: its data, or why there is none (denied, throttled, unreachable, not provided)."""

    data: Any = None
    error: str | None = None  # a short reason a person can act on

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error} if self.error else {"data": self.data}


def record_key(region: str, call: str, param: str | None = None) -> str:
    """``us-east-1/ec2.describe_security_groups`` or ``global/s3.get_bucket_policy#bucket``."""
    return f"{region}/{call}" + (f"#{param}" if param is not None else "")


def to_jsonable(value: Any) -> Any:
    """API responses as plain JSON (datetimes become ISO 8601 strings, bytes are decoded)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot store {type(value).__name__} in evidence")


@dataclass
class AwsEvidence:
    """Everything read from one AWS account, keyed by region and API call."""

    collected_at: datetime
    account_id: str | None = None
    regions: tuple[str, ...] = ()
    environment_tag: str = "Environment"
    tier_tag: str = "Tier"
    records: dict[str, Record] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)  # HTTP requests per service
    origin: str = "api"  # "api", "snapshot" or "aws-cli folder"

    def put(self, region: str, call: str, data: Any, param: str | None = None) -> None:
        self.records[record_key(region, call, param)] = Record(data=to_jsonable(data))

    def put_error(self, region: str, call: str, reason: str, param: str | None = None) -> None:
        self.records[record_key(region, call, param)] = Record(error=reason)

    def get(self, region: str, call: str, param: str | None = None) -> Record:
        """The record, or a Record whose error says it was never collected."""
        found = self.records.get(record_key(region, call, param))
        if found is None:
            where = "account-wide" if region == GLOBAL else f"in {region}"
            missing = f"{call}" + (f" for {param}" if param else "")
            return Record(error=f"no evidence {where}: {missing} was not collected")
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "regions": list(self.regions),
            "environment_tag": self.environment_tag,
            "tier_tag": self.tier_tag,
            "api_calls": dict(sorted(self.api_calls.items())),
            "records": {key: rec.to_json() for key, rec in sorted(self.records.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], collected_at: datetime, where: str) -> AwsEvidence:
        try:
            records = {
                key: Record(data=value.get("data"), error=value.get("error"))
                for key, value in data["records"].items()
            }
            return cls(
                collected_at=collected_at,
                account_id=data.get("account_id"),
                regions=tuple(data.get("regions", [])),
                environment_tag=data.get("environment_tag", "Environment"),
                tier_tag=data.get("tier_tag", "Tier"),
                records=records,
                api_calls=dict(data.get("api_calls", {})),
                origin="snapshot",
            )
        except (KeyError, AttributeError, TypeError) as exc:
            raise EvidenceError(f"{where}: the 'aws' section is malformed ({exc})") from None


@dataclass
class Snapshot:
    """A saved collection: the raw evidence of every source, and when it was collected."""

    collected_at: datetime
    aws: AwsEvidence | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "collected_at": self.collected_at.isoformat(),
            "aws": self.aws.to_json() if self.aws else None,
        }

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise EvidenceError(f"{path}: cannot read snapshot: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise EvidenceError(f"{path}: not an outsidein snapshot (expected \"format\": \"{SNAPSHOT_FORMAT}\")")
        try:
            collected_at = datetime.fromisoformat(data["collected_at"])
        except (KeyError, TypeError, ValueError):
            raise EvidenceError(f"{path}: missing or invalid 'collected_at'") from None
        aws = data.get("aws")
        return cls(
            collected_at=collected_at,
            aws=AwsEvidence.from_json(aws, collected_at, str(path)) if aws else None,
        )
