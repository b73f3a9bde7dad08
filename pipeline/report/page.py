"""The report as one HTML file that opens offline: plotly.js inlined once, a div per chart,
the worst feeds as a table."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from pipeline.report.charts import CHARTS, CLASS_COLOURS, worst_feeds
from pipeline.report.data import ReportData

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { margin-bottom: 0; } .meta { color: #666; margin-top: .3rem; }
.chart { margin: 1.5rem 0; min-height: 420px; }
table { border-collapse: collapse; font-size: .9rem; } td, th { padding: .3rem .6rem;
border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
.class { font-weight: 600; }
"""


def render(data: ReportData, out: str) -> str:
    """The page for `data`, read from `out`."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    charts = []
    for index, chart in enumerate(CHARTS):
        figure = chart(data)
        charts.append(f'<div class="chart" id="chart-{index}" data-chart="{chart.__name__}">'
                      + pio.to_html(figure, include_plotlyjs=False, full_html=False,
                                    div_id=f"plot-{index}", config={"displaylogo": False})
                      + "</div>")
    period = (f"since {data.since:%Y-%m-%d %H:%M} UTC" if data.since else "everything")
    made = datetime.now(UTC)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>newsbeam report: {html.escape(out)}</title>",
        f"<style>{_STYLE}</style>",
        f"<script>{get_plotlyjs()}</script>",
        "</head><body>",
        "<h1>newsbeam report</h1>",
        f'<p class="meta">{html.escape(out)}: {period}; {len(data.records)} articles,'
        f" {len(data.dead_letters)} dead letters, {len(data.summaries)} run and window"
        f" summaries; feed health from {html.escape(data.health_source)}. Made"
        f" {made:%Y-%m-%d %H:%M} UTC.</p>",
        *charts,
        _worst_feeds_table(data),
        "</body></html>",
    ])


def _worst_feeds_table(data: ReportData) -> str:
    rows = worst_feeds(data)
    if not data.health:
        return ("<h2>Feeds to look at</h2><p>No feed health found: no state store, and no"
                " --feed-health files in the folder.</p>")
    if not rows:
        return "<h2>Feeds to look at</h2><p>None: every feed is healthy.</p>"
    cells = []
    for row in rows:
        colour = CLASS_COLOURS.get(row["health_class"], "#222")
        cells.append(
            "<tr>"
            f'<td class="class" style="color:{colour}">{html.escape(row["health_class"])}</td>'
            f'<td>{html.escape(row.get("feed_title") or "")}<br>'
            f'<code>{html.escape(row["id"])}</code></td>'
            f'<td>{html.escape(row["class_reason"])}</td>'
            f"<td>{_text(row.get('last_failure_reason'))}"
            f" {_text(row.get('last_status'))}</td>"
            f"<td>{_text(row.get('last_poll'))}</td>"
            f"<td>{_text(row.get('last_new_article'))}</td>"
            "</tr>")
    return ("<h2>Feeds to look at</h2><table><tr><th>class</th><th>feed</th><th>why</th>"
            "<th>last failure</th><th>last poll</th><th>last new article</th></tr>"
            + "".join(cells) + "</table>")


def _text(value: Any) -> str:
    return "" if value is None else html.escape(str(value))
