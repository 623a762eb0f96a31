"""Layer 3: NGINX. Collect the configuration files, ``nginx -t`` and a live probe; parse them into a tree.

``collect`` gathers raw evidence (``NginxEvidence``); ``config`` parses it into ``NginxConfig``; the checks in
``outsidein.checks.nginx`` read that tree with the helpers of ``headers``, ``script`` and ``tls``.
"""
