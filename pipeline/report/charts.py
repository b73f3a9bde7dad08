"""The report's charts, drawn with Plotly (its figures; the page embeds plotly.js itself, so it
opens offline)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from pipeline.report.data import ReportData

CLASS_COLOURS = {"healthy": "#2e7d32", "quiet": "#f9a825", "failing": "#ef6c00",
                 "dead": "#c62828"}
TOP_HOSTS = 20


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _stacked_by_hour(items: list[tuple[datetime, str]], title: str, y_title: str) -> Any:
    """A bar per hour, stacked by the items' series."""
    import plotly.graph_objects as go

    hours = sorted({_hour(at) for at, _ in items})
    counts: dict[str, Counter[datetime]] = defaultdict(Counter)
    for at, series in items:
        counts[series][_hour(at)] += 1
    figure = go.Figure([go.Bar(name=series, x=hours, y=[by_hour[h] for h in hours])
                        for series, by_hour in sorted(counts.items())])
    figure.update_layout(barmode="stack", title=title, yaxis_title=y_title,
                         xaxis_title="hour (UTC)", legend_title_text="")
    return _or_empty(figure, bool(items))


def articles_by_topic(data: ReportData) -> Any:
    """Records per hour of their fetch, by topic (an article about two topics counts in
    both; one about none, as "no topic")."""
    items = [(record["fetched_at"], topic) for record in data.records
             for topic in (record["topics"] or ["no topic"])]
    return _stacked_by_hour(items, "Articles per hour, by topic", "articles")


def dead_letters_by_reason(data: ReportData) -> Any:
    items = [(letter["at"], f"{letter['stage']}: {letter['reason']}")
             for letter in data.dead_letters]
    return _stacked_by_hour(items, "Dead letters per hour, by stage and reason", "dead letters")


def feeds_by_class(data: ReportData) -> Any:
    import plotly.graph_objects as go

    classes = Counter(row["health_class"] for row in data.health)
    names = list(CLASS_COLOURS)
    figure = go.Figure(go.Bar(x=names, y=[classes.get(name, 0) for name in names],
                              marker_color=[CLASS_COLOURS[name] for name in names]))
    figure.update_layout(title=f"Feeds by health class ({len(data.health)} feeds)",
                         yaxis_title="feeds")
    return _or_empty(figure, bool(data.health))


def politeness_waits(data: ReportData) -> Any:
    """Seconds spent waiting for each host's turn (its interval, or its Crawl-delay), the
    hosts that waited longest."""
    import plotly.graph_objects as go

    waits: Counter[str] = Counter()
    for summary in data.summaries:
        waits.update(summary.get("politeness_waits_ms") or {})
    top = waits.most_common(TOP_HOSTS)[::-1]  # longest at the top of a horizontal chart
    figure = go.Figure(go.Bar(x=[ms / 1000 for _, ms in top], y=[host for host, _ in top],
                              orientation="h"))
    figure.update_layout(title=f"Politeness waits per host (the {TOP_HOSTS} longest)",
                         xaxis_title="seconds waited")
    return _or_empty(figure, bool(top))


def extraction_methods(data: ReportData) -> Any:
    import plotly.graph_objects as go

    methods = Counter(record["extraction_method"] for record in data.records)
    figure = go.Figure(go.Bar(x=list(methods), y=list(methods.values())))
    figure.update_layout(title="Articles by extraction method", yaxis_title="articles")
    return _or_empty(figure, bool(methods))


def _or_empty(figure: Any, has_data: bool) -> Any:
    """A chart with nothing to show says so, rather than drawing empty axes silently."""
    if not has_data:
        figure.add_annotation(text="nothing in this period", showarrow=False,
                              xref="paper", yref="paper", x=0.5, y=0.5)
    return figure


CHARTS = (articles_by_topic, dead_letters_by_reason, feeds_by_class, politeness_waits,
          extraction_methods)


SEVERITY = {"dead": 0, "failing": 1, "quiet": 2, "healthy": 3}


def worst_feeds(data: ReportData, limit: int = 25) -> list[dict[str, Any]]:
    """The feeds to look at first: dead, then failing, then quiet; the longest failing
    first within a class."""
    rows = [row for row in data.health if row["health_class"] != "healthy"]
    rows.sort(key=lambda row: (SEVERITY.get(row["health_class"], 9),
                               -row["consecutive_failures"], row["id"]))
    return rows[:limit]
