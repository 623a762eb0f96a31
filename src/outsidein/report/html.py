"""A single-file HTML report: dashboard, charts, findings, tickets. No external resources (inline CSS, inline
SVG, a few lines of inline JS for the severity filter), so it can be mailed, archived or attached to a CI run.
"""

from __future__ import annotations

from html import escape

from outsidein.audit import AuditReport
from outsidein.models import Finding, Severity
from outsidein.report.common import (
    SLA_BUCKETS,
    due_text,
    first_seen_text,
    owner_of,
    severity_counts,
    sla_bucket,
    sla_buckets,
    utc_text,
)
from outsidein.tickets import report_tickets

SEVERITY_COLOR = {
    Severity.CRITICAL: "#b42318",
    Severity.HIGH: "#e04f16",
    Severity.MEDIUM: "#c98a04",
    Severity.LOW: "#2e7bb8",
    Severity.REVIEW: "#7a5af8",
}
BUCKET_COLOR = {
    "overdue": "#7a1010",
    "due within 24 h": "#b42318",
    "due within 7 d": "#e04f16",
    "due within 30 d": "#c98a04",
    "due later": "#2e7bb8",
    "no deadline": "#98a2b3",
}
STATUS_CLASS = {"PASS": "pass", "FAIL": "fail", "REVIEW": "review"}

CSS = """
:root { --fg:#1d2939; --muted:#667085; --line:#e4e7ec; --bg:#f8f9fb; --card:#fff; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#101828; color:#fff; padding:20px 32px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header .meta { color:#d0d5dd; font-size:13px; }
main { max-width:1280px; margin:0 auto; padding:20px 32px 48px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 20px;
          margin:0 0 20px; }
h2 { font-size:16px; margin:0 0 12px; }
h2 .count { color:var(--muted); font-weight:400; }
.cards { display:grid; grid-template-columns:repeat(6,1fr); gap:12px; margin:0 0 20px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px;
        border-top:4px solid var(--c); }
.card .n { font-size:26px; font-weight:700; color:var(--c); }
.card .l { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
.charts { display:grid; grid-template-columns:1fr 1fr; gap:20px; }
.charts section { margin:0; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; font-weight:600;
     background:#f2f4f7; position:sticky; top:0; }
td.num { text-align:right; font-variant-numeric:tabular-nums; color:var(--muted); }
.pill { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; font-weight:600;
        color:#fff; white-space:nowrap; }
tr.overdue td { background:#fef3f2; }
.pass { background:#12b76a; } .fail { background:#d92d20; } .review { background:#f79009; }
.sev { display:inline-block; min-width:74px; text-align:center; padding:1px 6px; border-radius:4px;
       font-size:11px; font-weight:700; color:#fff; background:var(--c); }
.res { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; overflow-wrap:anywhere; }
td.res { min-width:170px; max-width:300px; }
td.resources { width:40%; }
td.detail { min-width:280px; }
.nw { white-space:nowrap; }
code, pre { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; }
pre { background:#f2f4f7; padding:6px 8px; border-radius:6px; white-space:pre-wrap; word-break:break-all;
      margin:4px 0 0; }
details summary { cursor:pointer; color:#175cd3; font-size:12px; }
.filters { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:0 0 10px; }
.filters label { display:inline-flex; gap:4px; align-items:center; border:1px solid var(--line);
                 border-radius:999px; padding:2px 10px; cursor:pointer; user-select:none; }
.filters input[type=search] { margin-left:auto; padding:4px 10px; border:1px solid #d0d5dd; border-radius:6px;
                              min-width:260px; font:inherit; }
.muted { color:var(--muted); }
.scroll { max-height:720px; overflow:auto; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:8px; }
@media (max-width:900px) { .cards { grid-template-columns:repeat(3,1fr); } .charts { grid-template-columns:1fr; } }
@media print { .filters { display:none; } .scroll { max-height:none; overflow:visible; } }
"""

JS = """
(function () {
  var boxes = document.querySelectorAll('.filters input[type=checkbox]');
  var search = document.getElementById('q');
  var rows = document.querySelectorAll('#findings tbody tr');
  var shown = document.getElementById('shown');
  function apply() {
    var on = {}; boxes.forEach(function (b) { on[b.value] = b.checked; });
    var q = (search.value || '').toLowerCase(); var n = 0;
    rows.forEach(function (r) {
      var ok = on[r.dataset.severity] && (!q || r.textContent.toLowerCase().indexOf(q) >= 0);
      r.style.display = ok ? '' : 'none'; if (ok) { n++; }
    });
    shown.textContent = n;
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  search.addEventListener('input', apply);
})();
"""


def e(text: object) -> str:
    return escape("" if text is None else str(text), quote=True)


def bar_chart(title: str, data: list[tuple[str, int, str]], width: int = 520) -> str:
    """A horizontal bar chart as inline SVG: one (label, value, colour) per row."""
    label_w, count_w, row_h, top = 130, 44, 30, 6
    bar_w = width - label_w - count_w
    height = top * 2 + row_h * len(data)
    most = max((v for _, v, _ in data), default=0) or 1
    parts = [f'<svg role="img" aria-label="{e(title)}" viewBox="0 0 {width} {height}" width="100%" '
             f'xmlns="http://www.w3.org/2000/svg" style="max-width:{width}px">', f"<title>{e(title)}</title>"]
    for i, (label, value, color) in enumerate(data):
        y = top + i * row_h
        w = round(bar_w * value / most) if value else 0
        parts.append(f'<text x="{label_w - 8}" y="{y + 19}" text-anchor="end" font-size="12" fill="#344054">'
                     f"{e(label)}</text>")
        parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{bar_w}" height="{row_h - 10}" rx="3" fill="#f2f4f7"/>')
        if w:
            parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{w}" height="{row_h - 10}" rx="3" fill="{color}"/>')
        parts.append(f'<text x="{label_w + bar_w + 8}" y="{y + 19}" font-size="12" font-weight="600" '
                     f'fill="#1d2939">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _header(report: AuditReport) -> str:
    bits = [f"evidence: {report.source}", f"evaluated {utc_text(report.evaluated_at)}"]
    if report.account_id:
        bits.append(f"account {report.account_id}")
    if report.regions:
        bits.append(f"regions {', '.join(report.regions)}")
    if report.hosts:
        bits.append(f"hosts {', '.join(report.hosts)}")
    if report.nginx:
        bits.append(f"nginx {', '.join(report.nginx)}")
    if report.tls:
        bits.append(f"{len(report.tls)} TLS endpoint(s)/file(s)")
    if report.captures:
        bits.append(f"captures {', '.join(report.captures)}")
    return (f'<header><h1>outsidein audit</h1><div class="meta">{e(" · ".join(bits))}</div></header>')


def _cards(report: AuditReport) -> str:
    counts = severity_counts(report.findings)
    cards = [f'<div class="card" style="--c:{SEVERITY_COLOR[s]}"><div class="n">{counts[s]}</div>'
             f'<div class="l">{s.value}</div></div>' for s in Severity]
    cards.append(f'<div class="card" style="--c:#475467"><div class="n">{len(report.not_assessed)}</div>'
                 f'<div class="l">Not assessed</div></div>')
    return f'<div class="cards">{"".join(cards)}</div>'


def _dashboard(report: AuditReport) -> str:
    rows = [f'<tr class="layer-row" data-layer="{ls.layer.number}"><td class="num">{ls.layer.number:02d}</td>'
            f"<td>{e(ls.layer.domain)}</td><td>{e(ls.layer.risk_area)}</td>"
            f'<td><span class="pill {STATUS_CLASS.get(ls.status, "review")}">{e(ls.status)}</span></td>'
            f'<td class="num">{ls.findings}</td><td class="num">{ls.passed}</td><td>{e(ls.note)}</td></tr>'
            for ls in report.layers]
    return ('<section id="dashboard"><h2>Dashboard <span class="count">twelve layers, outside-in</span></h2>'
            "<table><thead><tr><th>#</th><th>Domain</th><th>Key risk area</th><th>Status</th><th>Findings</th>"
            f"<th>Passed</th><th>Notes</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _charts(report: AuditReport) -> str:
    counts = severity_counts(report.findings)
    severity = bar_chart("Findings by severity", [(s.value, counts[s], SEVERITY_COLOR[s]) for s in Severity])
    buckets = sla_buckets(report)
    sla = bar_chart("Findings by SLA due date", [(b, buckets[b], BUCKET_COLOR[b]) for b in SLA_BUCKETS])
    return ('<div class="charts">'
            f'<section id="severity-chart"><h2>Findings by severity</h2>{severity}</section>'
            f'<section id="sla-chart"><h2>SLA <span class="count">due date vs the audit clock '
            f'({e(utc_text(report.evaluated_at))})</span></h2>{sla}</section></div>')


def _finding_row(f: Finding, now_bucket: str) -> str:
    overdue = now_bucket == "overdue"
    bucket = '<span class="pill fail">OVERDUE</span>' if overdue else e(now_bucket)
    state = f'<div class="muted">{e(f.state)}</div>' if f.state else ""
    marked = ' class="overdue"' if overdue else ""
    return (f'<tr data-severity="{f.severity.value}"{marked}>'
            f'<td><span class="sev" style="--c:{SEVERITY_COLOR[f.severity]}">{f.severity.value}</span></td>'
            f'<td class="num">{f.layer:02d}</td>'
            f'<td><code title="{e(f.title)}">{e(f.check_id)}</code></td>'
            f'<td class="res">{e(f.resource)}</td><td class="nw">{e(f.environment or "-")}</td>'
            f'<td class="nw">{e(f.region or "-")}</td>'
            f'<td class="nw">{e(due_text(f))}<div class="muted">{bucket}</div></td>'
            f'<td class="nw">{e(first_seen_text(f))}{state}</td><td class="nw">{e(owner_of(f))}</td>'
            f'<td class="detail">{e(f.title)}: {e(f.detail)}<details><summary>fix &amp; verify</summary>'
            f"{e(f.remediation)}<pre>{e(f.verify)}</pre></details></td></tr>")


def _findings(report: AuditReport) -> str:
    if not report.findings:
        return '<section id="findings"><h2>Findings</h2><p>No findings.</p></section>'
    counts = severity_counts(report.findings)
    boxes = "".join(
        f'<label><input type="checkbox" value="{s.value}" checked> '
        f'<span class="sev" style="--c:{SEVERITY_COLOR[s]}">{s.value}</span> {counts[s]}</label>'
        for s in Severity if counts[s])
    now = report.evaluated_at
    ordered = sorted(report.findings, key=lambda f: not f.is_overdue(now))  # escalated: overdue first
    rows = "".join(_finding_row(f, sla_bucket(f, now)) for f in ordered)
    overdue = sum(1 for f in ordered if f.is_overdue(now))
    escalated = (f'<p><span class="pill fail">OVERDUE</span> {overdue} finding(s) past their due date (first seen '
                 "+ SLA), listed first.</p>" if overdue else "")
    return (f'<section id="findings"><h2>Findings <span class="count"><span id="shown">{len(report.findings)}'
            f"</span> of {len(report.findings)} shown</span></h2>{escalated}"
            f'<div class="filters">{boxes}<input id="q" type="search" placeholder="filter: resource, check, '
            'env…"></div><div class="scroll"><table><thead><tr><th>Severity</th><th>L</th>'
            "<th>Check</th><th>Resource</th><th>Env</th><th>Region</th><th>Due</th><th>First seen</th><th>Owner</th>"
            "<th>Detail</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div></section>")


def _tickets(report: AuditReport) -> str:
    items = report_tickets(report)
    if not items:
        return ""
    rows = []
    for t in items:
        names = list(dict.fromkeys(f.resource for f in t.findings))
        resources = "".join(f'<div class="res">{e(r)}</div>' for r in names[:8])
        if len(names) > 8:
            more = "".join(f'<div class="res">{e(r)}</div>' for r in names[8:])
            resources += f"<details><summary>{len(names) - 8} more</summary>{more}</details>"
        due = e(utc_text(t.due) if t.due else "as scheduled")
        overdue = sum(1 for f in t.findings if f.overdue(report.evaluated_at))
        if overdue:
            due += f'<div><span class="pill fail">OVERDUE</span> {overdue}</div>'
        rows.append(f'<tr><td><span class="sev" style="--c:{SEVERITY_COLOR[t.severity]}">{t.severity.value}</span>'
                    f"</td><td><code>{e(t.check_id)}</code><div class=\"muted\">{e(t.title)}</div></td>"
                    f"<td>{e(t.environment or '-')}</td><td style=\"white-space:nowrap\">{due}</td>"
                    f'<td>{e(t.owner)}</td><td class="num">{len(t.findings)}</td>'
                    f'<td class="resources">{resources}</td></tr>')
    return (f'<section id="tickets"><h2>Tickets <span class="count">{len(items)}: one per check × environment'
            "</span></h2><div class=\"scroll\"><table><thead><tr><th>Severity</th><th>Check</th><th>Env</th>"
            "<th>Due</th>"
            "<th>Owner</th><th>Findings</th><th>Resources</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div></section>")


def _not_assessed(report: AuditReport) -> str:
    if not report.not_assessed:
        return ""
    rows = "".join(f"<tr><td><code>{e(c.meta.id)}</code></td><td class=\"res\">{e(r.resource)}</td>"
                   f"<td>{e(r.reason)}</td></tr>" for c, r in report.not_assessed)
    return (f'<section id="not-assessed"><h2>Not assessed <span class="count">{len(report.not_assessed)}: '
            "never counted as PASS</span></h2><table><thead><tr><th>Check</th><th>Resource / scope</th>"
            f"<th>Reason</th></tr></thead><tbody>{rows}</tbody></table></section>")


def render_html(report: AuditReport) -> str:
    total = len(report.findings)
    body = [_header(report), "<main>", _cards(report), _dashboard(report), _charts(report), _findings(report),
            _tickets(report), _not_assessed(report)]
    if report.suppressed:
        body.append(f'<p class="muted">{len(report.suppressed)} finding(s) set aside by the reviewed baseline '
                    "(listed in the JSON report).</p>")
    body += ["</main>", "<footer>generated by outsidein · single file, no external resources</footer>"]
    script = f"<script>{JS}</script>" if total else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>outsidein audit: {total} findings</title><style>{CSS}</style></head><body>"
            + "".join(body) + script + "</body></html>\n")
