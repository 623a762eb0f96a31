"""Layer 8: encrypted transit, proven from the wire.

``flows`` reads a pcap/pcapng file (dpkt), reassembles every TCP flow per direction (a bounded prefix of each)
and classifies it: TLS with its version (direct, or after a STARTTLS upgrade: PostgreSQL SSLRequest, SMTP/IMAP
STARTTLS, FTP AUTH TLS, MySQL SSL request), or plaintext, in which ``detect`` looks for credentials and data.
``collect`` turns the scope's captures, live tcpdump runs and PostgreSQL ``pg_stat_ssl`` reads into
``CaptureEvidence``; ``facts`` parses that evidence for the checks in ``outsidein.checks.transit``.

A flow summary (the evidence, JSON)::

    {"client": "10.0.0.5:51234", "server": "10.0.0.9:6379", "protocol": "redis", "encrypted": false,
     "tls_version": null, "starttls": null, "packets": 12, "bytes": 345, "first_packet": 17,
     "detections": [{"kind": "redis-auth", "credential": true, "excerpt": "AUTH S3cr…[sha256:…]",
                     "packet": 19, "offset": 0}]}

Secrets never leave this package unmasked: every excerpt goes through ``outsidein.redact``.
"""
