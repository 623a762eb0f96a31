"""Layer 2 (host firewall) on real rulesets: each test loads rules into a network namespace with
iptables-restore / nft -f (and real UFW), captures what iptables-save, nft list ruleset, ss -tlnp and
ufw status print there, and audits that evidence. Probes are real TCP connections over a veth pair.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outsidein.audit import evaluate
from outsidein.checks.registry import HOST, all_checks
from outsidein.evidence import HostEvidence, Record, Snapshot
from outsidein.host import firewall as fw
from outsidein.host.collect import load_host_folder, probe_tcp
from outsidein.host.commands import COMMANDS, HOST_PROVISIONING_FILES, PERSISTENCE_FILES
from outsidein.host.facts import HostFacts, parse_host, scan_provisioning
from outsidein.models import Result, Severity, Status
from outsidein.scope import HostScope
from tests.netns import needs_root, require_programs

FIXTURES = Path(__file__).parent / "host"


HOST_CHECKS = sorted(c.meta.id for c in all_checks() if c.source == HOST and c.meta.layer == 2)
PROBE_PORTS = [22, 443, 2222, 5432, 6379]

# A hardened bastion: default deny, SSH from the VPN only (behind a user chain, rate-limited), HTTPS
# rate-limited, drops logged; IPv6 the same without SSH.
HARDENED_V4 = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ssh-admin - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -m conntrack --ctstate INVALID -j DROP
-A INPUT -p tcp -m multiport --dports 22,2222 -m conntrack --ctstate NEW -j ssh-admin
-A INPUT -p tcp -m tcp --dport 443 -m conntrack --ctstate NEW -m limit --limit 50/sec --limit-burst 100 -j ACCEPT
-A INPUT -m limit --limit 5/min -j LOG --log-prefix "fw-drop: "
-A INPUT -j DROP
{ssh_admin}
-A ssh-admin -j RETURN
COMMIT
""".format(ssh_admin="-A ssh-admin -s 10.8.0.0/24 -m hashlimit --hashlimit-upto 4/min --hashlimit-burst 4 "
                     "--hashlimit-mode srcip --hashlimit-name ssh -j ACCEPT")
HARDENED_V6 = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 443 -m conntrack --ctstate NEW -m limit --limit 50/sec --limit-burst 100 -j ACCEPT
-A INPUT -m limit --limit 5/min -j LOG --log-prefix "fw6-drop: "
-A INPUT -j DROP
COMMIT
"""
ACCEPT_ALL = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
"""
DROP_ALL = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -j LOG --log-prefix "drop: "
COMMIT
"""
# The app server of the playbook's horror stories: ACCEPT policy, SSH and everything else open, ping answered.
OPEN_V4 = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m multiport --dports 80,443,8080 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
COMMIT
"""


def _drop_policy(*rules: str, log: bool = True) -> str:
    """A DROP-policy filter table with ``rules`` (and a logged drop) in INPUT."""
    body = "\n".join(rules)
    tail = '-A INPUT -m limit --limit 5/min -j LOG --log-prefix "drop: "\n' if log else ""
    return f"*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n{body}\n{tail}COMMIT\n"


# --------------------------------------------------------------------------------------------- test hosts

_blocks = itertools.count()
LISTENER = """
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
if host == "*" or ":" in host:
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "*" else 1)
    host = "::" if host == "*" else host
else:
    s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen()
time.sleep(300)
"""


def run(argv: Sequence[str], input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, input=input, check=check, timeout=60)


@dataclass
class FwHost:
    """A host as a network namespace (``oi-fw-<random>``), optionally reachable over a veth pair."""

    name: str
    address: str | None = None  # the namespace's address on the veth pair
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="oi-fw-")))

    @classmethod
    def create(cls, veth: bool = False) -> FwHost:
        require_programs("ip", "iptables-restore", "ip6tables-restore", "nft", "ss")
        host = cls(f"oi-fw-{uuid.uuid4().hex[:8]}")
        run(["ip", "netns", "add", host.name])
        try:
            host.exec(["ip", "link", "set", "lo", "up"])
            if veth:
                index = next(_blocks)
                third = ((os.getpid() % 64) * 4 + index // 60) % 256
                base = f"10.251.{third}.{(index % 60) * 4}"
                prefix = base.rsplit(".", 1)[0]
                last = int(base.rsplit(".", 1)[1])
                outside, inside = f"oifw{host.name[-8:]}o", f"oifw{host.name[-8:]}i"
                run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside])
                run(["ip", "link", "set", inside, "netns", host.name])
                run(["ip", "addr", "add", f"{prefix}.{last + 1}/30", "dev", outside])
                run(["ip", "link", "set", outside, "up"])
                host.address = f"{prefix}.{last + 2}"
                host.exec(["ip", "addr", "add", f"{host.address}/30", "dev", inside])
                host.exec(["ip", "link", "set", inside, "up"])
        except BaseException:
            host.destroy()
            raise
        return host

    def exec(self, argv: Sequence[str], input: str | None = None, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.name, *argv], input=input, check=check)

    def iptables(self, rules: str, ipv6: bool = False) -> None:
        self.exec(["ip6tables-restore" if ipv6 else "iptables-restore"], input=rules)

    def nft(self, ruleset: str) -> None:
        self.exec(["nft", "-f", "-"], input=ruleset)

    def listen(self, port: int, host: str = "0.0.0.0") -> None:
        log = (self.tmp / f"listen-{port}.log").open("wb")
        self.processes.append(subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", LISTENER, host, str(port)],
            stdout=log, stderr=subprocess.STDOUT))
        self.wait_port(port)

    def sshd(self, ports: Sequence[int] = (22, 2222)) -> None:
        require_programs("sshd", "ssh-keygen")
        key = self.tmp / "hostkey"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
        Path("/run/sshd").mkdir(exist_ok=True)
        options = [f"-oPort={p}" for p in ports] + [
            "-oListenAddress=0.0.0.0", "-oListenAddress=::", f"-oHostKey={key}", "-oPidFile=none", "-oUsePAM=no"]
        log = (self.tmp / "sshd.log").open("wb")
        self.processes.append(subprocess.Popen(
            ["ip", "netns", "exec", self.name, "/usr/sbin/sshd", "-D", "-e", "-f", "/dev/null", *options],
            stdout=log, stderr=subprocess.STDOUT))
        for port in ports:
            self.wait_port(port)

    def wait_port(self, port: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.exec(["ss", "-Htln", f"sport = :{port}"], check=False).stdout.strip():
                return
            time.sleep(0.05)
        raise TimeoutError(f"nothing listens on {port} in {self.name}")

    def capture(self) -> dict[str, Record]:
        """What the host's read-only commands print (as the collector would record them)."""
        out: dict[str, Record] = {}
        for key, argv in (("iptables-save", ["iptables-save"]), ("ip6tables-save", ["ip6tables-save"]),
                          ("nft-list-ruleset", ["nft", "list", "ruleset"]), ("ss-tlnp", ["ss", "-tlnp"])):
            done = self.exec(argv)
            out[key] = Record(data=done.stdout)
        if shutil.which("ufw"):
            out["ufw-status-verbose"] = Record(data=self.exec(["ufw", "status", "verbose"]).stdout)
        else:
            out["ufw-status-verbose"] = Record(error="command not found on the host: ufw")
        return out

    def probe(self, ports: Sequence[int] = PROBE_PORTS) -> dict[str, Record]:
        assert self.address is not None
        return probe_tcp(self.address, list(ports), timeout=0.5)

    def destroy(self) -> None:
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        run(["ip", "netns", "del", self.name], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def host() -> Iterator[FwHost]:
    ns = FwHost.create()
    try:
        yield ns
    finally:
        ns.destroy()


@pytest.fixture
def reachable_host() -> Iterator[FwHost]:
    ns = FwHost.create(veth=True)
    try:
        yield ns
    finally:
        ns.destroy()


NO_BOOT = {"ufw": "disabled", "nftables": "disabled", "netfilter-persistent": "disabled"}


def evidence(commands: dict[str, Record], *, name: str = "web-1", boot: dict[str, str] | None = None,
             files: dict[str, str | None] | None = None, provisioning: dict[str, str] | None = None,
             probes: dict[str, Record] | None = None, allowed: Sequence[str] = ()) -> HostEvidence:
    """HostEvidence as the local collector records it: command outputs, files (None: absent), probes."""
    cmds = dict(commands)
    for service, state in (boot or NO_BOOT).items():
        key = f"systemctl-is-enabled-{service}"
        if state == "not-found":  # what systemctl says about a unit that is not installed
            cmds[key] = Record(error=f"`systemctl is-enabled {service}` failed: Failed to get unit file state for "
                                     f"{service}.service: No such file or directory")
        else:
            cmds[key] = Record(data=state + "\n")
    all_files: dict[str, Record] = {path: Record(data=None) for path in (*PERSISTENCE_FILES, *HOST_PROVISIONING_FILES)}
    for path, text in (files or {}).items():
        all_files[path] = Record(data=text)
    return HostEvidence(
        name=name, address="local", environment="prod", origin="local", commands=cmds, files=all_files,
        provisioning={path: Record(data=text) for path, text in (provisioning or {}).items()},
        probes=probes or {}, ssh_allowed_cidrs=list(allowed),
    )


def check_results(ev: HostEvidence | HostFacts) -> dict[str, list[Result]]:
    facts = ev if isinstance(ev, HostFacts) else parse_host(ev)
    return {c.meta.id: list(c.run(facts)) for c in all_checks() if c.source == HOST}


def statuses(results: dict[str, list[Result]], check_id: str) -> set[Status]:
    return {r.status for r in results[check_id]}


def fails(results: dict[str, list[Result]], check_id: str) -> dict[str, str]:
    return {r.resource: r.detail for r in results[check_id] if r.status is Status.FAIL}


def details(results: dict[str, list[Result]], check_id: str) -> set[str]:
    return {r.detail for r in results[check_id] if r.status is Status.FAIL}


def assert_pass(results: dict[str, list[Result]], check_id: str) -> None:
    assert statuses(results, check_id) == {Status.PASS}, results[check_id]


def reach(ev: HostEvidence, port: int, family: str = fw.IPV4) -> str:
    """From where tcp/``port`` is accepted, as the evaluator describes it ("" when from nowhere)."""
    pipe = parse_host(ev).pipeline(family)
    assert pipe is not None
    result = pipe.evaluate(pipe.external("tcp", dport=((port, port),)))
    return fw.describe_sources(result.sources(), family) if result.sources() else ""


# ----------------------------------------------------------------------------------- whole-host verdicts


@needs_root
def test_hardened_host_gives_no_findings(reachable_host: FwHost) -> None:
    ns = reachable_host
    ns.iptables(HARDENED_V4)
    ns.iptables(HARDENED_V6, ipv6=True)
    ns.sshd()
    ns.listen(443)
    ns.listen(5432, "127.0.0.1")  # a database on loopback only
    commands = ns.capture()
    saved_v4 = commands["iptables-save"].data  # what `netfilter-persistent save` writes
    saved_v6 = commands["ip6tables-save"].data
    ev = evidence(commands, boot={"ufw": "disabled", "nftables": "disabled", "netfilter-persistent": "enabled"},
                  files={"/etc/iptables/rules.v4": saved_v4, "/etc/iptables/rules.v6": saved_v6},
                  provisioning={str(FIXTURES / "provisioning/hardened.sh"):
                                (FIXTURES / "provisioning/hardened.sh").read_text()},
                  probes=ns.probe(), allowed=["10.8.0.0/24"])
    assert ev.probes["tcp/443"].data["open"] and not ev.probes["tcp/22"].data["open"]

    report = evaluate(Snapshot(collected_at=datetime(2026, 11, 28, tzinfo=UTC), hosts=[ev]))
    layer2 = [f for f in report.findings if f.layer == 2]
    assert layer2 == []
    assert [(c.meta.id, r.reason) for c, r in report.not_assessed if c.meta.layer == 2] == []
    assert {cid for cid in HOST_CHECKS if report.passed[cid] == 1} == set(HOST_CHECKS)
    assert next(layer for layer in report.layers if layer.layer.number == 2).status == "PASS"


@needs_root
def test_open_host_fails_every_baseline_check(reachable_host: FwHost) -> None:
    ns = reachable_host
    ns.iptables(OPEN_V4)
    ns.listen(22)
    ns.listen(5432)
    ns.listen(6379, "*")
    ns.listen(8080)
    provisioning = {str(p): p.read_text() for p in (FIXTURES / "provisioning").iterdir() if p.name != "hardened.sh"}
    ev = evidence(ns.capture(), boot={"ufw": "disabled", "nftables": "disabled", "netfilter-persistent": "not-found"},
                  provisioning=provisioning, probes=ns.probe())
    results = check_results(ev)

    assert fails(results, "host-fw-active") == {
        "web-1": "nothing drops new inbound connections: UFW is inactive; IPv4: iptables filter INPUT policy ACCEPT "
                 "(3 rules)"}
    assert details(results, "host-fw-default-policy") == {
        "IPv4: new TCP and UDP connections to ports no rule names are accepted (accepted by iptables filter INPUT: "
        "policy ACCEPT)",
        "IPv6: new TCP and UDP connections to ports no rule names are accepted (no rules are loaded)"}
    # Without ssh_allowed_cidrs in scope, SSH open to the world is the failure; the probe saw it.
    ssh = fails(results, "host-fw-ssh-restricted")["web-1:22"]
    assert "from any address over IPv4" in ssh and "from any address over IPv6" in ssh
    assert f"observed: a probe from the vantage point connected to {ns.address}:22" in ssh
    exposed = {r.resource: r for r in results["host-fw-exposed-service"]}
    assert exposed["web-1:5432"].severity is Severity.CRITICAL
    assert exposed["web-1:5432"].detail.startswith("5432 (PostgreSQL) is reachable: ")
    assert "on 0.0.0.0:5432 from any address over IPv4; observed" in exposed["web-1:5432"].detail
    assert "on *:6379 from any address over IPv4" in exposed["web-1:6379"].detail  # dual-stack socket
    assert "over IPv6" in exposed["web-1:6379"].detail
    assert exposed["web-1:8080"].severity is Severity.MEDIUM  # not on the dangerous-ports list
    assert set(exposed) == {"web-1:5432", "web-1:6379", "web-1:8080"}  # SSH is judged by its own check
    assert all("so no drop is logged" in d for d in details(results, "host-fw-drop-logging"))
    rate = {r.detail: r.severity for r in results["host-fw-rate-limit"]}
    assert rate["IPv4: a flood of new TCP connections is still accepted on all ports from any address"] \
        is Severity.MEDIUM
    assert details(results, "host-fw-icmp-echo") == {
        "IPv4: echo-request is accepted from any address (accepted by iptables filter INPUT: rule 3 of chain INPUT "
        "(line 8) `-A INPUT -p icmp -j ACCEPT`)",
        "IPv6: echo-request is accepted from any address"}
    assert {r.detail for r in results["host-fw-persistent"]} == {
        "netfilter-persistent is not installed: iptables rules are lost on reboot",
        "/etc/iptables/rules.v4 does not exist"}
    hits = fails(results, "host-fw-provisioning-disables")
    assert hits[f"{FIXTURES}/provisioning/app-user-data.yaml:9"] == "`ufw --force disable` disables UFW"
    assert hits[f"{FIXTURES}/provisioning/site.yml:10"] == "`community.general.ufw: state=disabled` disables UFW"
    assert hits[f"{FIXTURES}/provisioning/packer.pkr.hcl:4"] in (
        "`nft flush ruleset` flushes the nftables ruleset", "`ip6tables -X` deletes ip6tables chains")
    assert all(r.status is Status.FAIL for r in results["host-fw-provisioning-disables"])
    # The probe agrees with the rules: nothing contradicts them.
    assert_pass(results, "host-fw-probe-mismatch")


# ------------------------------------------------------------------------------------------- semantics


@needs_root
@pytest.mark.parametrize(("allowed", "verdict"), [
    (["10.8.0.0/24"], Status.PASS),
    ([], Status.PASS),  # no declared range: a specific CIDR is not "anywhere"
    (["10.9.0.0/24"], Status.FAIL),  # accepted from a range the scope does not allow
])
def test_ssh_accepted_from_the_vpn_only(host: FwHost, allowed: list[str], verdict: Status) -> None:
    host.iptables(_drop_policy("-A INPUT -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT"))
    host.iptables(_drop_policy(), ipv6=True)
    ev = evidence(host.capture(), allowed=allowed)
    assert reach(ev, 22) == "10.8.0.0/24"
    results = check_results(ev)
    assert statuses(results, "host-fw-ssh-restricted") == {verdict}
    if verdict is Status.FAIL:
        assert fails(results, "host-fw-ssh-restricted")["web-1:22"].startswith(
            "SSH port 22 is accepted from 10.8.0.0/24 over IPv4, beyond the allowed 10.9.0.0/24; nothing listens")
    assert_pass(results, "host-fw-default-policy")


@needs_root
def test_accept_behind_a_jump_to_a_user_chain_counts(host: FwHost) -> None:
    host.iptables("""*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:db - [0:0]
:metrics - [0:0]
-A INPUT -p tcp -m tcp --dport 5432 -j db
-A INPUT -p tcp -m tcp --dport 9100 -g metrics
-A INPUT -p tcp -m tcp --dport 9100 -j ACCEPT
-A db -s 10.0.0.0/8 -j ACCEPT
-A db -j RETURN
-A metrics -s 10.0.0.0/8 -j ACCEPT
COMMIT
""")
    host.iptables(_drop_policy(), ipv6=True)
    host.listen(5432)
    host.listen(9100)
    ev = evidence(host.capture())
    # RETURN goes back to INPUT (then the policy); the goto never comes back, so the later ACCEPT is dead.
    assert reach(ev, 5432) == "10.0.0.0/8"
    assert reach(ev, 9100) == "10.0.0.0/8"
    assert_pass(check_results(ev), "host-fw-exposed-service")

    host.iptables("""*filter
:INPUT DROP [0:0]
:db - [0:0]
-A INPUT -p tcp -m tcp --dport 5432 -j db
-A db -j ACCEPT
COMMIT
""")
    exposed = fails(check_results(evidence(host.capture())), "host-fw-exposed-service")
    assert list(exposed) == ["web-1:5432"]
    assert "rules (not probed)" in exposed["web-1:5432"]


@needs_root
def test_established_only_accept_does_not_open_ssh(host: FwHost) -> None:
    host.iptables(_drop_policy(
        "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -p tcp -m tcp --dport 22 -m state --state ESTABLISHED -j ACCEPT",
        "-A INPUT -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT",
        "-A INPUT -p tcp -m tcp --dport 81 -m conntrack ! --ctstate NEW -j ACCEPT"))
    host.iptables(_drop_policy(), ipv6=True)
    ev = evidence(host.capture())
    assert reach(ev, 22) == "" and reach(ev, 81) == ""
    assert reach(ev, 80) == "any address"  # NEW is in the list
    assert_pass(check_results(ev), "host-fw-ssh-restricted")


@needs_root
def test_loopback_accept_opens_nothing_outside(host: FwHost) -> None:
    host.iptables(_drop_policy("-A INPUT -i lo -j ACCEPT", "-A INPUT -i lo -p tcp -m tcp --dport 5432 -j ACCEPT"))
    host.iptables(_drop_policy("-A INPUT -i lo -j ACCEPT"), ipv6=True)
    host.listen(5432)
    host.listen(22)
    results = check_results(evidence(host.capture()))
    for check_id in ("host-fw-exposed-service", "host-fw-ssh-restricted", "host-fw-default-policy",
                     "host-fw-active", "host-fw-drop-logging", "host-fw-rate-limit", "host-fw-icmp-echo"):
        assert_pass(results, check_id)


@needs_root
def test_negated_sources(host: FwHost) -> None:
    host.iptables(_drop_policy(
        "-A INPUT ! -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -j DROP",
        "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A INPUT ! -s 10.0.0.0/8 -p tcp -m tcp --dport 5432 -j ACCEPT"))
    host.iptables(_drop_policy(), ipv6=True)
    host.listen(5432)
    ev = evidence(host.capture(), allowed=["10.8.0.0/24"])
    assert reach(ev, 22) == "10.8.0.0/24"
    assert reach(ev, 5432) == "any address except 10.0.0.0/8"
    results = check_results(ev)
    assert_pass(results, "host-fw-ssh-restricted")
    assert "from any address except 10.0.0.0/8 over IPv4" in fails(results, "host-fw-exposed-service")["web-1:5432"]


@needs_root
def test_multiport_lists_and_ranges(host: FwHost) -> None:
    host.iptables(_drop_policy("-A INPUT -p tcp -m multiport --dports 5000:5500,6379 -j ACCEPT",
                               "-A INPUT -p tcp -m tcp --dport 9000:9100 -s 192.168.0.0/16 -j ACCEPT"))
    host.iptables(_drop_policy(), ipv6=True)
    for port in (5432, 5600, 6379, 9090):
        host.listen(port)
    ev = evidence(host.capture())
    assert [reach(ev, p) for p in (5000, 5432, 5500, 5501, 6379, 9090)] == [
        "any address", "any address", "any address", "", "any address", "192.168.0.0/16"]
    assert set(fails(check_results(ev), "host-fw-exposed-service")) == {"web-1:5432", "web-1:6379"}


NFT_NATIVE = """
table inet fw {
  set admins { type ipv4_addr; flags interval; elements = { 10.8.0.0/24, 192.168.50.0/24 } }
  set blocked { type ipv4_addr; flags dynamic, timeout; timeout 1m; }
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state vmap { established : accept, related : accept, invalid : drop }
    ip saddr @blocked drop
    tcp dport 22 ip saddr @admins ct state new limit rate 4/minute accept
    tcp dport { 443, 6000-6100 } add @blocked { ip saddr limit rate over 20/second } drop
    tcp dport { 443, 6000-6100 } accept
    tcp dport vmap { 3000 : jump grafana, 5432 : drop }
    ip6 saddr 2001:db8::/32 tcp dport 9090 accept
    limit rate 5/minute log prefix "nft-drop: "
  }
  chain grafana {
    ip saddr 10.0.0.0/8 accept
    return
  }
}
"""


@needs_root
def test_nft_sets_ranges_vmaps_and_user_chains(host: FwHost) -> None:
    host.nft(NFT_NATIVE)
    for port in (22, 3000, 5432, 6050, 9090):
        host.listen(port, "*")
    commands = host.capture()
    assert commands["iptables-save"].data.strip() == ""  # no iptables table: only native nftables rules
    ev = evidence(commands, boot={"ufw": "disabled", "nftables": "enabled", "netfilter-persistent": "not-found"},
                  files={"/etc/nftables.conf": "#!/usr/sbin/nft -f\nflush ruleset\n" + NFT_NATIVE},
                  allowed=["10.8.0.0/24", "192.168.50.0/24"])
    assert [reach(ev, p) for p in (22, 443, 6000, 6101, 3000, 5432, 9090)] == [
        "10.8.0.0/24, 192.168.50.0/24", "any address", "any address", "", "10.0.0.0/8", "", ""]
    assert reach(ev, 9090, fw.IPV6) == "2001:db8::/32"
    results = check_results(ev)
    for check_id in ("host-fw-ssh-restricted", "host-fw-default-policy", "host-fw-drop-logging",
                     "host-fw-rate-limit", "host-fw-persistent", "host-fw-active", "host-fw-icmp-echo"):
        assert_pass(results, check_id)
    # 6000-6100 is open to anywhere (rate-limited by the dynamic set): the listener on 6050 is exposed.
    assert list(fails(results, "host-fw-exposed-service")) == ["web-1:6050"]


@needs_root
def test_every_base_chain_on_the_input_hook_must_accept(host: FwHost) -> None:
    # iptables (the nf_tables backend) drops by default; a native nft table with policy accept and an
    # accept for 5432 does not open it: a packet must pass both base chains.
    host.iptables(_drop_policy("-A INPUT -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT"))
    host.iptables(_drop_policy(), ipv6=True)
    host.nft("table inet extra {\n chain input {\n type filter hook input priority 10; policy accept;\n"
             " tcp dport 5432 accept\n }\n}\n")
    host.listen(5432)
    ev = evidence(host.capture())
    facts = parse_host(ev)
    assert facts.ipv4 is not None
    assert [s.label for s in facts.ipv4.stages] == ["iptables filter INPUT", "nft inet extra input"]
    assert reach(ev, 5432) == "" and reach(ev, 22) == "10.8.0.0/24"
    results = check_results(ev)
    assert_pass(results, "host-fw-exposed-service")
    assert_pass(results, "host-fw-default-policy")

    # The other way round: iptables accepts everything, the nft chain drops all but 443.
    host.exec(["nft", "flush", "ruleset"])
    host.iptables(ACCEPT_ALL)
    host.iptables(ACCEPT_ALL, ipv6=True)
    host.nft("table inet fw {\n chain input {\n type filter hook input priority 0; policy drop;\n"
             " tcp dport 443 accept\n log prefix \"drop: \"\n }\n}\n")
    ev = evidence(host.capture())
    assert reach(ev, 5432) == "" and reach(ev, 443) == "any address"
    results = check_results(ev)
    assert_pass(results, "host-fw-exposed-service")
    assert_pass(results, "host-fw-default-policy")


@needs_root
def test_ipv6_left_open_while_ipv4_is_restricted(host: FwHost) -> None:
    host.iptables(_drop_policy("-A INPUT -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT"))
    host.sshd(ports=(22,))
    commands = host.capture()
    assert commands["ip6tables-save"].data.strip() == ""  # nothing loaded for IPv6
    results = check_results(evidence(commands, allowed=["10.8.0.0/24"]))
    ssh = fails(results, "host-fw-ssh-restricted")["web-1:22"]
    assert ssh.startswith("SSH port 22 is accepted from any address over IPv6, beyond the allowed 10.8.0.0/24; "
                          "sshd listens on 0.0.0.0:22, [::]:22")
    assert "over IPv4" not in ssh
    assert fails(results, "host-fw-default-policy") == {
        "web-1": "IPv6: new TCP and UDP connections to ports no rule names are accepted (no rules are loaded)"}


@needs_root
def test_effective_default_deny_and_drop_logging(host: FwHost) -> None:
    # ACCEPT policy with a final catch-all DROP is default-deny by effect (documented choice) ...
    host.iptables("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n"
                  "-A INPUT -p tcp -m tcp --dport 443 -m limit --limit 20/sec -j ACCEPT\n"
                  "-A INPUT -j LOG --log-prefix \"drop: \"\n-A INPUT -j DROP\nCOMMIT\n")
    host.iptables(_drop_policy(), ipv6=True)
    results = check_results(evidence(host.capture()))
    assert_pass(results, "host-fw-default-policy")
    assert_pass(results, "host-fw-drop-logging")

    # ... a DROP policy behind an accept-everything rule is not; a silent DROP policy is not logged.
    host.iptables(_drop_policy("-A INPUT -p udp -j ACCEPT", log=False))
    results = check_results(evidence(host.capture()))
    assert fails(results, "host-fw-default-policy")["web-1"].startswith(
        "IPv4: new UDP connections to ports no rule names are accepted (accepted by iptables filter INPUT: rule 1")
    assert details(results, "host-fw-drop-logging") == {
        "IPv4: iptables filter INPUT: policy DROP drops unmatched traffic without logging it first",
        "IPv4: unmatched inbound UDP traffic is accepted, so no drop is logged (see host-fw-default-policy)"}


@needs_root
def test_rate_limit_severity_follows_who_can_reach_the_port(host: FwHost) -> None:
    host.iptables(_drop_policy("-A INPUT -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT"))
    host.iptables(_drop_policy(), ipv6=True)
    low = [r for r in check_results(evidence(host.capture()))["host-fw-rate-limit"]]
    assert [(r.severity, r.detail) for r in low] == [
        (Severity.LOW, "IPv4: a flood of new TCP connections is still accepted on 22 from 10.8.0.0/24")]

    host.iptables(_drop_policy("-A INPUT -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -m recent --set --name ssh",
                               "-A INPUT -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -m recent --update --seconds 60 "
                               "--hitcount 5 --name ssh -j DROP",
                               "-A INPUT -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT",
                               "-A INPUT -p tcp -m tcp --dport 443 -j ACCEPT"))
    medium = check_results(evidence(host.capture()))["host-fw-rate-limit"]
    assert [(r.severity, r.detail) for r in medium] == [
        (Severity.MEDIUM, "IPv4: a flood of new TCP connections is still accepted on 443 from any address")]


@needs_root
def test_icmp_echo_only_from_monitoring_passes(host: FwHost) -> None:
    host.iptables(_drop_policy("-A INPUT -s 10.20.0.0/16 -p icmp -m icmp --icmp-type echo-request -j ACCEPT",
                               "-A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT"))
    host.iptables(_drop_policy("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT"), ipv6=True)
    assert_pass(check_results(evidence(host.capture())), "host-fw-icmp-echo")


@needs_root
def test_unknown_matches_are_never_read_as_closed(host: FwHost) -> None:
    # A time window on the SSH accept: outsidein does not evaluate it, so it cannot say SSH is closed.
    host.iptables(_drop_policy("-A INPUT -p tcp -m tcp --dport 22 -m time --timestart 09:00 --timestop 17:00 "
                               "-j ACCEPT"))
    host.iptables(_drop_policy(), ipv6=True)
    results = check_results(evidence(host.capture()))
    (ssh,) = results["host-fw-ssh-restricted"]
    assert ssh.status is Status.NOT_ASSESSED and ssh.resource == "web-1:22"
    assert "-m time --timestart 09:00:00 --timestop 17:00:00" in ssh.reason

    # An unknown DROP in front of accept-everything: open unless it matches, and the detail says so.
    host.iptables("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m string --string evil --algo bm -j DROP\n"
                  "-A INPUT -j ACCEPT\nCOMMIT\n")
    default = fails(check_results(evidence(host.capture())), "host-fw-default-policy")["web-1"]
    assert default.startswith("IPv4: new TCP and UDP connections to ports no rule names are accepted")
    exposed_ssh = fails(check_results(evidence(host.capture())), "host-fw-ssh-restricted")["web-1:22"]
    assert exposed_ssh.startswith("SSH port 22 is accepted from any address over IPv4 (unless rule 1 of chain INPUT "
                                  "(line 6): -m string --string evil --algo bm matches: not evaluated)")


# ----------------------------------------------------------------------------------------------- UFW

UFW_SCRIPT = """set -e
mount --bind {tmp}/ufw /etc/ufw
mount --bind {tmp}/default-ufw /etc/default/ufw
{commands}
echo '=====ufw-status-verbose'; ufw status verbose
echo '=====iptables-save'; iptables-save
echo '=====ip6tables-save'; ip6tables-save
echo '=====nft-list-ruleset'; nft list ruleset
echo '=====ss-tlnp'; ss -tlnp
echo '=====ufw.conf'; cat /etc/ufw/ufw.conf
"""


def ufw_capture(host: FwHost, *commands: str) -> tuple[dict[str, Record], str]:
    """Run real ufw commands in the namespace against a private copy of /etc/ufw (a private mount
    namespace: the machine's own UFW configuration and sysctls are untouched) and capture the outputs."""
    require_programs("ufw")
    shutil.copytree("/etc/ufw", host.tmp / "ufw", dirs_exist_ok=True)
    defaults = Path("/etc/default/ufw").read_text().splitlines()
    (host.tmp / "empty.conf").write_text("")
    (host.tmp / "default-ufw").write_text("\n".join(
        f"IPT_SYSCTL={host.tmp / 'empty.conf'}" if line.startswith("IPT_SYSCTL=") else line for line in defaults))
    script = UFW_SCRIPT.format(tmp=host.tmp, commands="\n".join(f"ufw {c} >/dev/null" for c in commands))
    out = host.exec(["sh", "-c", script]).stdout
    parts = dict(part.split("\n", 1) for part in out.split("=====")[1:])
    conf = parts.pop("ufw.conf")
    return {key: Record(data=text) for key, text in parts.items()}, conf


@needs_root
def test_real_ufw_default_deny_with_limits(host: FwHost) -> None:
    commands, conf = ufw_capture(host, "default deny incoming", "limit from 10.8.0.0/24 to any port 22 proto tcp",
                                 "limit 443/tcp", "logging on", "--force enable")
    assert "ENABLED=yes" in conf
    assert commands["ufw-status-verbose"].data.startswith("Status: active\nLogging: on (low)")
    ev = evidence(commands, boot={"ufw": "enabled", "nftables": "disabled", "netfilter-persistent": "not-found"},
                  files={"/etc/ufw/ufw.conf": conf}, allowed=["10.8.0.0/24"])
    facts = parse_host(ev)
    assert facts.ufw is not None and facts.ufw.active and facts.ufw.default_incoming == "deny"
    assert [(r.to, r.action, r.source) for r in facts.ufw.rules][:2] == [
        ("22/tcp", "LIMIT IN", "10.8.0.0/24"), ("443/tcp", "LIMIT IN", "Anywhere")]
    assert reach(ev, 22) == "10.8.0.0/24" and reach(ev, 443) == "any address" and reach(ev, 5432) == ""
    assert reach(ev, 443, fw.IPV6) == "any address" and reach(ev, 22, fw.IPV6) == ""
    results = check_results(ev)
    for check_id in ("host-fw-active", "host-fw-default-policy", "host-fw-ssh-restricted", "host-fw-drop-logging",
                     "host-fw-rate-limit", "host-fw-persistent", "host-fw-exposed-service"):
        assert_pass(results, check_id)
    # UFW's stock before.rules accept echo-request from anywhere (IPv4 and IPv6).
    assert {r.detail.split(":")[0] for r in results["host-fw-icmp-echo"]} == {"IPv4", "IPv6"}


@needs_root
def test_real_ufw_logging_off_and_not_enabled_at_boot(host: FwHost) -> None:
    commands, conf = ufw_capture(host, "allow from 10.8.0.0/24 to any port 22 proto tcp", "logging off",
                                 "--force enable")
    ev = evidence(commands, boot={"ufw": "disabled", "nftables": "disabled", "netfilter-persistent": "not-found"},
                  files={"/etc/ufw/ufw.conf": conf.replace("ENABLED=yes", "ENABLED=no")})
    results = check_results(ev)
    logging = fails(results, "host-fw-drop-logging")["web-1"]
    assert logging.endswith("drops unmatched traffic without logging it first (UFW logging is off)")
    assert {r.detail for r in results["host-fw-persistent"]} == {
        "UFW is active but ufw.service is disabled at boot",
        "/etc/ufw/ufw.conf has ENABLED=no: UFW will not start at boot"}
    assert [(r.severity, r.detail) for r in results["host-fw-rate-limit"]] == [
        (Severity.LOW, "IPv4: a flood of new TCP connections is still accepted on 22 from 10.8.0.0/24")]

    # ufw disabled: nothing filters any more.
    commands, conf = ufw_capture(host, "disable")
    results = check_results(evidence(commands, files={"/etc/ufw/ufw.conf": conf}))
    assert fails(results, "host-fw-active")["web-1"].startswith("nothing drops new inbound connections: "
                                                                "UFW is inactive")


# ------------------------------------------------------------------------------------------- persistence


@needs_root
def test_persistence_compares_saved_and_live_rules(host: FwHost) -> None:
    host.iptables(HARDENED_V4)
    host.iptables(HARDENED_V6, ipv6=True)
    commands = host.capture()
    boot = {"ufw": "disabled", "nftables": "disabled", "netfilter-persistent": "enabled"}
    saved = {"/etc/iptables/rules.v4": HARDENED_V4, "/etc/iptables/rules.v6": HARDENED_V6}  # hand-written form
    assert_pass(check_results(evidence(commands, boot=boot, files=saved)), "host-fw-persistent")

    # A rule added live and never saved is lost at the next boot.
    host.exec(["iptables", "-I", "INPUT", "4", "-p", "tcp", "--dport", "5432", "-j", "ACCEPT"])
    results = check_results(evidence(host.capture(), boot=boot, files=saved))
    assert fails(results, "host-fw-persistent") == {"web-1": (
        "/etc/iptables/rules.v4 differs from the live rules: filter table chain INPUT: live rule 4 "
        "`-A INPUT -p tcp -m tcp --dport 5432 -j ACCEPT` is not saved there")}
    # Not enabled at boot, and no saved IPv6 rules.
    results = check_results(evidence(commands, boot=NO_BOOT, files={"/etc/iptables/rules.v4": HARDENED_V4}))
    assert {r.detail for r in results["host-fw-persistent"]} == {
        "netfilter-persistent is disabled at boot: iptables rules are lost on reboot",
        "/etc/iptables/rules.v6 does not exist"}


@needs_root
def test_nftables_persistence(host: FwHost) -> None:
    host.nft(NFT_NATIVE)
    commands = host.capture()
    boot = {"ufw": "disabled", "nftables": "enabled", "netfilter-persistent": "not-found"}
    changed = NFT_NATIVE.replace("tcp dport { 443, 6000-6100 } accept", "tcp dport 443 accept")
    results = check_results(evidence(commands, boot=boot, files={"/etc/nftables.conf": changed}))
    assert fails(results, "host-fw-persistent")["web-1"].startswith(
        "/etc/nftables.conf differs from the live ruleset: nft table inet fw chain input: live rule 6 ")
    results = check_results(evidence(commands, boot={**boot, "nftables": "disabled"}))
    assert {r.detail for r in results["host-fw-persistent"]} == {
        "nftables.service is disabled at boot: the nftables ruleset is lost on reboot",
        "/etc/nftables.conf does not exist"}


# ------------------------------------------------------------------------------------------------ probes


@needs_root
def test_probe_contradicting_the_rules(reachable_host: FwHost) -> None:
    ns = reachable_host
    ns.listen(5432)
    # The rules read said "drop", but what filters the host now lets the probe in.
    ns.iptables(HARDENED_V4)
    ns.iptables(HARDENED_V6, ipv6=True)
    stale = ns.capture()
    ns.iptables(ACCEPT_ALL)
    results = check_results(evidence(stale, probes=ns.probe()))
    mismatch = {r.resource: (r.severity, r.detail) for r in results["host-fw-probe-mismatch"]}
    assert mismatch["web-1:5432"][0] is Severity.HIGH
    assert mismatch["web-1:5432"][1].startswith("the rules drop tcp/5432 from every source (iptables filter INPUT: ")
    assert mismatch["web-1:5432"][1].endswith(f"yet a probe from the vantage point connected to {ns.address}:5432")

    # The rules read said "open" to a listening database, but the probe gets no answer.
    ns.iptables(ACCEPT_ALL)
    opened = ns.capture()
    ns.iptables(DROP_ALL)
    results = check_results(evidence(opened, probes=ns.probe()))
    mismatch = {r.resource: (r.severity, r.detail) for r in results["host-fw-probe-mismatch"]}
    process = Path(sys.executable).name  # what ss shows for the listener
    assert mismatch == {"web-1:5432": (Severity.LOW, (
        f"the rules accept tcp/5432 from any address and {process} listens on 0.0.0.0:5432, yet the probe to "
        f"{ns.address}:5432 was filtered (something else filters it)"))}
    exposed = fails(results, "host-fw-exposed-service")["web-1:5432"]
    assert exposed.endswith(f"inferred from the rules; the probe to {ns.address}:5432 was filtered "
                            f"(see host-fw-probe-mismatch)")
    # Without probes the check has nothing to compare: not assessed, never PASS.
    (result,) = check_results(evidence(opened))["host-fw-probe-mismatch"]
    assert result.status is Status.NOT_ASSESSED and "no TCP probe" in result.reason


# ---------------------------------------------------------------------------------------- missing evidence


def test_unreachable_host_is_not_assessed_everywhere() -> None:
    ev = HostEvidence(name="db-1", address="root@10.0.0.9", environment="prod", origin="ssh",
                      error="unreachable: ssh root@10.0.0.9: connect to host 10.0.0.9 port 22: No route to host")
    facts = parse_host(ev)
    assert all(reason == ev.error for reason in facts.missing.values())
    assert set(facts.missing) >= {c.key for c in COMMANDS} | set(PERSISTENCE_FILES)
    results = check_results(facts)
    assert {cid: statuses(results, cid) for cid in HOST_CHECKS} == {cid: {Status.NOT_ASSESSED} for cid in HOST_CHECKS}
    assert all(r.reason == ev.error for rs in results.values() for r in rs)


@needs_root
def test_missing_nft_command_versus_nft_refused(host: FwHost) -> None:
    host.iptables(HARDENED_V4)
    host.iptables(HARDENED_V6, ipv6=True)
    commands = host.capture()
    # nft not installed: no native nftables rules can exist; iptables evidence suffices.
    commands["nft-list-ruleset"] = Record(error="command not found on the host: nft")
    results = check_results(evidence(commands, allowed=["10.8.0.0/24"]))
    for check_id in ("host-fw-default-policy", "host-fw-ssh-restricted", "host-fw-drop-logging"):
        assert_pass(results, check_id)
    # nft refused by sudo: native rules could drop or (with an accept policy) change nothing — unknown.
    commands["nft-list-ruleset"] = Record(error="sudo refused `nft list ruleset`: sudo: a password is required")
    results = check_results(evidence(commands, allowed=["10.8.0.0/24"]))
    needs_rules = {"host-fw-active", "host-fw-default-policy", "host-fw-ssh-restricted", "host-fw-exposed-service",
                   "host-fw-drop-logging", "host-fw-rate-limit", "host-fw-icmp-echo", "host-fw-persistent",
                   "host-fw-probe-mismatch"}
    for check_id in needs_rules:
        (result,) = results[check_id]
        assert result.status is Status.NOT_ASSESSED, check_id
        assert "sudo: a password is required" in result.reason or check_id == "host-fw-probe-mismatch"
    assert statuses(results, "host-fw-provisioning-disables") == {Status.NOT_ASSESSED}  # no files in scope


@needs_root
def test_ipv6_unknown_fails_on_ipv4_alone_or_is_not_assessed(host: FwHost) -> None:
    host.iptables(OPEN_V4)
    commands = host.capture()
    commands["ip6tables-save"] = Record(error="sudo refused `ip6tables-save`: sudo: a password is required")
    commands["nft-list-ruleset"] = Record(error="command not found on the host: nft")
    results = check_results(evidence(commands))
    assert statuses(results, "host-fw-default-policy") == {Status.FAIL}  # proven by IPv4
    host.iptables(HARDENED_V4)
    commands = {**host.capture(), "ip6tables-save": commands["ip6tables-save"],
                "nft-list-ruleset": commands["nft-list-ruleset"]}
    (result,) = check_results(evidence(commands))["host-fw-default-policy"]
    assert result.status is Status.NOT_ASSESSED
    assert result.reason == "IPv6 rules unknown: ip6tables-save: sudo refused `ip6tables-save`: sudo: a password " \
                            "is required"


def test_unparsable_output_names_the_line() -> None:
    ev = evidence({"iptables-save": Record(data="*filter\n:INPUT DROP [0:0]\nthis is not a rule\nCOMMIT\n"),
                   "ip6tables-save": Record(data=""), "nft-list-ruleset": Record(data="table inet x {\n"),
                   "ss-tlnp": Record(data={"not": "text"}), "ufw-status-verbose": Record(data="Status: inactive\n")})
    facts = parse_host(ev)
    assert facts.missing["iptables-save"] == ("iptables-save output not parsable: line 3: `this is not a rule` is "
                                              "not an iptables-save line")
    assert facts.missing["nft-list-ruleset"].startswith("nft-list-ruleset output not parsable: line 1: a `{` is "
                                                        "never closed")
    assert facts.missing["ss-tlnp"] == "ss-tlnp: the evidence is not text"
    (result,) = check_results(facts)["host-fw-default-policy"]
    assert result.status is Status.NOT_ASSESSED and "line 3" in result.reason


# -------------------------------------------------------------------------------------- saved outputs


@needs_root
def test_saved_output_folder_as_an_auditor_keeps_it(host: FwHost, tmp_path: Path) -> None:
    host.iptables(_drop_policy("-A INPUT -i lo -j ACCEPT",
                               "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                               "-A INPUT -s 10.8.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT",
                               "-A INPUT -p tcp -m tcp --dport 5432 -j ACCEPT"))
    host.listen(5432)
    commands = host.capture()
    folder = tmp_path / "db-1"
    folder.mkdir()
    # The playbook's `iptables-save | grep -v "^#"`: no header saying which backend wrote it.
    saved = "\n".join(line for line in commands["iptables-save"].data.splitlines() if not line.startswith("#"))
    (folder / "iptables-save.txt").write_text(saved + "\n")
    (folder / "nft-list-ruleset.txt").write_text(commands["nft-list-ruleset"].data)
    (folder / "ss-tlnp.txt").write_text(commands["ss-tlnp"].data)
    (folder / "ufw-status-verbose.txt").write_text(commands["ufw-status-verbose"].data or "Status: inactive\n")
    ev = load_host_folder(HostScope(name="db-1", evidence=folder, environment="prod",
                                    ssh_allowed_cidrs=("10.8.0.0/24",)))
    facts = parse_host(ev)
    # No ip6tables-save.txt: the IPv6 rules come from the nft output (iptables-nft shows them there).
    assert facts.ipv4 is not None and [s.label for s in facts.ipv4.stages] == ["iptables filter INPUT"]
    assert facts.ipv6 is not None and facts.ipv6_missing is None
    results = check_results(facts)
    assert fails(results, "host-fw-exposed-service")["db-1:5432"].startswith(
        "5432 (PostgreSQL) is reachable: ") and "over IPv4" in fails(results, "host-fw-exposed-service")["db-1:5432"]
    # SSH is restricted over IPv4, but IPv6 has no rules at all.
    assert fails(results, "host-fw-ssh-restricted")["db-1:22"].startswith(
        "SSH port 22 is accepted from any address over IPv6, beyond the allowed 10.8.0.0/24")
    # IPv6 has no rules at all here (nothing loaded): default deny fails for IPv6 only.
    assert fails(results, "host-fw-default-policy") == {
        "db-1": "IPv6: new TCP and UDP connections to ports no rule names are accepted (no rules are loaded)"}
    (persist,) = results["host-fw-persistent"]
    assert persist.status is Status.NOT_ASSESSED and "systemctl-is-enabled-netfilter-persistent.txt" in persist.reason


# -------------------------------------------------------------------------------------------- provisioning


def test_provisioning_scan_finds_disabling_lines_only() -> None:
    found = {(Path(h.path).name, h.line, h.text, h.what) for p in sorted((FIXTURES / "provisioning").iterdir())
             for h in scan_provisioning(str(p), p.read_text())}
    assert found == {
        ("app-user-data.yaml", 9, "ufw --force disable", "disables UFW"),
        ("app-user-data.yaml", 10, "systemctl disable --now netfilter-persistent.service",
         "disables netfilter-persistent"),
        ("packer.pkr.hcl", 4, "nft flush ruleset", "flushes the nftables ruleset"),
        ("packer.pkr.hcl", 4, "ip6tables -X", "deletes ip6tables chains"),
        ("site.yml", 7, "iptables -F", "flushes the iptables rules"),
        ("site.yml", 7, "iptables -P INPUT ACCEPT", "sets the INPUT policy to ACCEPT"),
        ("site.yml", 10, "community.general.ufw: state=disabled", "disables UFW"),
        ("site.yml", 14, "ansible.builtin.systemd: name=ufw state=stopped enabled=false", "stops ufw"),
        ("site.yml", 20, "ansible.builtin.iptables: flush=true", "flushes the iptables rules"),
    }


def test_provisioning_check_resources_and_unreadable_files() -> None:
    base = {"iptables-save": Record(data=ACCEPT_ALL), "ip6tables-save": Record(data=""),
            "nft-list-ruleset": Record(error="command not found on the host: nft"),
            "ss-tlnp": Record(data=""), "ufw-status-verbose": Record(data="Status: inactive\n")}
    clean = evidence(base, provisioning={"/srv/ok.sh": "ufw enable\n"})
    assert_pass(check_results(clean), "host-fw-provisioning-disables")
    bad = evidence(base, provisioning={"/srv/ok.sh": "ufw enable\n"},
                   files={"/var/lib/cloud/instance/user-data.txt": "#!/bin/sh\nsystemctl mask ufw\n"})
    assert fails(check_results(bad), "host-fw-provisioning-disables") == {
        "web-1:/var/lib/cloud/instance/user-data.txt:2": "`systemctl mask ufw` masks ufw"}
    unreadable = evidence(base)
    unreadable.provisioning["/srv/gone.yml"] = Record(error="/srv/gone.yml: no such file or folder")
    (result,) = check_results(unreadable)["host-fw-provisioning-disables"]
    assert result.status is Status.NOT_ASSESSED and result.reason == "/srv/gone.yml: no such file or folder"


# ------------------------------------------------------------------------------------ parsers, offline


def test_nft_parser_reads_what_nft_prints_for_iptables_translations() -> None:
    text = (FIXTURES / "nft-iptables-translation.txt").read_text()
    rules = fw.parse_nft(text)
    chain = rules.tables["ip filter"].chains["INPUT"]
    assert (chain.hook, chain.priority, chain.policy) == ("input", 0, "drop")
    pipe = fw.build_pipeline(fw.IPV4, None, rules)
    result = pipe.evaluate(pipe.external("tcp", dport=((22, 22),)))
    assert fw.describe_sources(result.sources(), fw.IPV4) == "10.8.0.0/24"
    assert not result.uncertain
    # `xt match recent` (no nft equivalent) is unknown: the 443 accept after it is uncertain, not closed.
    result = pipe.evaluate(pipe.external("tcp", dport=((8443, 8443),)))
    assert result.uncertain and "xt match recent" in result.unknowns()[0]


def test_ss_parser_reads_every_address_form() -> None:
    text = """State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process
LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*     users:(("systemd-resolve",pid=410,fd=14))
LISTEN 0      128          0.0.0.0:22        0.0.0.0:*     users:(("sshd",pid=598,fd=3))
LISTEN 0      244       10.0.0.5%eth0:5432   0.0.0.0:*     users:(("postgres",pid=811,fd=5))
LISTEN 0      4096               *:3000            *:*     users:(("grafana",pid=902,fd=9))
LISTEN 0      128            [::1]:631          [::]:*
LISTEN 0      128             [::]:22           [::]:*     users:(("sshd",pid=598,fd=4))
"""
    from outsidein.host.facts import parse_ss

    sockets = parse_ss(text)
    assert [(s.shown, s.process, s.families, s.local_only) for s in sockets] == [
        ("127.0.0.53%lo:53", "systemd-resolve", (fw.IPV4,), True),
        ("0.0.0.0:22", "sshd", (fw.IPV4,), False),
        ("10.0.0.5%eth0:5432", "postgres", (fw.IPV4,), False),
        ("*:3000", "grafana", (fw.IPV4, fw.IPV6), False),
        ("[::1]:631", None, (fw.IPV6,), True),
        ("[::]:22", "sshd", (fw.IPV6,), False),
    ]
    with pytest.raises(fw.ParseError, match="line 2"):
        parse_ss("State Recv-Q\nnonsense\n")


def test_legacy_tables_hidden_from_iptables_nft_make_the_rules_unknown() -> None:
    # iptables-nft prints this warning (on stderr) when iptables-legacy tables are loaded as well.
    text = ("# Generated by iptables-save v1.8.9 (nf_tables) on Sat Nov 28 13:14:08 2026\n"
            "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n")
    ev = evidence({"iptables-save": Record(data=text), "ip6tables-save": Record(data=""),
                   "nft-list-ruleset": Record(data=""), "ss-tlnp": Record(data="")})
    facts = parse_host(ev)
    assert facts.missing["iptables-save"].startswith("iptables-save warns that iptables-legacy tables are loaded")
    assert statuses(check_results(facts), "host-fw-default-policy") == {Status.NOT_ASSESSED}
