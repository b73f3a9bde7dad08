"""`newsbeam report`: one HTML page from what runs wrote, opened in headless Chromium (Debian's,
with no network): every chart drew, and the page logged nothing to its console."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.demo.loopback import LoopbackServer, Route

pytestmark = pytest.mark.slow

CHARTS = ("articles_by_topic", "dead_letters_by_reason", "feeds_by_class", "politeness_waits",
          "extraction_methods")


def _rss(base: str, items: list[str]) -> bytes:
    entries = "".join(f"<item><title>Taiwan trade {item}</title><link>{base}/a/{item}</link>"
                      "</item>" for item in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>{entries}'
            "</channel></rss>").encode()


def _page(title: str) -> bytes:
    text = (f"{title}. Taiwan and the mainland argued over tariffs and trade again. " * 30)
    return f"<html><body><article><h1>{title}</h1><p>{text}</p></article></body></html>".encode()


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [f"{tag} {name}={value}" for name, value in attrs
                       if name in ("src", "href") and value and not value.startswith("#")]


def _external_references(text: str) -> list[str]:
    """The page's elements that load something (a script, a style sheet, an image)."""
    parser = _References()
    parser.feed(text)
    return parser.found


def _chart(page: str, name: str) -> str:
    """The markup of one chart's div (up to the next chart's)."""
    return page.split(f'data-chart="{name}"', 1)[1].split('class="chart"', 1)[0]


def _console(stderr: str) -> list[str]:
    """What the page logged to its console (Chromium's own pages, chrome://, left out)."""
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line and "source: chrome://" not in line]


def test_the_report_draws_every_chart_offline(
    tmp_path: Path, chromium: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    out, state = tmp_path / "out", f"sqlite:{tmp_path / 'state.db'}"
    with LoopbackServer({}) as site:
        rss = {"Content-Type": "application/rss+xml"}
        site.routes["/desk.xml"] = Route(_rss(site.base_url, ["one", "two"]), headers=rss)
        site.routes["/gone.xml"] = Route(b"", 404)
        for item in ("one", "two", "three"):
            site.routes[f"/a/{item}"] = Route(_page(item), headers={"Content-Type": "text/html"})
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds:\n  - url: {site.url('/desk.xml')}\n"
                         f"  - url: {site.url('/gone.xml')}\n")
        argv = ["run", "--feeds", str(feeds), "--out", str(out), "--allow-private-networks",
                f"--state={state}", "--host-interval=0.2"]
        assert main(argv) == 0
        site.routes["/desk.xml"] = Route(_rss(site.base_url, ["one", "two", "three"]),
                                         headers=rss)
        assert main(argv) == 0
    page = tmp_path / "report.html"
    assert main(["report", "--out", str(out), f"--state={state}", "--since=1d",
                 "--html", str(page)]) == 0
    assert capsys.readouterr().out.endswith(
        f"report: {page} (3 articles, 2 dead letters, 2 feeds)\n")
    text = page.read_text()
    assert _external_references(text) == []  # opens offline (Chromium below has no network)
    assert "gone.xml" in text and "the last poll answered 404" in text  # the worst feeds

    drawn = subprocess.run([*chromium, "--virtual-time-budget=15000", "--enable-logging=stderr",
                            "--v=0", "--dump-dom", page.as_uri()],
                           capture_output=True, text=True, timeout=120)
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert _console(drawn.stderr) == []
    # Each chart's div holds the SVG Plotly drew in the browser (none is in the file).
    for name in CHARTS:
        assert "<svg" not in _chart(text, name), name
        assert 'class="main-svg"' in _chart(drawn.stdout, name), name
        assert "nothing in this period" not in _chart(text, name), name  # each has data
    shot = tmp_path / "report.png"
    subprocess.run([*chromium, "--virtual-time-budget=15000", "--window-size=1300,3300",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120,
                   check=True)
    assert shot.stat().st_size > 50_000  # five charts and a table, not a blank page
