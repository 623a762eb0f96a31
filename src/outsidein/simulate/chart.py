"""Latency over time as one self-contained HTML file: inline SVG per scenario, no JavaScript, no fetches."""

from __future__ import annotations

import html
from typing import Any

from outsidein.evidence import SourceEvidence

WIDTH, HEIGHT, PAD = 760, 240, 48
COLOURS = {"p50_ms": "#2b6cb0", "p95_ms": "#c05621", "max_ms": "#a0aec0"}


def _scenario_svg(scenario: dict[str, Any]) -> str:
    result = scenario.get("result") or {}
    series = [row for row in result.get("series") or [] if row.get("p50_ms") is not None or row.get("errors")]
    title = f"{scenario.get('name')} ({scenario.get('kind')}) — {scenario.get('method')} {scenario.get('url')}"
    if scenario.get("error"):
        return f"<h2>{html.escape(title)}</h2><p>not run: {html.escape(str(scenario['error']))}</p>"
    if not series:
        return f"<h2>{html.escape(title)}</h2><p>no latency samples</p>"
    limit = (scenario.get("params") or {}).get("p95_ms") if scenario.get("kind") == "load" else \
        result.get("threshold_ms")
    top = float(max([row.get("max_ms") or row.get("p95_ms") or 0 for row in series] + [limit or 0, 1.0])) * 1.1
    last = int(max(row["t"] for row in series)) + 1
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(t: float) -> float:
        return PAD + plot_w * (t + 0.5) / last

    def y(ms: float) -> float:
        return PAD + plot_h * (1 - ms / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<rect x="{PAD}" y="{PAD}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#cbd5e0"/>']
    for frac in (0, 0.25, 0.5, 0.75, 1):
        ms = top * frac
        parts.append(f'<text x="{PAD - 4}" y="{y(ms) + 4:.1f}" font-size="10" text-anchor="end">{ms:.0f}</text>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 10}" font-size="11">seconds since start (0–{last - 1}); '
                 'latency in ms</text>')
    if limit:
        parts.append(f'<line x1="{PAD}" x2="{PAD + plot_w}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
                     f'stroke="#e53e3e" stroke-dasharray="4 3"/><text x="{PAD + plot_w - 2}" y="{y(limit) - 3:.1f}" '
                     f'font-size="10" text-anchor="end" fill="#e53e3e">threshold {limit:g} ms</text>')
    for key, colour in COLOURS.items():
        points = " ".join(f"{x(row['t']):.1f},{y(row[key]):.1f}" for row in series if row.get(key) is not None)
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
    for row in series:
        if row.get("errors"):
            parts.append(f'<circle cx="{x(row["t"]):.1f}" cy="{PAD + plot_h - 4}" r="3" fill="#e53e3e">'
                         f'<title>{row["errors"]} error(s) in second {row["t"]}</title></circle>')
    legend = " ".join(f'<tspan fill="{c}">■ {k[:-3]}</tspan>' for k, c in COLOURS.items())
    parts.append(f'<text x="{PAD}" y="{PAD - 8}" font-size="11">{legend} <tspan fill="#e53e3e">● errors</tspan>'
                 '</text></svg>')
    stats = result.get("stats") or {}
    facts = ", ".join(f"{k} {v}" for k, v in stats.items() if v is not None)
    return f"<h2>{html.escape(title)}</h2>{''.join(parts)}<p>{html.escape(facts)}</p>"


def render_chart(evidence: list[SourceEvidence]) -> str:
    body = []
    for entry in evidence:
        data = entry.data.data if isinstance(entry.data.data, dict) else {}
        auth = data.get("authorization") or {}
        body.append(f"<h1>{html.escape(entry.name)}</h1><p>authorized by {html.escape(str(auth.get('authorized_by')))}"
                    f" until {html.escape(str(auth.get('expires')))}; environment "
                    f"{html.escape(str(entry.environment))}</p>")
        body.extend(_scenario_svg(s) for s in data.get("scenarios") or [])
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>outsidein attack simulation</title>"
            "<style>body{font-family:sans-serif;margin:2em;color:#1a202c}h2{font-size:1em}</style></head><body>"
            + "".join(body) + "</body></html>\n")


def summary_lines(evidence: SourceEvidence) -> list[str]:
    """One line per scenario with the measured numbers (what the findings' stable details leave out)."""
    data = evidence.data.data if isinstance(evidence.data.data, dict) else {}
    lines = []
    for s in data.get("scenarios") or []:
        r = s.get("result") or {}
        st = r.get("stats") or {}
        head = f"{s.get('name')} ({s.get('kind')}):"
        if s.get("error"):
            lines.append(f"{head} not run: {s['error']}")
        elif s.get("kind") == "rate_limit":
            lines.append(f"{head} first 429 at request {r.get('first_429')} of {r.get('sent')} sent")
        elif s.get("kind") == "slowloris":
            lines.append(f"{head} {r.get('opened')} held, {r.get('closed_within')} closed within "
                         f"{s['params'].get('close_within')} s (p50 {r.get('close_p50_s')} s), {r.get('still_open')} "
                         f"still open; probes {r.get('probes')} ({r.get('probes_failed')} failed)")
        elif s.get("kind") == "recovery":
            lines.append(f"{head} baseline p50 {r.get('baseline_ms')} ms, threshold {r.get('threshold_ms')} ms, "
                         f"recovered after {r.get('recovered_after_s')} s (window {r.get('window_s')} s)")
        else:
            lines.append(f"{head} {st.get('requests')} requests, p95 {st.get('p95_ms')} ms, error rate "
                         f"{st.get('error_rate', 0):.2%}, 5xx {st.get('status_5xx')}, peak {r.get('peak_vus')} VUs")
    return lines
