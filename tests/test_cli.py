"""The command line as a user runs it: scope files, exit codes, --fail-on, --from an AWS CLI folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from outsidein.cli import main
from outsidein.demo.emulator import DUMMY_CREDENTIALS
from tests.conftest import Emulator

REGION = "us-east-1"


def _scope(tmp_path: Path, aws: Emulator, extra: str = "") -> Path:
    path = tmp_path / "outsidein.toml"
    path.write_text(f'[aws]\nregions = ["{REGION}"]\nendpoint_url = "{aws.endpoint_url}"\nmax_attempts = 2\n{extra}')
    return path


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _open_ssh(aws: Emulator) -> str:
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="bastion", Description="bastion", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return str(sg)


def test_json_report_schema_and_fail_on(aws: Emulator, creds: None, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    sg = _open_ssh(aws)
    config = _scope(tmp_path, aws)
    out = tmp_path / "report.json"
    code = main(["audit", "--config", str(config), "--format", "json", "--output", str(out), "--fail-on", "CRITICAL"])
    assert code == 1
    assert "--fail-on CRITICAL" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert [layer["number"] for layer in report["layers"]] == list(range(1, 13))
    assert set(report["layers"][0]) >= {"number", "name", "status"}
    finding = next(f for f in report["findings"] if f["check_id"] == "sg-open-ingress")
    assert finding["resource"] == sg and finding["severity"] == "CRITICAL" and finding["region"] == REGION
    assert set(finding) >= {"fingerprint", "check_id", "layer", "severity", "title", "resource", "environment",
                            "region", "remediation", "verify", "due"}
    assert sg in finding["verify"] and finding["due"] > finding["found_at"]
    assert all(set(n) >= {"check_id", "resource", "reason"} for n in report["not_assessed"])
    # The same findings without --fail-on, or with a threshold nothing reaches, exit 0.
    assert main(["audit", "--config", str(config), "--format", "json", "--output", str(out)]) == 0


def test_fail_on_threshold_not_reached_exits_zero(tmp_path: Path) -> None:
    """Evidence whose worst finding is MEDIUM (a NACL without deny rules): HIGH passes the gate, MEDIUM trips it."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "describe-network-acls.json").write_text(json.dumps({"NetworkAcls": [{
        "NetworkAclId": "acl-0a1b2c3d", "VpcId": "vpc-0a1b2c3d", "IsDefault": True,
        "Associations": [{"NetworkAclAssociationId": "aclassoc-1", "NetworkAclId": "acl-0a1b2c3d",
                          "SubnetId": "subnet-0a1b2c3d"}],
        "Entries": [{"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": False,
                     "CidrBlock": "0.0.0.0/0"},
                    {"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": False,
                     "CidrBlock": "0.0.0.0/0"}]}]}))
    out = tmp_path / "r.json"
    assert main(["audit", "--from", str(folder), "--format", "json", "--output", str(out), "--fail-on", "HIGH"]) == 0
    findings = json.loads(out.read_text())["findings"]
    assert [(f["check_id"], f["resource"], f["severity"]) for f in findings] == [
        ("nacl-no-deny", "acl-0a1b2c3d", "MEDIUM")]
    assert main(["audit", "--from", str(folder), "--format", "json", "--output", str(out), "--fail-on", "medium"]) == 1


def test_table_output_shows_dashboard_and_findings(aws: Emulator, creds: None, tmp_path: Path) -> None:
    sg = _open_ssh(aws)
    out = tmp_path / "report.txt"
    assert main(["audit", "--config", str(_scope(tmp_path, aws)), "--output", str(out)]) == 0
    text = out.read_text()
    for row in ("Security Groups", "UFW / iptables", "Attack simulation", "Port exposure to 0.0.0.0/0"):
        assert row in text
    assert sg in text and "CRITICAL" in text and "tcp/22 open to 0.0.0.0/0" in text
    assert "fix:" in text and "verify:" in text
    assert "Not assessed" in text and "ListAnalyzers" in text


@pytest.mark.parametrize(("content", "message"), [
    ("[aws\nregions = 1", "not valid TOML"),
    ("[aws]\nregion = ['us-east-1']\n", "unknown key 'region'"),
    ("[aws]\nregions = 'us-east-1'\n", "regions must be a list"),
    ("[aws]\nexternal_id = 'x'\n", "external_id is set but role_arn is not"),
    ("[gcp]\n", "unknown section or key 'gcp'"),
])
def test_bad_scope_exits_2_naming_the_file(tmp_path: Path, content: str, message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "outsidein.toml"
    path.write_text(content)
    assert main(["audit", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--fail-on", "URGENT"])
    assert exc.value.code == 2
    assert "unknown severity 'URGENT'" in capsys.readouterr().err
    assert main(["audit", "--from", str(tmp_path / "missing.json")]) == 2
    assert main(["audit", "--config", str(tmp_path / "nope.toml")]) == 2
    bad = tmp_path / "snap.json"
    bad.write_text('{"format": "outsidein-snapshot/1",\n "collected_at": ')
    assert main(["audit", "--from", str(bad)]) == 2
    assert f"{bad}: not JSON (line 2" in capsys.readouterr().err


def test_assumes_the_scoped_role_with_external_id(aws: Emulator, creds: None, tmp_path: Path) -> None:
    iam = aws.client("iam")
    trust = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"sts:ExternalId": "audit-2026"}}}
    role = iam.create_role(RoleName="auditor", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [trust]}))
    arn = role["Role"]["Arn"]
    config = _scope(tmp_path, aws, f'role_arn = "{arn}"\nexternal_id = "audit-2026"\n')
    assert main(["collect", "--config", str(config), "--output", str(tmp_path / "snap.json")]) == 0
    snapshot = json.loads((tmp_path / "snap.json").read_text())
    identity = snapshot["aws"]["records"]["global/sts.get_caller_identity"]["data"]
    assert identity["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/auditor/outsidein-audit")


AWS_CLI_COMMANDS = [
    ("ec2", "describe-security-groups"), ("ec2", "describe-network-acls"), ("ec2", "describe-vpcs"),
    ("ec2", "describe-subnets"), ("ec2", "describe-route-tables"), ("ec2", "describe-internet-gateways"),
    ("ec2", "describe-nat-gateways"), ("ec2", "describe-flow-logs"), ("ec2", "describe-network-interfaces"),
    ("ec2", "describe-instances"), ("iam", "get-account-authorization-details"), ("iam", "get-account-summary"),
]


def test_audit_from_a_folder_of_real_aws_cli_outputs(aws: Emulator, creds: None, tmp_path: Path) -> None:
    """An auditor who only has the playbook's `aws ... --output json` files gets the same findings."""
    sg = _open_ssh(aws)
    folder = tmp_path / "evidence"
    folder.mkdir()
    env = {**os.environ, "AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_DEFAULT_REGION": REGION}
    for service, command in AWS_CLI_COMMANDS:
        out = subprocess.run([sys.executable, "-m", "awscli", service, command, "--output", "json"],
                             env=env, capture_output=True, text=True, check=True).stdout
        (folder / f"{command}.json").write_text(out)
    report_path = tmp_path / "r.json"
    assert main(["audit", "--from", str(folder), "--format", "json", "--output", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["regions"] == [REGION]  # read from the availability zones in the files
    findings = {(f["check_id"], f["resource"]) for f in report["findings"]}
    assert ("sg-open-ingress", sg) in findings
    live = aws.audit()
    covered = {"sg-open-ingress", "sg-open-egress", "sg-default-in-use", "nacl-no-deny", "vpc-flow-logs",
               "iam-root-mfa"}
    assert {x for x in findings if x[0] in covered} == {(f.check_id, f.resource) for f in live.findings
                                                       if f.check_id in covered}
    # Files the auditor did not provide make their checks NOT_ASSESSED, naming the missing file.
    reasons = {n["check_id"]: n["reason"] for n in report["not_assessed"]}
    assert "not in evidence folder: list-analyzers.json" in reasons["iam-access-analyzer"]
    assert "not in evidence folder" in reasons["vpc-datastore-public"]


def test_folder_file_with_wrong_shape_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "describe-security-groups.json").write_text(json.dumps([{"ID": "sg-1", "Name": "web"}]))
    assert main(["audit", "--from", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "describe-security-groups.json" in err and "without --query" in err
