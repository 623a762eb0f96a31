"""Collect raw AWS evidence through boto3. It only reads; it judges nothing."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from outsidein.aws.reads import (
    ABSENT_CODES,
    CALLER_IDENTITY,
    CREDENTIAL_REPORT,
    EC2_USER_DATA,
    ECS_DESCRIBE_TASK_DEFINITION,
    GLOBAL_READS,
    MQ_DESCRIBE_BROKER,
    PER_BUCKET_READS,
    REGIONAL_READS,
    S3CONTROL_PUBLIC_ACCESS_BLOCK,
    WAF_WEB_ACL_FOR_RESOURCE,
    ApiRead,
    internet_facing_alb,
)
from outsidein.aws.session import lean_session
from outsidein.evidence import GLOBAL, AwsEvidence
from outsidein.scope import AwsScope, BackupsScope
from outsidein.secrets.aws import sanitize

ACCESS_DENIED_CODES = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
    "AuthorizationError", "AuthorizationErrorException", "Forbidden", "InvalidClientTokenId",
}
THROTTLING_CODES = {
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "SlowDown", "RequestThrottled", "RequestThrottledException", "ProvisionedThroughputExceededException",
}
DEFAULT_REGION = "us-east-1"


class CollectionError(RuntimeError):
    """Collection cannot start at all (no credentials, role cannot be assumed)."""


class _Absent(Exception):
    """The resource has no such configuration (no bucket policy …): recorded as data None."""


def describe_failure(read: ApiRead, exc: BaseException) -> str:
    """A short, actionable reason for a read that failed."""
    api = f"{read.service}:{_pascal(read.operation)}"
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ACCESS_DENIED_CODES:
            return f"access denied: {api} ({code})"
        if code in THROTTLING_CODES:
            return f"throttled: {api} still throttled after retries ({code})"
        message = str(error.get("Message", "")).strip()
        if code.isdigit() or not message or message.startswith("<"):
            return f"{api} failed: the endpoint answered HTTP {status or code}"
        return f"{api} failed: {code}: {message[:200]}"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError):
        return f"unreachable: {api} ({exc})"
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        return f"timed out: {api} ({exc})"
    return f"{api} failed: {type(exc).__name__}: {str(exc)[:200]}"


def _strip_account_host_prefix(request: Any, **_: Any) -> None:
    """S3 Control puts the account id in the host name; an emulator on one address has no such host."""
    parts = urlsplit(request.url)
    host, _, rest = parts.netloc.partition(".")
    if host.isdigit() and len(host) == 12 and rest:
        request.url = urlunsplit(parts._replace(netloc=rest))


def _pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _endpoint_overridden(scope: AwsScope) -> bool:
    return bool(scope.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))


class AwsCollector:
    """Reads one account across the scope's regions, concurrently, counting every HTTP request."""

    def __init__(self, scope: AwsScope, max_workers: int = 16, session: boto3.Session | None = None,
                 backups: BackupsScope | None = None) -> None:
        self.scope = scope
        self.backups = backups  # layer 9: with a [backups] section, the backup buckets are read too
        self.max_workers = max_workers
        self.session = lean_session(self._session(session))
        self.regions = scope.regions or (self.session.region_name or DEFAULT_REGION,)
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()  # guards the call counter
        self._client_lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._config = Config(
            retries={"max_attempts": scope.max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=scope.read_timeout,
            max_pool_connections=max_workers,
        )

    def _session(self, given: boto3.Session | None) -> boto3.Session:
        """The scope's session: a profile or the default chain, then the role to assume, if any."""
        try:
            if given is not None:
                session = given
            elif self.scope.profile:
                session = boto3.Session(profile_name=self.scope.profile)
            else:
                session = boto3.Session()
        except botocore.exceptions.ProfileNotFound as exc:
            raise CollectionError(f"AWS profile not found: {exc}") from None
        if not self.scope.role_arn:
            return session
        sts = session.client("sts", endpoint_url=self.scope.endpoint_url, region_name=session.region_name
                             or DEFAULT_REGION)
        kwargs: dict[str, Any] = {"RoleArn": self.scope.role_arn, "RoleSessionName": "outsidein-audit"}
        if self.scope.external_id:
            kwargs["ExternalId"] = self.scope.external_id
        try:
            creds = sts.assume_role(**kwargs)["Credentials"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise CollectionError(f"cannot assume role {self.scope.role_arn}: {exc}") from None
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=session.region_name,
        )

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._client_lock:
            if key not in self._clients:
                config = self._config
                if _endpoint_overridden(self.scope):
                    # Emulators live on one host: no bucket or account host prefixes.
                    config = config.merge(Config(s3={"addressing_style": "path"}, inject_host_prefix=False))
                client = self.session.client(
                    service, region_name=region, endpoint_url=self.scope.endpoint_url, config=config
                )
                client.meta.events.register("before-send", self._count(service))
                if service == "s3control" and _endpoint_overridden(self.scope):
                    client.meta.events.register("before-sign.s3-control", _strip_account_host_prefix)
                self._clients[key] = client
            return self._clients[key]

    def _count(self, service: str) -> Callable[..., None]:
        def count(**_: Any) -> None:
            with self._lock:
                self._calls[service] += 1

        return count

    # -- reads ---------------------------------------------------------------

    def _read(self, read: ApiRead, region: str, **params: Any) -> Any:
        client = self.client(read.service, DEFAULT_REGION if region == GLOBAL else region)
        try:
            if read.paginated and client.can_paginate(read.operation):
                return client.get_paginator(read.operation).paginate(**read.kwargs, **params).build_full_result()
            fixed = {key: value for key, value in read.kwargs.items() if key != "PaginationConfig"}
            response = getattr(client, read.operation)(**fixed, **params)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ABSENT_CODES.get(read.call, ()):
                raise _Absent from None
            raise
        response.pop("ResponseMetadata", None)
        return response

    def _store(self, evidence: AwsEvidence, read: ApiRead, region: str, param: str | None = None,
               fetch: Callable[[], Any] | None = None) -> Any:
        """Run one read and record its data or its failure; returns the data or None."""
        try:
            data = fetch() if fetch else self._read(read, region)
        except _Absent:
            evidence.put(region, read.call, None, param)
            return None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            evidence.put_error(region, read.call, describe_failure(read, exc), param)
            return None
        evidence.put(region, read.call, sanitize(read.call, data), param)  # secrets masked before storing
        return data

    def _credential_report(self) -> dict[str, Any]:
        iam = self.client("iam", DEFAULT_REGION)
        for _ in range(20):
            if iam.generate_credential_report().get("State") == "COMPLETE":
                break
            time.sleep(0.5)
        report = iam.get_credential_report()
        content = report["Content"]
        return {
            "Content": content.decode("utf-8") if isinstance(content, bytes) else str(content),
            "GeneratedTime": report.get("GeneratedTime"),
            "ReportFormat": report.get("ReportFormat", "text/csv"),
        }

    @staticmethod
    def _follow_ups(call: str, data: Any) -> list[tuple[ApiRead, str, dict[str, str]]]:
        """The per-resource reads a listing calls for: (read, resource name, API parameters)."""
        if not data:
            return []
        if call == "mq.list_brokers":
            return [(MQ_DESCRIBE_BROKER, broker["BrokerId"], {"BrokerId": broker["BrokerId"]})
                    for broker in data.get("BrokerSummaries", [])]
        if call == "ecs.list_task_definitions":
            return [(ECS_DESCRIBE_TASK_DEFINITION, arn, {"taskDefinition": arn})
                    for arn in data.get("taskDefinitionArns", [])]
        if call == "ec2.describe_instances":
            return [(EC2_USER_DATA, inst["InstanceId"], {"InstanceId": inst["InstanceId"], "Attribute": "userData"})
                    for res in data.get("Reservations", []) for inst in res.get("Instances", [])
                    if (inst.get("State") or {}).get("Name") != "terminated"]
        if call == "elbv2.describe_load_balancers":
            return [(WAF_WEB_ACL_FOR_RESOURCE, lb["LoadBalancerArn"], {"ResourceArn": lb["LoadBalancerArn"]})
                    for lb in data.get("LoadBalancers", []) if internet_facing_alb(lb)]
        if call == "s3.list_buckets":
            return [(read, bucket["Name"], {"Bucket": bucket["Name"]})
                    for bucket in data.get("Buckets", []) for read in PER_BUCKET_READS]
        return []

    def collect(self) -> AwsEvidence:
        """Every read of the scope, concurrently; failures become recorded reasons, never exceptions."""
        evidence = AwsEvidence(
            collected_at=datetime.now(UTC).replace(microsecond=0),
            regions=tuple(self.regions),
            environment_tag=self.scope.environment_tag,
            tier_tag=self.scope.tier_tag,
        )
        try:
            identity = self._read(CALLER_IDENTITY, GLOBAL)
        except botocore.exceptions.NoCredentialsError:
            raise CollectionError(
                "no AWS credentials found: set a profile in outsidein.toml, AWS_PROFILE, or AWS_ACCESS_KEY_ID"
            ) from None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            evidence.put_error(GLOBAL, CALLER_IDENTITY.call, describe_failure(CALLER_IDENTITY, exc))
        else:
            evidence.put(GLOBAL, CALLER_IDENTITY.call, identity)
            evidence.account_id = identity.get("Account")

        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            pending: dict[Future[Any], tuple[str, str]] = {}
            for region in self.regions:
                for read in REGIONAL_READS:
                    pending[pool.submit(self._store, evidence, read, region)] = (region, read.call)
            for read in GLOBAL_READS:
                pending[pool.submit(self._store, evidence, read, GLOBAL)] = (GLOBAL, read.call)
            pending[pool.submit(self._store, evidence, CREDENTIAL_REPORT, GLOBAL, None,
                                self._credential_report)] = (GLOBAL, CREDENTIAL_REPORT.call)
            if evidence.account_id:
                account = evidence.account_id
                pending[pool.submit(
                    self._store, evidence, S3CONTROL_PUBLIC_ACCESS_BLOCK, GLOBAL, None,
                    partial(self._read, S3CONTROL_PUBLIC_ACCESS_BLOCK, GLOBAL, AccountId=account),
                )] = (GLOBAL, S3CONTROL_PUBLIC_ACCESS_BLOCK.call)
            # Reads that exist only per resource start as soon as the listing that names them is in,
            # without waiting for the slowest read of the first wave.
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    region, call = pending.pop(future)
                    data = future.result()
                    if call == "s3.list_buckets" and self.backups is not None:
                        from outsidein.backups.aws import collect_backup_buckets

                        pending[pool.submit(collect_backup_buckets, self, evidence, self.backups)] = (GLOBAL, "")
                    for read, name, params in self._follow_ups(call, data):
                        pending[pool.submit(self._store, evidence, read, region, name,
                                            partial(self._read, read, region, **params))] = (region, read.call)
        evidence.api_calls = dict(self._calls)
        return evidence

