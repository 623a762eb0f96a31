"""What outsidein reads from a host: read-only commands and files, and the names their saved outputs take.

A command's evidence key is also the file name an auditor saves its output under for an offline
audit (``iptables-save.txt``, ``ss-tlnp.txt`` …). Outputs are stored as text, exactly as printed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostCommand:
    key: str  # evidence key and saved-output file name (without .txt)
    argv: tuple[str, ...]
    sudo: bool = False  # needs root: run through ``sudo -n`` when the scope allows it
    # Exit codes whose output is still the answer (``systemctl is-enabled`` exits 1 for "disabled").
    ok_exit_codes: tuple[int, ...] = (0,)


COMMANDS: tuple[HostCommand, ...] = (
    HostCommand("ufw-status-verbose", ("ufw", "status", "verbose"), sudo=True),
    HostCommand("iptables-save", ("iptables-save",), sudo=True),
    HostCommand("ip6tables-save", ("ip6tables-save",), sudo=True),
    HostCommand("nft-list-ruleset", ("nft", "list", "ruleset"), sudo=True),
    HostCommand("ss-tlnp", ("ss", "-tlnp"), sudo=True),
    HostCommand("systemctl-is-enabled-ufw", ("systemctl", "is-enabled", "ufw"), ok_exit_codes=(0, 1)),
    HostCommand("systemctl-is-enabled-nftables", ("systemctl", "is-enabled", "nftables"), ok_exit_codes=(0, 1)),
    HostCommand("systemctl-is-enabled-netfilter-persistent",
                ("systemctl", "is-enabled", "netfilter-persistent"), ok_exit_codes=(0, 1)),
)

# Files whose presence and content say whether rules survive a reboot, and how the host was provisioned.
PERSISTENCE_FILES: tuple[str, ...] = (
    "/etc/iptables/rules.v4",
    "/etc/iptables/rules.v6",
    "/etc/nftables.conf",
    "/etc/ufw/ufw.conf",
)
HOST_PROVISIONING_FILES: tuple[str, ...] = (
    "/var/lib/cloud/instance/user-data.txt",
)

COMMAND_KEYS = frozenset(command.key for command in COMMANDS)
