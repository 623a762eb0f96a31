"""Layer 4: TLS endpoints (direct TLS and STARTTLS) and certificate files.

``collect`` scans endpoints with sslyze (protocols, suites, the served chain, OCSP stapling), validates the
chain with cryptography, and probes in plaintext where no TLS answered; ``facts`` parses that JSON into typed
models the checks read (``outsidein.checks.tls``).
"""
