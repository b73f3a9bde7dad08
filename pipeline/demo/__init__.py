"""The offline demo: a bundled sample site served on loopback, run through the real pipeline.

The sample (demo_sample/ here) has three feeds of The Harbour Ledger, an invented newspaper:
an RSS 2.0 world feed, an Atom 1.0 markets feed and an ill-formed RSS feed from an old CMS; and
their article pages, rendered into a page with a realistic site's chrome (navigation, ads,
related links, newsletter box, comments, footer). Some entries fail on purpose (a removed page,
a PDF, an entry with no link), and some stories are in two feeds, so the summary shows
duplicates and dead letters as a real run would.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

import yaml

from pipeline.demo.loopback import LoopbackServer, Route
from transforms.core import Feed

SAMPLE = "demo_sample"
BASE_PLACEHOLDER = "@BASE@"

FEED_FILES = (
    ("world.rss", "The Harbour Ledger - World", "application/rss+xml; charset=utf-8"),
    ("markets.atom", "The Harbour Ledger - Markets", "application/atom+xml; charset=utf-8"),
    ("us-desk.xml", "The Harbour Ledger - U.S. desk", "text/xml"),
)
# Validators as real servers send them: one feed has an ETag, one a Last-Modified date, and the
# old CMS behind the ill-formed feed has neither (so it is always fetched in full).
FEED_VALIDATORS = {
    "world.rss": {"ETag": '"world-20240602-1"'},
    "markets.atom": {"Last-Modified": "Tue, 04 Mar 2025 07:45:00 GMT"},
    "us-desk.xml": {},
}
SECTION_NAMES = {"world": "World", "asia": "Asia-Pacific", "business": "Business & Markets",
                 "us": "U.S."}
PDF_PATH = "/reports/2024/overdose-deaths-by-state.pdf"


def _sample(name: str) -> str:
    return resources.files("pipeline.demo").joinpath(SAMPLE, name).read_text(encoding="utf-8")


def sample_articles() -> list[dict[str, Any]]:
    """The sample's articles: path, title, author, published, description, paragraphs."""
    articles: list[dict[str, Any]] = yaml.safe_load(_sample("articles.yaml"))
    return articles


def render_page(article: dict[str, Any], base_url: str) -> bytes:
    """An article page: the sample's paragraphs inside the site's chrome."""
    def esc(value: str) -> str:
        return html.escape(value, quote=True)

    paragraphs = "\n".join(f"      <p>{esc(p)}</p>" for p in article["paragraphs"])
    page = _sample("page.html").format(
        title=esc(article["title"]),
        description=esc(article["description"]),
        author=esc(article["author"]),
        author_slug=esc(article["author"].lower().replace(" ", "-")),
        url=esc(base_url + article["path"]),
        published=esc(article["published"]),
        published_human=esc(article["published"][:10]),
        section=esc(article["section"]),
        section_name=esc(SECTION_NAMES.get(article["section"], article["section"])),
        paragraphs=paragraphs,
    )
    return page.encode("utf-8")


def sample_server(host: str = "127.0.0.1") -> LoopbackServer:
    """A started loopback server with the sample's feeds and pages (stop it when done)."""
    server = LoopbackServer({}, host=host).start()
    base = server.base_url
    for name, _, content_type in FEED_FILES:
        body = _sample(f"feeds/{name}").replace(BASE_PLACEHOLDER, base).encode("utf-8")
        server.routes[f"/feeds/{name}"] = Route(
            body, headers={"Content-Type": content_type, **FEED_VALIDATORS[name]}
        )
    for article in sample_articles():
        server.routes[article["path"]] = Route(
            render_page(article, base), headers={"Content-Type": "text/html; charset=utf-8"}
        )
    server.routes[PDF_PATH] = Route(
        b"%PDF-1.4\n% newsbeam demo: a report that is not an article page\n",
        headers={"Content-Type": "application/pdf"},
    )
    return server


def sample_feeds(server: LoopbackServer) -> tuple[Feed, ...]:
    """The feeds to run the demo with, pointing at `server`."""
    return tuple(
        Feed(url=server.url(f"/feeds/{name}"), name=title, tags=("demo",), index=index)
        for index, (name, title, _) in enumerate(FEED_FILES)
    )
