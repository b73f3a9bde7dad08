"""A PostgreSQL URI may name a Secret Manager secret instead of carrying its password, so the
password never shows in a job's options; a private feed's credentials are sent to its site
and shown nowhere else."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import transforms.core.secrets as secrets
from pipeline import demo
from pipeline.cli import main
from pipeline.demo.loopback import Handler, LoopbackServer, RequestHandler, Route
from transforms.core import SecretError, mask_userinfo, with_secret_password
from transforms.state import StateError, open_state

NAME = "projects/news/secrets/newsbeam-db/versions/latest"


def test_the_secret_becomes_the_password_and_leaves_the_query() -> None:
    asked = []

    def fetch(name: str) -> str:
        asked.append(name)
        return "p@ss w:rd/1\n"  # as a secret file is often saved, with a newline

    uri = f"postgresql://newsbeam@10.0.0.5:5432/news?password_secret={NAME}&sslmode=require"
    assert with_secret_password(uri, fetch) == (
        "postgresql://newsbeam:p%40ss%20w%3Ard%2F1@10.0.0.5:5432/news?sslmode=require")
    assert asked == [NAME]
    ipv6 = f"postgresql://newsbeam@[fd00::5]/news?password_secret={NAME}"
    assert with_secret_password(ipv6, fetch) == "postgresql://newsbeam:p%40ss%20w%3Ard%2F1@[fd00::5]/news"


def test_a_uri_without_a_secret_is_left_alone() -> None:
    uri = "postgresql://newsbeam:kept@db:5432/news?table=articles"

    def fetch(name: str) -> str:
        raise AssertionError("nothing to fetch")

    assert with_secret_password(uri, fetch) == uri


def test_a_secret_that_cannot_be_read_is_one_line_naming_it() -> None:
    def fetch(name: str) -> str:
        raise PermissionError("403 Permission 'secretmanager.versions.access' denied\nmore")

    with pytest.raises(SecretError) as error:
        with_secret_password(f"postgresql://u@db/news?password_secret={NAME}", fetch)
    assert str(error.value) == (
        f"password_secret {NAME}: 403 Permission 'secretmanager.versions.access' denied")


@pytest.mark.services
def test_the_state_store_connects_with_the_secret(
    postgres_uri: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The local server trusts 127.0.0.1, so what this shows is that the store reads the secret
    # and hands PostgreSQL a URI it accepts (it refuses an unknown query parameter).
    asked = []
    monkeypatch.setattr(secrets, "secret_manager_value", lambda name: asked.append(name) or "pw")
    store = open_state(f"{postgres_uri}&password_secret={NAME}")
    assert store.committed_runs() == set()
    store.close()
    assert asked == [NAME]

    def denied(name: str) -> str:
        raise PermissionError("denied")

    monkeypatch.setattr(secrets, "secret_manager_value", denied)
    with pytest.raises(StateError, match=f"password_secret {NAME}: denied"):
        open_state(f"{postgres_uri}&password_secret={NAME}")


USER, TOKEN = "reader", "s3cret-token-81f2"


def _private_site() -> LoopbackServer:
    """A site that answers only requests with its Basic credentials: a feed whose entries link
    to pages on the same private site (relative links), one of which is gone (404)."""
    stories = demo.sample_articles()
    expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    site = LoopbackServer({}).start()

    def private(route: Route) -> Handler:
        def handle(handler: RequestHandler) -> None:
            if handler.headers.get("Authorization") != expected:
                handler.send_route(Route(b"who are you?", 401, {"Content-Type": "text/plain"}))
            else:
                handler.send_route(route)
        return handle

    items = ""
    for n, story in enumerate(stories[:3]):
        path = f"/private/{n}.html"
        items += f"<item><title>Private {n}</title><link>{path}</link></item>"
        if n != 2:
            site.routes[path] = private(Route(demo.render_page(story, site.base_url),
                                              headers={"Content-Type": "text/html"}))
    feed = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Private</title>"
            f"<link>/private/</link>{items}</channel></rss>").encode()
    site.routes["/private/feed.xml"] = private(
        Route(feed, headers={"Content-Type": "application/rss+xml"}))
    return site


@pytest.mark.slow
def test_feed_credentials_are_sent_but_never_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    site = _private_site()
    feed_url = f"http://{USER}:{TOKEN}@{site.base_url.removeprefix('http://')}/private/feed.xml"
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {feed_url}\n  - {feed_url.replace('feed.xml', 'gone.xml')}\n")
    out = tmp_path / "out"
    try:
        status = main(["--log-level=INFO", "run", "--feeds", str(feeds), "--out", str(out),
                       f"--state=sqlite:{tmp_path / 'state.db'}", "--allow-private-networks"])
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    finally:
        site.stop()
    printed = capsys.readouterr()
    records = [json.loads(line) for path in out.glob("articles-*.jsonl")
               for line in path.read_text().splitlines()]
    letters = [json.loads(line) for path in out.glob("dead-letters-*.jsonl")
               for line in path.read_text().splitlines()]
    # The site saw the credentials: two pages read, the feed, and the missing page and feed.
    assert status == 0, printed.err
    assert len(records) == 2
    assert len(letters) == 2
    assert all(letter["reason"] == "http_status" and "404" in letter["message"]
               for letter in letters)
    masked = f"http://***@{site.base_url.removeprefix('http://')}"
    assert {record["feed_url"] for record in records} == {f"{masked}/private/feed.xml"}
    assert all(record["url"].startswith(f"{masked}/private/") for record in records)
    assert {letter["feed_url"] for letter in letters} == {
        f"{masked}/private/feed.xml", f"{masked}/private/gone.xml"}
    written = [path.read_text() for path in out.rglob("*") if path.is_file()]
    for text in (*written, printed.out, printed.err):
        assert TOKEN not in text and f"{USER}:" not in text


@pytest.mark.parametrize(("shown", "masked"), [
    ("https://user:tok@news.example/feed.xml", "https://***@news.example/feed.xml"),
    ("https://ghp_tokenonly@news.example/f?x=1", "https://***@news.example/f?x=1"),
    ("http://u:p@[::1]:8080/feed", "http://***@[::1]:8080/feed"),
    ("https://news.example/feed.xml", "https://news.example/feed.xml"),
    ("https://news.example/a@b.html", "https://news.example/a@b.html"),  # an @ in the path
    ("GET https://a:b@x.example/1 failed, then https://c@y.example/2",
     "GET https://***@x.example/1 failed, then https://***@y.example/2"),
])
def test_user_information_is_masked_wherever_a_url_is_shown(shown: str, masked: str) -> None:
    assert mask_userinfo(shown) == masked


def test_a_secret_that_cannot_be_read_stops_the_lease_in_one_line(
    postgres_uri: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.job.lease import state_lease

    def denied(name: str) -> str:
        raise PermissionError("denied")

    monkeypatch.setattr(secrets, "secret_manager_value", denied)
    with (pytest.raises(StateError, match=f"password_secret {NAME}: denied"),
          state_lease(f"{postgres_uri}&password_secret={NAME}", "run")):
        pass
