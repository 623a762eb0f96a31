"""The reviewed baseline, through the CLI: false positives and accepted risks leave the findings, with their
reason; an expired acceptance is a finding again; a bad baseline is a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from outsidein.cli import main
from outsidein.demo.local_targets import demo_nginx


def _scope(tmp_path: Path, baseline: str | None = None) -> Path:
    config = tmp_path / "outsidein.toml"
    conf = demo_nginx()[0].config
    text = f'[[nginx]]\nname = "edge"\nconfig = "{conf}"\nenvironment = "prod"\nnginx_binary = ""\n'
    if baseline:
        text = f'baseline = "{baseline}"\n' + text
    config.write_text(text)
    return config


def _audit(config: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["audit", "--config", str(config), "--format", "json", "--output", str(out), *extra])
    return code, json.loads(out.read_text())


def test_false_positive_and_accepted_risk_are_set_aside_expired_one_comes_back(tmp_path: Path) -> None:
    config = _scope(tmp_path)
    code, before = _audit(config, tmp_path / "before.json", "--fail-on", "CRITICAL")
    assert code == 1
    criticals = [f for f in before["findings"] if f["severity"] == "CRITICAL"]
    high = next(f for f in before["findings"] if f["severity"] == "HIGH")
    medium = next(f for f in before["findings"] if f["severity"] == "MEDIUM")
    entries = [f'[[finding]]\nfingerprint = "{f["fingerprint"]}"\nstatus = "false_positive"\n'
               f'reason = "reviewed: the location is not reachable"\ncheck_id = "{f["check_id"]}"\n'
               for f in criticals]
    entries.append(f'[[finding]]\nfingerprint = "{high["fingerprint"]}"\nstatus = "accepted"\n'
                   'reason = "compensating control at the load balancer"\nexpires = 2099-01-01\n')
    entries.append(f'[[finding]]\nfingerprint = "{medium["fingerprint"]}"\nstatus = "accepted"\n'
                   'reason = "accepted last year"\nexpires = 2020-01-01\n')
    (tmp_path / "baseline.toml").write_text("\n".join(entries))
    config = _scope(tmp_path, "baseline.toml")

    code, after = _audit(config, tmp_path / "after.json", "--fail-on", "CRITICAL")
    assert code == 0  # the only CRITICAL findings are reviewed false positives
    open_fps = {f["fingerprint"] for f in after["findings"]}
    assert not open_fps & {f["fingerprint"] for f in criticals} and high["fingerprint"] not in open_fps
    assert medium["fingerprint"] in open_fps  # its acceptance expired: a finding again
    suppressed = {s["fingerprint"]: s for s in after["suppressed"]}
    assert set(suppressed) == {f["fingerprint"] for f in criticals} | {high["fingerprint"]}
    assert suppressed[high["fingerprint"]]["baseline_status"] == "accepted"
    assert suppressed[high["fingerprint"]]["baseline_reason"] == "compensating control at the load balancer"
    assert [e["fingerprint"] for e in after["baseline_expired"]] == [medium["fingerprint"]]
    assert len(after["findings"]) == len(before["findings"]) - len(suppressed)
    # the layer no longer counts the suppressed findings
    layer3 = next(layer for layer in after["layers"] if layer["number"] == 3)
    assert layer3["findings"] == len(after["findings"])
    # --baseline on the command line overrides the scope's
    (tmp_path / "empty.toml").write_text("")
    _, plain = _audit(config, tmp_path / "plain.json", "--baseline", str(tmp_path / "empty.toml"))
    assert len(plain["findings"]) == len(before["findings"]) and plain["suppressed"] == []


def test_write_baseline_needs_a_reason_before_it_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _scope(tmp_path)
    baseline = tmp_path / "baseline.toml"
    code, report = _audit(config, tmp_path / "r.json", "--write-baseline", str(baseline))
    assert code == 0
    text = baseline.read_text()
    assert text.count("[[finding]]") == len(report["findings"]) and 'reason = "TODO' in text
    assert main(["audit", "--config", str(config), "--baseline", str(baseline)]) == 2
    assert f"{baseline}: [[finding]] #1: a reason is required" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    ('[[finding]]\nfingerprint = "abc"\nstatus = "ignored"\nreason = "x"\n', "status must be one of"),
    ('[[finding]]\nfingerprint = "abc"\nstatus = "accepted"\nreason = "x"\n', "needs an expires date"),
    ('[[finding]]\nstatus = "false_positive"\nreason = "x"\n', "fingerprint is required"),
    ('[[finding]]\nfingerprint = "abc"\nstatus = "false_positive"\nreason = "x"\nsecret = "y"\n', "unknown key"),
    ('[[finding]\n', "not valid TOML"),
])
def test_bad_baseline_exits_2_naming_the_file(tmp_path: Path, content: str, message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.toml"
    baseline.write_text(content)
    assert main(["audit", "--config", str(_scope(tmp_path)), "--baseline", str(baseline)]) == 2
    err = capsys.readouterr().err
    assert str(baseline) in err and message in err
