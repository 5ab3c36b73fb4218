"""report.html: one self-contained page for the research coordinator and the principal investigator.

Rendered on the server side into plain HTML (so it reads and prints without JavaScript): the
screening funnel and the exclusion reasons as inline SVG bar charts, then the worklist — each
candidate's row expands to its criterion table. A few lines of inline JavaScript add the verdict
filter and the expand/collapse buttons. No request leaves the page: no external fonts, styles,
scripts or images. Every text from a record goes through ``html.escape``.
"""

from __future__ import annotations

import html
from string import Template
from typing import Any

from cds_service.criteria.models import TrialDefinition
from cds_service.screening.outputs import key_facts

STATUS_TEXT = {"pass": "met", "fail": "not met", "unknown": "to check"}
VERDICT_TEXT = {"likely-eligible": "Likely eligible", "needs-review": "Needs review", "not-eligible": "Not eligible"}
FACT_LABELS = (("ecog", "Performance status"), ("liver_lesions", "Liver lesions"), ("ca19_9", "CA 19-9"),
               ("chemotherapy", "Chemotherapy"), ("last_staging_imaging", "Last staging imaging"))

e = html.escape


def render_report(summary: dict[str, Any], worklist: list[dict[str, Any]], trial: TrialDefinition) -> str:
    counts = summary["counts"]
    return PAGE.substitute(
        title=e(f"Screening report — {trial.id}"),
        trial_title=e(trial.title), trial_id=e(trial.id), as_of=e(summary["asOf"]),
        source=e(_source_text(summary["source"])), engine=e(_engine_text(summary["engine"])),
        tiles=_tiles(counts),
        funnel=bar_chart("funnel-chart", "Screening funnel",
                         [(s["label"], s["patients"]) for s in summary["funnel"]], with_share=True)
        + _funnel_zoom(summary["funnel"]),
        exclusions=(bar_chart("exclusion-chart", "Exclusion reasons",
                              [(x["label"], x["patients"]) for x in summary["exclusionReasons"]])
                    if summary["exclusionReasons"] else '<p class="empty">No patient was excluded.</p>'),
        worklist=_worklist(worklist, trial), input=_input(summary["input"]),
        versions=e(", ".join(f"{k} {v}" for k, v in summary["versions"].items())),
        style=STYLE, script=SCRIPT)


ZOOM_BELOW = 0.10  # a step keeping under 10 % of those screened starts a zoomed view of the rest


def _funnel_zoom(funnel: list[dict[str, Any]]) -> str:
    """In a real population the disease step keeps a fraction of a percent, and every bar after it
    is a sliver: the rest of the funnel again, scaled to the first step that keeps under 10 %."""
    screened = funnel[0]["patients"] if funnel else 0
    start = next((i for i, step in enumerate(funnel[1:], start=1)
                  if 0 < step["patients"] < ZOOM_BELOW * screened), None)
    if start is None or start >= len(funnel) - 1:
        return ""
    steps = funnel[start:]
    return (f'<p class="muted">The same funnel from “{e(steps[0]["label"])}” on, scaled to its {steps[0]["patients"]:,} patients:</p>'
            + bar_chart("funnel-zoom", "Screening funnel, zoomed", [(x["label"], x["patients"]) for x in steps], with_share=True))


def _source_text(source: dict[str, Any]) -> str:
    if source.get("kind") == "fhir-server":
        return f"Bulk Data export of {source.get('url')}" + (f", Group {source['group']}" if source.get("group") else "")
    return f"{source.get('kind')} folder {source.get('folder')}"


def _engine_text(engine: dict[str, Any]) -> str:
    details = ", ".join(f"{k} {v}" for k, v in engine.items() if k != "name")
    return f"{engine.get('name')} ({details})" if details else str(engine.get("name"))


def _tiles(counts: dict[str, Any]) -> str:
    tiles = [("Screened", counts["screened"], "screened"), ("Likely eligible", counts["likely-eligible"], "likely-eligible"),
             ("Needs review", counts["needs-review"], "needs-review"), ("Not eligible", counts["not-eligible"], "not-eligible")]
    if counts.get("newCandidates") is not None:
        tiles.append(("New candidates", counts["newCandidates"], "new"))
    return "".join(f'<div class="tile {cls}"><span class="n">{n:,}</span><span>{e(label)}</span></div>'
                   for label, n, cls in tiles)


# --- charts --------------------------------------------------------------------------------------

def bar_chart(css_id: str, title: str, bars: list[tuple[str, int]], with_share: bool = False) -> str:
    """A horizontal bar chart as inline SVG: label on the left, bar scaled to the largest value, count
    (and, in the funnel, the share of the step before) at the end of the bar."""
    label_w, bar_w, row_h, pad = 420, 330, 26, 6
    top = max((n for _, n in bars), default=0) or 1
    rows = []
    for i, (label, n) in enumerate(bars):
        y = i * row_h
        width = max(1.0, bar_w * n / top) if n else 0
        share = ""
        if with_share and i > 0 and bars[i - 1][1]:
            share = f" ({100 * n / bars[i - 1][1]:.0f} %)"
        text = label if len(label) <= 56 else label[:55] + "…"
        rows.append(
            f'<g class="bar" data-count="{n}"><title>{e(label)}: {n:,}</title>'
            f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4:.0f}" text-anchor="end" class="label">{e(text)}</text>'
            f'<rect x="{label_w}" y="{y + pad / 2:.0f}" width="{width:.1f}" height="{row_h - pad}" rx="2"></rect>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + row_h / 2 + 4:.0f}" class="value">{n:,}{share}</text></g>')
    height = row_h * len(bars)
    return (f'<svg id="{css_id}" class="chart" role="img" aria-label="{e(title)}" viewBox="0 0 {label_w + bar_w + 110} {height}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>')


# --- worklist ------------------------------------------------------------------------------------

def _worklist(worklist: list[dict[str, Any]], trial: TrialDefinition) -> str:
    if not worklist:
        return '<p class="empty">No candidates in this run.</p>'
    bodies = [_patient(i, c, trial) for i, c in enumerate(worklist, start=1)]
    return ('<table class="worklist"><thead><tr><th>#</th><th>Patient</th><th>Verdict</th><th>To check</th>'
            '<th>Key facts</th><th class="noprint"></th></tr></thead>' + "".join(bodies) + "</table>")


def _patient(rank: int, c: dict[str, Any], trial: TrialDefinition) -> str:
    evaluation = c["evaluation"]
    facts = key_facts(evaluation, trial)
    fact_items = "".join(f"<li><b>{e(label)}:</b> {e(facts[key])}</li>" for key, label in FACT_LABELS if facts[key])
    new = '<span class="badge new">new</span>' if c.get("new") else ""
    who = e(c["name"] or "(no name recorded)")
    mrn = f'<div class="muted">MRN {e(c["mrn"])}</div>' if c.get("mrn") else ""
    detail_id = f"criteria-{rank}"
    # What the coordinator must find out: the automated criteria the record left open (they make the
    # verdict needs-review); the review-only ones are in the criterion table.
    open_items = [x for x in evaluation["criteria"] if x["automated"] and x["status"] == "unknown"]
    to_check = ("<ul class=\"open\">" + "".join(f"<li><b>{e(x['label'])}</b>: {e(x['reason'])}</li>" for x in open_items)
                + "</ul>") if open_items else '<span class="muted">nothing beyond the screening visit</span>'

    rows = "".join(
        f'<tr class="{e(x["status"])}"><td><span class="status {e(x["status"])}">{STATUS_TEXT.get(x["status"], e(x["status"]))}</span></td>'
        f'<td>{e(x["label"])}{"" if x["automated"] else " <span class=muted>(review)</span>"}</td><td>{e(x["reason"])}</td></tr>'
        for x in evaluation["criteria"])
    return (f'<tbody class="patient" data-verdict="{e(c["verdict"])}" data-new="{"true" if c.get("new") else "false"}">'
            f'<tr class="main"><td>{rank}</td><td><div class="who">{who} {new}</div>{mrn}<div class="muted ref">{e(c["patient"])}</div></td>'
            f'<td><span class="badge {e(c["verdict"])}">{VERDICT_TEXT.get(c["verdict"], e(c["verdict"]))}</span></td>'
            f'<td class="open-items" data-open="{c["openItems"]}">{to_check}</td><td><ul class="facts">{fact_items}</ul></td>'
            f'<td class="noprint"><button type="button" class="toggle" aria-expanded="false" aria-controls="{detail_id}">Criteria</button></td></tr>'
            f'<tr class="criteria" id="{detail_id}" hidden><td></td><td colspan="5"><table class="criteria-table">'
            f'<thead><tr><th>Status</th><th>Criterion</th><th>Reason</th></tr></thead><tbody>{rows}</tbody></table></td></tr>'
            f'</tbody>')


def _input(data: dict[str, Any]) -> str:
    if data.get("readWhole") and not data.get("duplicatePatients"):
        return '<p>The input was read whole.</p>'
    items = [f"<li>{v['count']:,} × {e(v['meaning'])}</li>" for v in data.get("skipped", {}).values()]
    if data.get("duplicatePatients"):
        items.append(f"<li>{data['duplicatePatients']:,} × a patient found twice (the first kept)</li>")
    return ('<p class="warn">Some of the input was skipped (details in summary.json):</p><ul>' + "".join(items) + "</ul>")


STYLE = """
:root { --ink:#1d2430; --muted:#5b6472; --line:#d7dce3; --bar:#3b6ea5; --ok:#1f7a3d; --rev:#a05a00; --no:#8a1c1c; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0 auto; max-width: 1180px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.muted, .meta { color: var(--muted); } .meta { margin: 0 0 4px; }
.privacy { background:#fff6e0; border:1px solid #e8c979; padding:6px 10px; border-radius:4px; margin:12px 0; }
.tiles { display:flex; gap:12px; flex-wrap:wrap; margin:16px 0; }
.tile { border:1px solid var(--line); border-radius:6px; padding:8px 14px; min-width:130px; display:flex; flex-direction:column; }
.tile .n { font-size:24px; font-weight:600; }
.tile.likely-eligible .n { color:var(--ok); } .tile.needs-review .n { color:var(--rev); } .tile.not-eligible .n { color:var(--no); }
.chart { max-width: 860px; display:block; } .chart rect { fill: var(--bar); }
#exclusion-chart rect { fill: #b0524a; }
.chart text { font: 11.5px system-ui, sans-serif; fill: var(--ink); } .chart .value { fill: var(--muted); }
.controls { display:flex; gap:8px; align-items:center; flex-wrap:wrap; margin:8px 0 12px; }
.controls label { border:1px solid var(--line); border-radius:14px; padding:2px 10px; cursor:pointer; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align:left; vertical-align:top; padding:6px 8px; border-bottom:1px solid var(--line); }
th { font-weight:600; background:#f4f6f9; }
td.num { text-align:right; }
.worklist ul.facts, .worklist ul.open { margin:0; padding-left:16px; }
.worklist ul.open { font-size:13px; color:var(--rev); } .worklist ul.open b { color:var(--ink); font-weight:600; }
.worklist td.open-items { max-width:340px; }
.badge { display:inline-block; border-radius:10px; padding:0 8px; font-size:12px; font-weight:600; border:1px solid; white-space:nowrap; }
.badge.likely-eligible { color:var(--ok); } .badge.needs-review { color:var(--rev); } .badge.new { color:#2d4fa0; }
.status { font-weight:600; white-space:nowrap; } .status.pass { color:var(--ok); } .status.fail { color:var(--no); } .status.unknown { color:var(--rev); }
.criteria-table { font-size:13px; background:#fbfcfd; } .criteria-table th { background:#eef1f5; }
button { font:inherit; border:1px solid var(--line); background:#fff; border-radius:4px; padding:2px 10px; cursor:pointer; }
.warn { color: var(--no); } .empty { color: var(--muted); font-style: italic; }
footer { margin-top:32px; color:var(--muted); font-size:12px; }
@media print {
  body { max-width:none; padding:0; font-size:11px; }
  .noprint, .controls { display:none !important; }
  tbody.patient { break-inside: avoid; }
  tbody.patient[hidden] { display:none; }
  .privacy { border-color:#999; background:none; }
}
"""

SCRIPT = """
(function () {
  var bodies = Array.prototype.slice.call(document.querySelectorAll('tbody.patient'));
  function applyFilter() {
    var chosen = document.querySelector('input[name=verdict]:checked');
    var value = chosen ? chosen.value : 'all';
    var shown = 0;
    bodies.forEach(function (b) {
      var show = value === 'all' || (value === 'new' ? b.dataset.new === 'true' : b.dataset.verdict === value);
      b.hidden = !show; if (show) { shown++; }
    });
    var counter = document.getElementById('shown');
    if (counter) { counter.textContent = shown + ' of ' + bodies.length + ' shown'; }
  }
  function setOpen(button, open) {
    var row = document.getElementById(button.getAttribute('aria-controls'));
    row.hidden = !open; button.setAttribute('aria-expanded', open ? 'true' : 'false');
  }
  document.querySelectorAll('input[name=verdict]').forEach(function (r) { r.addEventListener('change', applyFilter); });
  document.querySelectorAll('button.toggle').forEach(function (b) {
    b.addEventListener('click', function () { setOpen(b, b.getAttribute('aria-expanded') !== 'true'); });
  });
  var all = document.getElementById('expand-all');
  if (all) {
    all.addEventListener('click', function () {
      var open = all.dataset.open !== 'true';
      document.querySelectorAll('button.toggle').forEach(function (b) { setOpen(b, open); });
      all.dataset.open = open ? 'true' : 'false';
      all.textContent = open ? 'Collapse all' : 'Expand all';
    });
  }
  applyFilter();
})();
"""

PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>$title</title>
<style>$style</style>
</head>
<body>
<header>
<h1>Screening report: $trial_id</h1>
<p class="meta">$trial_title</p>
<p class="meta">As of <b>$as_of</b> · source: $source · engine: $engine</p>
<p class="privacy">This page lists patients by name and record number. Keep it where only the study team can read it.</p>
</header>
<section class="tiles" aria-label="Counts">$tiles</section>
<h2>Screening funnel</h2>
<p class="muted">Patients left after each automated criterion, in the trial's order; in brackets, the share of the step before. A criterion that cannot be decided from the record keeps the patient in the funnel.</p>
$funnel
<h2>Exclusion reasons</h2>
<p class="muted">Not-eligible patients by criterion not met; a patient is counted under every criterion that excludes them.</p>
$exclusions
<h2>Worklist</h2>
<div class="controls" role="group" aria-label="Filter by verdict">
<label><input type="radio" name="verdict" value="all" checked> All candidates</label>
<label><input type="radio" name="verdict" value="likely-eligible"> Likely eligible</label>
<label><input type="radio" name="verdict" value="needs-review"> Needs review</label>
<label><input type="radio" name="verdict" value="new"> New since the previous run</label>
<button type="button" id="expand-all">Expand all</button>
<span id="shown" class="muted"></span>
</div>
$worklist
<h2>Input</h2>
$input
<footer>Generated by trialcds ($versions). Decision support only: every candidate is confirmed at a screening visit.</footer>
<script>$script</script>
</body>
</html>
""")
