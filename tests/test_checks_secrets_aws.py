"""Layer 5 on AWS, against the real moto server: Secrets Manager rotation, EC2 user data, Lambda, ECS."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

from outsidein.checks.secrets import rotation_window
from outsidein.models import Status
from tests.conftest import Emulator, failed, verdicts

PASSWORD = "Qv8#nLm2pX9!vR4tZk7w"
TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return 1\n")
    return buf.getvalue()


def test_rotation_window_by_name() -> None:
    assert rotation_window({"Name": "prod/app/db"}) == timedelta(days=90)
    assert rotation_window({"Name": "prod/redis-auth"}) == timedelta(days=90)
    assert rotation_window({"Name": "prod/stripe", "Description": "API key"}) == timedelta(days=180)
    assert rotation_window({"Name": "prod/jwt-signing"}) is None


def test_secrets_on_aws(aws: Emulator) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="prod/app/db", SecretString=json.dumps({"password": PASSWORD}))
    sm.create_secret(Name="prod/jwt-signing", SecretString="x" * 32)
    rotated = sm.create_secret(Name="prod/stripe-api-key", SecretString="y" * 64)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = aws.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    lam = aws.client("lambda")
    lam.create_function(FunctionName="rotator", Runtime="python3.11", Role=role,
                        Handler="handler.handler", Code={"ZipFile": _zip()})
    sm.rotate_secret(SecretId=rotated["ARN"], RotationLambdaARN=lam.get_function(FunctionName="rotator")[
        "Configuration"]["FunctionArn"], RotationRules={"AutomaticallyAfterDays": 30})

    lam.create_function(FunctionName="leaky", Runtime="python3.11", Role=role,
                        Handler="handler.handler", Code={"ZipFile": _zip()},
                        Environment={"Variables": {"DB_PASSWORD": PASSWORD, "LOG_LEVEL": "info"}})
    lam.create_function(FunctionName="clean", Runtime="python3.11", Role=role,
                        Handler="handler.handler", Code={"ZipFile": _zip()},
                        Environment={"Variables": {"SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x"}})

    ecs = aws.client("ecs")
    leaky_td = ecs.register_task_definition(family="api", containerDefinitions=[{
        "name": "api", "image": "api:1", "memory": 256,
        "environment": [{"name": "GITHUB_TOKEN", "value": TOKEN}, {"name": "PORT", "value": "8080"}]}])
    clean_td = ecs.register_task_definition(family="worker", containerDefinitions=[{
        "name": "worker", "image": "worker:1", "memory": 256,
        "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:db"}]}])

    ec2 = aws.client("ec2")
    image = "ami-12c6146b"  # moto ships this AMI
    leaky = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                              UserData=f"#!/bin/sh\nexport DB_PASSWORD='{PASSWORD}'\n")["Instances"][0]["InstanceId"]
    clean = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                              UserData="#!/bin/sh\necho hello\n")["Instances"][0]["InstanceId"]

    evidence = aws.collect()
    assert PASSWORD not in json.dumps(evidence.to_json()) and TOKEN not in json.dumps(evidence.to_json())
    from outsidein.audit import evaluate
    report = evaluate(evidence)

    rotation = verdicts(report, "secrets-manager-rotation")
    assert rotation["prod/app/db"] == {Status.FAIL}
    assert rotation["prod/jwt-signing"] == {Status.PASS}
    assert rotation["prod/stripe-api-key"] == {Status.PASS}
    assert "rotation not enabled (window 90 days" in failed(report, "secrets-manager-rotation")["prod/app/db"][0]

    lam_v = verdicts(report, "secrets-lambda-environment")
    assert lam_v["leaky"] == {Status.FAIL} and lam_v["clean"] == {Status.PASS}
    assert failed(report, "secrets-lambda-environment")["leaky"][0].startswith("DB_PASSWORD=Qv8#…[sha256:")

    ecs_v = verdicts(report, "secrets-ecs-task-environment")
    leaky_arn = leaky_td["taskDefinition"]["taskDefinitionArn"]
    assert ecs_v[leaky_arn] == {Status.FAIL}
    assert ecs_v[clean_td["taskDefinition"]["taskDefinitionArn"]] == {Status.PASS}
    assert "api: GITHUB_TOKEN=ghp_…[sha256:" in failed(report, "secrets-ecs-task-environment")[leaky_arn][0]

    ud = verdicts(report, "secrets-ec2-user-data")
    assert ud[leaky] == {Status.FAIL} and ud[clean] == {Status.PASS}
    assert "line 2: generic-secret Qv8#…[sha256:" in failed(report, "secrets-ec2-user-data")[leaky][0]


def test_rotation_overdue_and_denied(aws: Emulator) -> None:
    from outsidein.audit import evaluate
    from outsidein.aws.inventory import parse_evidence
    from outsidein.checks.secrets import secrets_manager_rotation

    evidence = aws.collect()
    evidence.put("us-east-1", "secretsmanager.list_secrets", {"SecretList": [
        {"Name": "prod/redis", "RotationEnabled": True,
         "LastRotatedDate": (datetime.now(UTC) - timedelta(days=120)).isoformat()},
        {"Name": "prod/api-token", "RotationEnabled": True,
         "LastRotatedDate": (datetime.now(UTC) - timedelta(days=120)).isoformat()}]})
    inv = parse_evidence(evidence)
    results = {r.resource: r for r in secrets_manager_rotation(inv.regions["us-east-1"], inv)}
    assert results["prod/redis"].status is Status.FAIL and "90 days" in results["prod/redis"].detail
    assert results["prod/api-token"].status is Status.PASS  # 180-day window
    evidence.put_error("us-east-1", "secretsmanager.list_secrets", "access denied: secretsmanager:ListSecrets")
    report = evaluate(evidence)
    assert verdicts(report, "secrets-manager-rotation") == {"us-east-1": {Status.NOT_ASSESSED}}


def test_undecodable_user_data_is_not_assessed(aws: Emulator) -> None:
    """Bad base64 or a truncated gzip is not an empty script: that instance is NOT_ASSESSED with the error."""
    import base64
    import gzip

    from outsidein.audit import evaluate
    from outsidein.secrets.aws import sanitize

    ec2 = aws.client("ec2")
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=3, MaxCount=3,
                                                        UserData="#!/bin/sh\necho hello\n")["Instances"]]
    bad_base64, truncated, fine = sorted(ids)
    evidence = aws.collect()
    script = gzip.compress(f"#!/bin/sh\nexport DB_PASSWORD='{PASSWORD}'\n".encode())
    for instance, value in ((bad_base64, "IyEvYmluL3No!"), (truncated, base64.b64encode(script[:-12]).decode())):
        raw = {"InstanceId": instance, "UserData": {"Value": value}}
        evidence.put("us-east-1", "ec2.describe_instance_attribute",
                     sanitize("ec2.describe_instance_attribute", raw), instance)
    assert PASSWORD not in json.dumps(evidence.to_json())
    report = evaluate(evidence)
    ud = verdicts(report, "secrets-ec2-user-data")
    assert ud[bad_base64] == ud[truncated] == {Status.NOT_ASSESSED} and ud[fine] == {Status.PASS}
    reasons = {r.resource: r.reason for _, r in report.not_assessed if r.check_id == "secrets-ec2-user-data"}
    assert "user data could not be decoded (Error: " in reasons[bad_base64]
    assert "user data could not be decoded (EOFError: " in reasons[truncated]
