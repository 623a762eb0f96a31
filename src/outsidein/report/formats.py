"""Every report format `outsidein audit --format` offers, rendered to text (the table is rendered by rich)."""

from __future__ import annotations

from collections.abc import Callable

from outsidein.audit import AuditReport

FORMATS = ("table", "json", "sarif", "junit", "ocsf", "markdown", "html")


def _renderers() -> dict[str, Callable[[AuditReport], str]]:
    from outsidein.report.html import render_html
    from outsidein.report.json_report import render_json
    from outsidein.report.junit import render_junit
    from outsidein.report.markdown import render_markdown
    from outsidein.report.ocsf import render_ocsf
    from outsidein.report.sarif import render_sarif

    return {"json": render_json, "sarif": render_sarif, "junit": render_junit, "ocsf": render_ocsf,
            "markdown": render_markdown, "html": render_html}


def render_report(report: AuditReport, fmt: str) -> str:
    """The report as text in ``fmt`` (any of FORMATS but ``table``)."""
    renderers = _renderers()
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r} (expected one of {', '.join(renderers)})")
    return renderers[fmt](report)
