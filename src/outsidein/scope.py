"""The audit scope: what to audit, read from ``outsidein.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ScopeError(ValueError):
    """The scope file is missing, unreadable or says something we cannot use."""


@dataclass(frozen=True)
class AwsScope:
    """One AWS account, reached through boto3's standard credential chain."""

    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    regions: tuple[str, ...] = ()
    environment_tag: str = "Environment"
    # Tag whose value says what a subnet is for (public, app, data, mgmt).
    tier_tag: str = "Tier"
    endpoint_url: str | None = None
    # Attempts per API call (throttling, server errors) before the read is NOT_ASSESSED.
    max_attempts: int = 4


@dataclass(frozen=True)
class Scope:
    aws: AwsScope | None = field(default_factory=AwsScope)
    source: Path | None = None  # the file this scope came from, if any


_AWS_KEYS = {
    "profile": str,
    "role_arn": str,
    "external_id": str,
    "regions": list,
    "environment_tag": str,
    "tier_tag": str,
    "endpoint_url": str,
    "max_attempts": int,
}


def load_scope(path: Path) -> Scope:
    """Read and validate a scope file; errors name the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScopeError(f"{path}: cannot read scope file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScopeError(f"{path}: not valid TOML: {exc}") from None
    return parse_scope(data, path)


def parse_scope(data: dict[str, Any], path: Path | None = None) -> Scope:
    where = str(path) if path else "scope"
    unknown = sorted(set(data) - {"aws"})
    if unknown:
        raise ScopeError(f"{where}: unknown section or key {unknown[0]!r} (known: aws)")
    aws_data = data.get("aws")
    if aws_data is None:
        return Scope(aws=None, source=path)
    if not isinstance(aws_data, dict):
        raise ScopeError(f"{where}: [aws] must be a table")
    for key, value in aws_data.items():
        expected = _AWS_KEYS.get(key)
        if expected is None:
            raise ScopeError(f"{where}: [aws] unknown key {key!r} (known: {', '.join(sorted(_AWS_KEYS))})")
        if not isinstance(value, expected):
            raise ScopeError(f"{where}: [aws] {key} must be a {expected.__name__}, not {type(value).__name__}")
    regions = aws_data.get("regions", [])
    if not all(isinstance(r, str) and r for r in regions):
        raise ScopeError(f"{where}: [aws] regions must be a list of region names")
    if not 1 <= aws_data.get("max_attempts", 4) <= 20:
        raise ScopeError(f"{where}: [aws] max_attempts must be between 1 and 20")
    if aws_data.get("external_id") and not aws_data.get("role_arn"):
        raise ScopeError(f"{where}: [aws] external_id is set but role_arn is not")
    aws = AwsScope(
        profile=aws_data.get("profile"),
        role_arn=aws_data.get("role_arn"),
        external_id=aws_data.get("external_id"),
        regions=tuple(regions),
        environment_tag=aws_data.get("environment_tag", "Environment"),
        tier_tag=aws_data.get("tier_tag", "Tier"),
        endpoint_url=aws_data.get("endpoint_url"),
        max_attempts=aws_data.get("max_attempts", 4),
    )
    return Scope(aws=aws, source=path)
