"""Layer 12: attack simulation — do the controls hold under pressure?

``outsidein simulate`` runs the playbook's pass-criteria scenarios against targets a written authorization
covers, and turns what it measured into evidence (``SourceEvidence`` of kind "simulation") that the layer-12
checks (``outsidein.checks.simulation``) judge like any other layer's.

Decisions:

- **Authorization first, no network before it** (``guard``): a ``[simulation]`` block naming who authorized
  the test, until when, the targets' environment and the target URLs. Refused: no block, an expired date, an
  environment of prod/production, a scenario URL whose scheme, host and port (and path prefix) are not one of
  the targets, and a host that resolves to anything but loopback (127.0.0.0/8, ::1) unless the block's
  ``allowed_addresses`` lists it. Requests go to the address that was checked (the host name only travels in
  the Host header and SNI), so a DNS answer cannot change between the check and the load.
- **Bounded** (``engine.Budget``): every request and every held connection takes one token from a per-run
  budget; the run has a deadline. The scope's ``max_requests``/``max_seconds`` are capped in code
  (``MAX_SIMULATION_REQUESTS``, ``MAX_SIMULATION_SECONDS``, ``MAX_VUS``); a scenario that runs out is marked
  ``truncated`` and its verdict says so.
- **Load generator** (``wire``): a minimal HTTP/1.1 keep-alive client on an asyncio protocol (pre-built
  request bytes; responses framed by Content-Length, chunked or close; one connection per virtual user, to
  the checked address, TLS with SNI and verification against the URL's host), the next request sent from the
  previous response's callback; latency per request with ``time.perf_counter``. About 70,000 requests per
  CPU-second, half of wrk's (``bench/simulate_bench.py``); a load result records ``generator.busy``. Stages
  ramp linearly from the previous target like k6's ramping-vus. Slowloris uses raw asyncio streams (partial
  headers, one more header line every ``interval`` seconds).
- **Evidence** keeps per-scenario results and a per-second summary (requests, errors, p50/p95/max latency),
  never every sample, so a snapshot stays small and ``outsidein audit --from`` re-evaluates it offline.
"""
