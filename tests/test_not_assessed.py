"""Denied, throttled and unreachable reads become NOT_ASSESSED with a reason; the audit goes on."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from outsidein.audit import evaluate
from outsidein.aws.collect import AwsCollector
from outsidein.demo.emulator import DUMMY_CREDENTIALS, MotoServer, free_loopback_port
from outsidein.models import Status
from outsidein.scope import AwsScope

REGION = "us-east-1"
DENIED = ["ec2:DescribeSecurityGroups", "iam:GetAccountAuthorizationDetails"]


@pytest.fixture(scope="module")
def enforcing_moto() -> Iterator[tuple[MotoServer, dict[str, str]]]:
    """A moto server that enforces IAM policies after its first three requests.

    Those three make an admin; the admin makes an auditor whose policy denies two reads.
    """
    with MotoServer(extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as server:
        kw = {"endpoint_url": server.endpoint_url, "region_name": REGION}
        bootstrap = boto3.client("iam", aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key="x", **kw)
        bootstrap.create_user(UserName="admin")
        bootstrap.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        admin_key = bootstrap.create_access_key(UserName="admin")["AccessKey"]
        admin = boto3.client("iam", aws_access_key_id=admin_key["AccessKeyId"],
                             aws_secret_access_key=admin_key["SecretAccessKey"], **kw)
        admin.create_user(UserName="auditor")
        admin.put_user_policy(UserName="auditor", PolicyName="read-most", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                          {"Effect": "Deny", "Action": DENIED, "Resource": "*"}]}))
        key = admin.create_access_key(UserName="auditor")["AccessKey"]
        yield server, {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def test_denied_reads_mark_exactly_the_checks_they_block(enforcing_moto: tuple[MotoServer, dict[str, str]]) -> None:
    server, creds = enforcing_moto
    session = boto3.Session(region_name=REGION, **creds)
    scope = AwsScope(regions=(REGION,), endpoint_url=server.endpoint_url, max_attempts=2)
    report = evaluate(AwsCollector(scope, session=session).collect())

    by_check: dict[str, set[Status]] = {}
    reasons: dict[str, str] = {}
    for result in report.results:
        by_check.setdefault(result.check_id, set()).add(result.status)
        if result.status is Status.NOT_ASSESSED:
            reasons[result.check_id] = result.reason
    sg_checks = ["sg-open-ingress", "sg-open-egress", "sg-shared-across-envs", "sg-default-in-use", "sg-cidr-intra-vpc"]
    for check_id in sg_checks:
        assert by_check[check_id] == {Status.NOT_ASSESSED}
        assert "access denied: ec2:DescribeSecurityGroups" in reasons[check_id]
    for check_id in ["iam-wildcard-admin", "iam-inline-policy", "iam-permission-boundary", "iam-cross-account-trust"]:
        assert by_check[check_id] == {Status.NOT_ASSESSED}
        assert "access denied: iam:GetAccountAuthorizationDetails" in reasons[check_id]
    # What the denial does not block still ran.
    assert Status.FAIL in by_check["nacl-no-deny"]  # the default VPC's NACL has no deny
    assert Status.FAIL in by_check["vpc-flow-logs"]
    assert Status.FAIL in by_check["iam-root-mfa"]
    layer1 = next(ls for ls in report.layers if ls.layer.number == 1)
    assert layer1.not_assessed == len(sg_checks)
    assert not any(f.check_id in sg_checks for f in report.findings)


def test_unreachable_endpoint_is_not_assessed_everywhere_never_pass() -> None:
    port = free_loopback_port()  # nothing listens here
    scope = AwsScope(regions=(REGION,), endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    session = boto3.Session(region_name=REGION, aws_access_key_id="AKIAEMULATOREXAMPLE1", aws_secret_access_key="x")
    report = evaluate(AwsCollector(scope, session=session).collect())
    assert report.results, "every check still reports"
    assert {r.status for r in report.results} == {Status.NOT_ASSESSED}
    assert all("unreachable" in r.reason or "no evidence" in r.reason for r in report.results)
    assert {ls.status for ls in report.layers} == {"REVIEW"}


class _ThrottlingAws(BaseHTTPRequestHandler):
    """Stands in for an AWS endpoint under load (moto cannot throttle): every request gets EC2's
    RequestLimitExceeded error, and the requests are counted."""

    requests = 0

    def do_POST(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded'
                b'</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>1</RequestID>'
                b'</Response>')
        self.send_response(503)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_throttled_reads_are_retried_then_not_assessed() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ThrottlingAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scope = AwsScope(regions=(REGION,), endpoint_url=f"http://127.0.0.1:{server.server_port}", max_attempts=2)
        session = boto3.Session(region_name=REGION, aws_access_key_id="AKIAEMULATOREXAMPLE1",
                                aws_secret_access_key="x")
        evidence = AwsCollector(scope, session=session).collect()
    finally:
        server.shutdown()
    record = evidence.get(REGION, "ec2.describe_security_groups")
    assert record.error == "throttled: ec2:DescribeSecurityGroups still throttled after retries (RequestLimitExceeded)"
    # Each read was tried max_attempts times before giving up.
    assert _ThrottlingAws.requests >= 2 * 10
    report = evaluate(evidence)
    assert {r.status for r in report.results if r.check_id == "sg-open-ingress"} == {Status.NOT_ASSESSED}
