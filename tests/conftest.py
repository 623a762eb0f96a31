"""Shared fixtures: one real moto server process for the session, reset before each test that uses it."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from outsidein.audit import AuditReport, evaluate
from outsidein.aws.collect import AwsCollector
from outsidein.demo.emulator import DUMMY_CREDENTIALS, MotoServer
from outsidein.evidence import AwsEvidence
from outsidein.models import Status
from outsidein.scope import AwsScope

REGION = "us-east-1"


@dataclass
class Emulator:
    """A freshly reset moto server reached through boto3, like any AWS endpoint."""

    server: MotoServer

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    def session(self, region: str = REGION, **credentials: str) -> boto3.Session:
        if not credentials:
            return _shared_session(region)
        return boto3.Session(
            aws_access_key_id=credentials.get("key", DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]),
            aws_secret_access_key=credentials.get("secret", DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
            region_name=region,
        )

    def client(self, service: str, region: str = REGION) -> Any:
        return self.session(region).client(
            service, endpoint_url=self.endpoint_url, config=Config(s3={"addressing_style": "path"})
        )

    def scope(self, regions: tuple[str, ...] = (REGION,), **kw: Any) -> AwsScope:
        return AwsScope(regions=regions, endpoint_url=self.endpoint_url, max_attempts=2, **kw)

    def collect(self, regions: tuple[str, ...] = (REGION,), session: boto3.Session | None = None,
                **kw: Any) -> AwsEvidence:
        return AwsCollector(self.scope(regions, **kw), session=session or self.session()).collect()

    def audit(self, regions: tuple[str, ...] = (REGION,), **kw: Any) -> AuditReport:
        return evaluate(self.collect(regions, **kw))


@functools.cache
def _shared_session(region: str) -> boto3.Session:
    """One session per region for the whole run: botocore loads each service model once."""
    return boto3.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer) -> Emulator:
    moto_server.reset()
    return Emulator(moto_server)


def verdicts(report: AuditReport, check_id: str) -> dict[str, set[Status]]:
    """resource -> the statuses a check gave it."""
    out: dict[str, set[Status]] = {}
    for result in report.results:
        if result.check_id == check_id:
            out.setdefault(result.resource, set()).add(result.status)
    return out


def failed(report: AuditReport, check_id: str) -> dict[str, list[str]]:
    """resource -> details of the findings a check raised."""
    out: dict[str, list[str]] = {}
    for finding in report.findings:
        if finding.check_id == check_id:
            out.setdefault(finding.resource, []).append(finding.detail)
    return out
