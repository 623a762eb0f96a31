"""Layer 10: dependency CVEs, outdated images and ops tools (OWASP A06:2021, playbook section 10).

The pipeline mirrors pip-audit's three stages: ``inventory`` reads lockfiles, manifests and image references
(the dependency sources), ``osvdb`` is the vulnerability service (a local OSV database, so audits run offline
and air-gapped, matched with ``versions``' per-ecosystem ordering and the OSV range algorithm), and
``collect`` joins them into ``SourceEvidence`` with the advisories already matched. ``facts`` parses that
evidence for the checks in ``outsidein.checks.components``. A package that could not be matched (its
ecosystem is not in the database, its version does not parse) is kept with the reason, like pip-audit's
``SkippedDependency``: NOT_ASSESSED, never a silent pass.
"""
