"""The report's charts, drawn with Plotly (its figures; the page embeds plotly.js itself, so it
opens offline)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.report.data import ReportData

CLASS_COLOURS = {"healthy": "#2e7d32", "quiet": "#f9a825", "failing": "#ef6c00",
                 "dead": "#c62828"}
TOP_HOSTS = 20


# Bucket sizes by the period the report covers: (longest span, bucket seconds, its name).
BUCKETS = ((3 * 3600, 300, "5 minutes"), (3 * 86400, 3600, "hour"), (float("inf"), 86400, "day"))


def _bucket(times: list[datetime]) -> tuple[int, str]:
    """The bucket for these times, by the span they cover: five minutes over a few hours,
    hours over a few days, else days."""
    span = (max(times) - min(times)).total_seconds() if times else 0.0
    for longest, seconds, name in BUCKETS:
        if span <= longest:
            return seconds, name
    return BUCKETS[-1][1], BUCKETS[-1][2]


def _stacked_over_time(items: list[tuple[datetime, str]], what: str, y_title: str) -> Any:
    """A bar per bucket of time, stacked by the items' series."""
    import plotly.graph_objects as go

    seconds, name = _bucket([at for at, _ in items])

    def bucket(at: datetime) -> datetime:
        return datetime.fromtimestamp(at.timestamp() // seconds * seconds, UTC)

    buckets = sorted({bucket(at) for at, _ in items})
    counts: dict[str, Counter[datetime]] = defaultdict(Counter)
    for at, series in items:
        counts[series][bucket(at)] += 1
    # Bars a bucket wide (less a gap), centred in their bucket, on a time axis.
    width = seconds * 1000 * 0.8
    middle = [start + timedelta(seconds=seconds / 2) for start in buckets]
    figure = go.Figure([go.Bar(name=series, x=middle, y=[by_bucket[b] for b in buckets],
                               width=[width] * len(buckets))
                        for series, by_bucket in sorted(counts.items())])
    if buckets:  # a bucket of room either side, so one bucket alone is not the whole axis
        figure.update_xaxes(range=[buckets[0] - timedelta(seconds=seconds),
                                   buckets[-1] + timedelta(seconds=2 * seconds)])
    figure.update_layout(barmode="stack", title=f"{what} per {name}", yaxis_title=y_title,
                         xaxis_title="time (UTC)", xaxis_type="date", legend_title_text="")
    return _or_empty(figure, bool(items))


def articles_by_topic(data: ReportData) -> Any:
    """Records over the time of their fetch, by topic (an article about two topics counts in
    both; one about none, as "no topic")."""
    items = [(record["fetched_at"], topic) for record in data.records
             for topic in (record["topics"] or ["no topic"])]
    return _stacked_over_time(items, "Articles by topic", "articles")


def dead_letters_by_reason(data: ReportData) -> Any:
    items = [(letter["at"], f"{letter['stage']}: {letter['reason']}")
             for letter in data.dead_letters]
    return _stacked_over_time(items, "Dead letters by stage and reason", "dead letters")


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
    """The feeds to look at first: dead, then failing, then quiet; the most failures in a
    row first within a class."""
    rows = [row for row in data.health if row["health_class"] != "healthy"]
    rows.sort(key=lambda row: (SEVERITY.get(row["health_class"], 9),
                               -row["consecutive_failures"], row["id"]))
    return rows[:limit]
