"""The playbook's twelve layers, in audit order (outside-in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    number: int
    domain: str
    risk_area: str  # the dashboard's "key risk area"


LAYERS: tuple[Layer, ...] = (
    Layer(1, "Security Groups", "Port exposure to 0.0.0.0/0"),
    Layer(2, "UFW / iptables", "Host firewall default policies"),
    Layer(3, "NGINX config", "Rate limiting, security headers"),
    Layer(4, "SSL/TLS certs", "Expired certs, weak ciphers"),
    Layer(5, "Secrets management", "Hardcoded secrets, weak passwords"),
    Layer(6, "VPC architecture", "Private subnet IGW exposure"),
    Layer(7, "IAM policies", "Wildcard permissions, no MFA"),
    Layer(8, "Encrypted transfer", "Plaintext DB/Redis connections"),
    Layer(9, "Database backups", "Unencrypted S3 uploads"),
    Layer(10, "Dependency CVEs", "Unpatched third-party packages"),
    Layer(11, "CI/CD security", "Missing SAST/DAST/IaC gates"),
    Layer(12, "Attack simulation", "Rate limit & DDoS response"),
)

LAYER_BY_NUMBER = {layer.number: layer for layer in LAYERS}
