#!/bin/sh
# bastion bootstrap: default deny, SSH from the VPN only, rules persisted
set -eu
apt-get install -y iptables-persistent
iptables-restore < /etc/iptables/rules.v4
ip6tables-restore < /etc/iptables/rules.v6
systemctl enable --now netfilter-persistent
ufw status verbose
