"""The demo's hosts and NGINX configuration: saved outputs and config files bundled with outsidein.

``app-1`` carries the playbook's layer-2 mistakes (accept-all policy, databases listening on every
address, a cloud-init and an Ansible task that switch the firewall off); ``bastion-1`` is its
hardened twin and must stay silent. The NGINX configuration carries the layer-3 mistakes. The capture
``captures/app-1-db.pcap`` was recorded with tcpdump on real psql and redis-cli sessions (addresses and
ports rewritten to the demo's app and data tiers): a plaintext PostgreSQL login and query and a plaintext
Redis AUTH next to their TLS twins. The TLS endpoints and certificate files are in ``tls_servers``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from outsidein.scope import BackupsScope, CaptureScope, HostScope, NginxScope


def _demo_dir() -> Path:
    return Path(str(resources.files("outsidein.demo")))


def demo_hosts() -> tuple[HostScope, ...]:
    root = _demo_dir()
    provisioning = root / "provisioning"
    return (
        HostScope(name="app-1", evidence=root / "hosts" / "app-1", environment="prod",
                  ssh_allowed_cidrs=("10.8.0.0/24",),
                  provisioning=(provisioning / "app-user-data.yaml", provisioning / "ansible-app.yml")),
        HostScope(name="bastion-1", evidence=root / "hosts" / "bastion-1", environment="prod",
                  ssh_allowed_cidrs=("10.8.0.0/24",), provisioning=(provisioning / "bastion-user-data.yaml",)),
    )


def demo_nginx() -> tuple[NginxScope, ...]:
    # No `nginx -t`: the demo's certificate paths do not exist on this machine.
    return (NginxScope(name="shop-edge", config=_demo_dir() / "nginx" / "nginx.conf", environment="prod",
                       nginx_binary=""),)


def demo_captures() -> tuple[CaptureScope, ...]:
    return (CaptureScope(name="app-1-db", pcap=_demo_dir() / "captures" / "app-1-db.pcap", environment="prod"),)


def demo_backups(state: Path) -> BackupsScope:
    """Layer 9 on the demo account: its prod backup bucket, and a drill log that records no drill yet."""
    from outsidein.demo.seed import BACKUP_BUCKET

    return BackupsScope(buckets=(BACKUP_BUCKET,), discover=False, environment="prod",
                        drill_log=state / "drills.jsonl")
