"""Canonical URLs and article ids."""

from __future__ import annotations

import pytest

from transforms.core import article_id, canonical_url


@pytest.mark.parametrize(("url", "canonical"), [
    ("HTTPS://News.Example.COM:443/World/Story.html#comments",
     "https://news.example.com/World/Story.html"),
    ("http://news.example.com:80", "http://news.example.com/"),
    ("http://news.example.com:8080/a", "http://news.example.com:8080/a"),
    ("https://n.example/a?utm_source=rss&utm_medium=feed&id=7&fbclid=x&gclid=y",
     "https://n.example/a?id=7"),
    ("https://n.example/a?b=2&a=1&a=0", "https://n.example/a?a=0&a=1&b=2"),
    ("https://n.example/a?", "https://n.example/a"),
    ("https://n.example/a?page=", "https://n.example/a?page="),
    ("https://user:pw@n.example/a", "https://n.example/a"),
    ("http://[::1]:8080/a", "http://[::1]:8080/a"),
])
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_article_id_is_stable_and_shared_by_tracking_variants() -> None:
    plain = article_id(canonical_url("https://n.example/story"))
    tracked = article_id(canonical_url("https://N.example/story?utm_campaign=x#top"))
    assert plain == tracked
    # Pinned: ids are a contract across runs and releases (the first 128 bits of SHA-256).
    assert plain == "24f9d735b2b14e6e8d74a9715969ef64"
    assert article_id(canonical_url("https://n.example/other")) != plain
