"""Secrets in collected files are masked before they are stored: snapshot, report and terminal alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from outsidein.cli import main
from outsidein.redact import mask, redact_text

SECRETS = ("hunter2-very-secret", "S3cr3tP@ssw0rd", "pgpass123", "AKIAABCDEFGHIJKLMNOP", "dXNlcjpwYXNzd29yZA==",
           "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
USER_DATA = f"""#cloud-config
password: {SECRETS[0]}
write_files:
  - path: /etc/app/env
    content: |
      DB_PASSWORD="{SECRETS[1]}"
      DATABASE_URL=postgres://app:{SECRETS[2]}@db.internal:5432/app
      AWS_ACCESS_KEY_ID={SECRETS[3]}
      GITHUB={SECRETS[5]}
runcmd:
  - ufw disable
"""
NGINX_CONF = f"""events {{}}
http {{
    server {{
        listen 8080;
        location / {{
            proxy_set_header Authorization "Basic {SECRETS[4]}";
            proxy_pass http://127.0.0.1:9000;
        }}
    }}
}}
"""


def test_values_are_masked_and_lines_kept() -> None:
    masked = redact_text(USER_DATA)
    assert not [s for s in SECRETS if s in masked]
    assert masked.count("\n") == USER_DATA.count("\n")
    assert mask(SECRETS[0]) in masked and mask(SECRETS[0]).startswith("hunt…[sha256:")
    assert "ufw disable" in masked  # what the audit reads survives


@pytest.mark.parametrize("text", ["password: {{ vault_db_password }}", "token: ${TOKEN}", "secret_file: /etc/x/key",
                                  "password: changeme", "ssl_password_file /etc/nginx/pass;"])
def test_placeholders_and_paths_are_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_no_secret_reaches_the_snapshot_or_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = tmp_path / "web-1"
    host.mkdir()
    (host / "iptables-save.txt").write_text("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text(USER_DATA)
    nginx = tmp_path / "nginx.conf"
    nginx.write_text(NGINX_CONF)
    scope = tmp_path / "outsidein.toml"
    scope.write_text(f'[[hosts]]\nname = "web-1"\nevidence = "{host}"\nprovisioning = ["{user_data}"]\n\n'
                     f'[[nginx]]\nname = "edge"\nconfig = "{nginx}"\nnginx_binary = ""\n')
    snapshot = tmp_path / "snapshot.json"
    assert main(["collect", "--config", str(scope), "--output", str(snapshot)]) == 0
    report = tmp_path / "report.json"
    assert main(["audit", "--from", str(snapshot), "--format", "json", "--output", str(report)]) == 0
    assert main(["audit", "--from", str(snapshot)]) == 0
    outputs = {"snapshot": snapshot.read_text(), "report": report.read_text(), "terminal": capsys.readouterr().out}
    leaks = [(where, s) for where, text in outputs.items() for s in SECRETS if s in text]
    assert not leaks
    assert "user-data.yaml:11" in outputs["report"]  # the `ufw disable` line is still found, at its line
