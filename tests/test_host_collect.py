"""Host collection for real: sshd in a network namespace reached over SSH, probes from outside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from outsidein.evidence import HostEvidence, Record, Snapshot
from outsidein.host.collect import HostCollector, collect_hosts, listening_ports, load_host_folder, probe_tcp
from outsidein.host.commands import COMMANDS
from outsidein.scope import HostScope, ScopeError, parse_scope
from tests.netns import Namespace, needs_root, wait_port

pytestmark = needs_root

DROP_ALL_BUT_SSH = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s {peer}/32 -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -j LOG --log-prefix "oi-drop: "
COMMIT
"""
ACCEPT_ALL = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
"""
LISTENER = "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); " \
           "s.bind(('0.0.0.0', {port})); s.listen(); time.sleep(600)"


@dataclass
class SshHost:
    ns: Namespace
    key: Path
    known_hosts: Path

    def scope(self, **overrides: object) -> HostScope:
        values: dict[str, object] = {"name": "db-1", "address": f"root@{self.ns.address}", "environment": "prod",
                                     "identity_file": self.key, "known_hosts": self.known_hosts,
                                     "probe_address": self.ns.address}
        values.update(overrides)
        return HostScope(**values)  # type: ignore[arg-type]


@pytest.fixture
def ssh_host(tmp_path: Path) -> Iterator[SshHost]:
    """A host in its own namespace running a real sshd (key-only) and a database-like listener on 5432."""
    ns = Namespace.create()
    keys_dir: Path | None = None
    try:
        for name in ("hostkey", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
        # sshd reads authorized_keys as the logging-in user: keep it where every user can read it.
        keys_dir = Path(tempfile.mkdtemp(prefix="oi-keys-"))
        keys_dir.chmod(0o755)
        authorized = keys_dir / "authorized_keys"
        authorized.write_text((tmp_path / "client.pub").read_text())
        authorized.chmod(0o644)
        config = tmp_path / "sshd_config"
        config.write_text("\n".join([
            "Port 22", f"ListenAddress {ns.address}", f"HostKey {tmp_path / 'hostkey'}",
            f"PidFile {tmp_path / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "StrictModes no", "",
        ]))
        Path("/run/sshd").mkdir(exist_ok=True)
        ns.start(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], tmp_path / "sshd.log")
        ns.start([sys.executable, "-c", LISTENER.format(port=5432)], tmp_path / "listener.log")
        wait_port(ns, 22)
        wait_port(ns, 5432)
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(f"{ns.address} {(tmp_path / 'hostkey.pub').read_text()}")
        yield SshHost(ns, tmp_path / "client", known_hosts)
    finally:
        ns.destroy()
        if keys_dir is not None:
            shutil.rmtree(keys_dir, ignore_errors=True)


def test_ssh_collection_reads_the_namespace_firewall_and_sockets(ssh_host: SshHost) -> None:
    ssh_host.ns.iptables_restore(DROP_ALL_BUT_SSH.format(peer=ssh_host.ns.peer))
    evidence = HostCollector(ssh_host.scope()).collect()

    assert evidence.error is None and evidence.origin == "ssh"
    assert set(evidence.commands) == {c.key for c in COMMANDS}
    rules = evidence.commands["iptables-save"]
    assert rules.ok and ":INPUT DROP" in rules.data and f"-s {ssh_host.ns.peer}/32" in rules.data
    assert {22, 5432} <= listening_ports(evidence.commands["ss-tlnp"])
    assert evidence.commands["nft-list-ruleset"].ok
    # Files are read through the same connection; one that does not exist is an absence, not an error.
    assert all(record.ok for record in evidence.files.values())


def test_probe_from_outside_tells_a_drop_policy_from_an_accept_one(ssh_host: SshHost) -> None:
    ns = ssh_host.ns
    ns.iptables_restore(DROP_ALL_BUT_SSH.format(peer=ns.peer))
    dropped = HostCollector(ssh_host.scope()).collect().probes
    assert dropped["tcp/22"].data["state"] == "open"  # allowed from the vantage point's address
    assert dropped["tcp/5432"].data["state"] == "filtered"  # listening, but the DROP policy eats the SYN
    assert dropped["tcp/6379"].data["state"] == "filtered"

    ns.iptables_restore(ACCEPT_ALL)
    accepted = HostCollector(ssh_host.scope()).collect().probes
    assert accepted["tcp/5432"].data["state"] == "open"
    assert accepted["tcp/6379"].data["state"] == "refused"  # reached the host; nothing listens


def test_unknown_host_key_refuses_the_connection(ssh_host: SshHost, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    evidence = HostCollector(ssh_host.scope(known_hosts=empty)).collect()
    assert evidence.error is not None and evidence.error.startswith("unreachable")
    assert "host key verification failed" in evidence.error.lower()
    assert evidence.commands == {}


def test_wrong_host_key_refuses_the_connection(ssh_host: SshHost, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    forged = tmp_path / "forged_known_hosts"
    forged.write_text(f"{ssh_host.ns.address} {(tmp_path / 'other.pub').read_text()}")
    evidence = HostCollector(ssh_host.scope(known_hosts=forged)).collect()
    assert evidence.error is not None and "host key" in evidence.error.lower()


def test_one_unreachable_host_does_not_stop_the_others(ssh_host: SshHost) -> None:
    down = ssh_host.scope(name="gone", address=f"root@{ssh_host.ns.address}:2222", probe_address=None)
    up = ssh_host.scope(probe_address=None)
    gone, alive = collect_hosts([down, up])
    assert gone.name == "gone" and gone.error is not None and "unreachable" in gone.error
    assert alive.error is None and alive.commands["iptables-save"].ok


def test_missing_command_is_recorded_not_raised(ssh_host: SshHost) -> None:
    # A search path without the firewall tools: they are "not found" on this host, and the audit goes on.
    collector = HostCollector(ssh_host.scope(probe_address=None))
    collector.runner.search_path = "/nonexistent"
    evidence = collector.collect()
    assert evidence.error is None
    assert evidence.commands["iptables-save"].error == "command not found on the host: iptables-save"


def test_probe_is_bounded_and_records_unroutable_targets() -> None:
    result = probe_tcp("127.0.0.1", [1])
    assert result["tcp/1"].data == {"address": "127.0.0.1", "port": 1, "open": False, "state": "refused"}


def test_saved_outputs_folder(tmp_path: Path) -> None:
    folder = tmp_path / "web-1"
    (folder / "files/etc/iptables").mkdir(parents=True)
    (folder / "iptables-save.txt").write_text(ACCEPT_ALL)
    (folder / "ss-tlnp.txt").write_text("State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
                                        "LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:((\"sshd\",pid=1,fd=3))\n")
    (folder / "files/etc/iptables/rules.v4").write_text(ACCEPT_ALL)
    provisioning = tmp_path / "cloud-init.yaml"
    provisioning.write_text("runcmd:\n  - ufw disable\n")
    evidence = load_host_folder(HostScope(name="web-1", evidence=folder, environment="prod",
                                          provisioning=(provisioning,)))
    assert evidence.origin == "folder" and evidence.error is None
    assert evidence.commands["iptables-save"].data == ACCEPT_ALL
    assert evidence.commands["nft-list-ruleset"].error == f"not provided: no nft-list-ruleset.txt in {folder}"
    assert evidence.files["/etc/iptables/rules.v4"].data == ACCEPT_ALL
    assert evidence.files["/etc/nftables.conf"] == Record(data=None)  # the folder has files/: absent
    assert evidence.provisioning[str(provisioning)].data.endswith("ufw disable\n")
    # Round trip through a snapshot keeps every record.
    again = HostEvidence.from_json(evidence.to_json(), "test")
    assert again == evidence


def test_snapshot_round_trip_with_hosts(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    host = HostEvidence(name="h", address="local", commands={"iptables-save": Record(data=ACCEPT_ALL)},
                        probes={"tcp/22": Record(data={"address": "10.0.0.1", "port": 22, "open": True,
                                                       "state": "open"})}, ssh_allowed_cidrs=["10.8.0.0/24"])
    snap = Snapshot(collected_at=datetime(2026, 11, 28, tzinfo=UTC), hosts=[host])
    snap.save(tmp_path / "s.json")
    assert Snapshot.load(tmp_path / "s.json").hosts == [host]


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "a"}, "exactly one of address"),
    ({"name": "a", "address": "local", "evidence": "x"}, "exactly one of address"),
    ({"name": "a", "address": "10.0.0.5"}, "user@host"),
    ({"name": "a", "address": "u@h:ssh"}, "port that is not a number"),
    ({"name": "a", "address": "local", "ssh_allowed_cidrs": ["10.0.0.0/33"]}, "not a CIDR"),
    ({"name": "a", "address": "local", "probe_ports": [70000]}, "probe_ports"),
    ({"name": "a", "address": "local", "colour": "red"}, "unknown key 'colour'"),
])
def test_bad_host_scope_names_the_host_and_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ScopeError, match=message):
        parse_scope({"hosts": [entry]})


def test_host_scope_parses_ssh_addresses() -> None:
    scope = parse_scope({"hosts": [{"name": "a", "address": "ops@10.0.0.5:2222"},
                                   {"name": "b", "address": "ops@[fd00::5]:22"},
                                   {"name": "c", "address": "local"}]})
    assert [h.ssh_target for h in scope.hosts] == [("ops", "10.0.0.5", 2222), ("ops", "fd00::5", 22), None]
    with pytest.raises(ScopeError, match="two host entries are named 'a'"):
        parse_scope({"hosts": [{"name": "a", "address": "local"}, {"name": "a", "address": "local"}]})


@pytest.fixture
def unprivileged_user(ssh_host: SshHost) -> Iterator[str]:
    """A throwaway login without sudo rights, allowed in with the same key."""
    name = f"oi{ssh_host.ns.name[-8:]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    subprocess.run(["usermod", "-p", "*", name], check=True)  # no password, but not locked: key login works
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def test_sudo_refused_and_permission_denied_are_recorded(ssh_host: SshHost, unprivileged_user: str) -> None:
    user_at = f"{unprivileged_user}@{ssh_host.ns.address}"
    with_sudo = HostCollector(ssh_host.scope(address=user_at, probe_address=None)).collect()
    assert with_sudo.error is None
    refused = with_sudo.commands["iptables-save"].error or ""
    assert refused.startswith("sudo refused `iptables-save`") and "password is required" in refused
    assert with_sudo.commands["systemctl-is-enabled-ufw"].error != refused  # not privileged: no sudo

    without = HostCollector(ssh_host.scope(address=user_at, probe_address=None, sudo=False)).collect()
    denied = without.commands["iptables-save"].error or ""
    assert "Permission denied" in denied or "must be root" in denied
