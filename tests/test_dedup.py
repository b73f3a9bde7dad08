"""Canonical URLs, article ids, dead-letter ids and content fingerprints: identities that are
contracts across runs and releases."""

from __future__ import annotations

import hashlib

import pytest

from transforms.core import article_id, canonical_url, content_fingerprint
from transforms.core.dead_letters import letter_id


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
    # Tracking parameters are recognised whatever their case, by name or by prefix.
    ("https://n.example/a?UTM_Source=x&FBCLID=y&Mc_Cid=z&id=1", "https://n.example/a?id=1"),
    ("https://n.example/a?pk_campaign=x&mtm_kwd=y&utm=kept", "https://n.example/a?utm=kept"),
    # A default port is dropped only for its own scheme.
    ("http://n.example:443/a", "http://n.example:443/a"),
    ("https://n.example:80/a", "https://n.example:80/a"),
    ("https://n.example:443/a", "https://n.example/a"),
    ("https://n.example./a", "https://n.example/a"),  # the root's trailing dot
    ("https://news.box/a", "https://news.box/a"),  # only dots are stripped
    ("https:///a", "https:///a"),  # no host at all
    ("  https://n.example/a\n", "https://n.example/a"),  # as a feed's <link> often has it
    ("https://n.example", "https://n.example/"),
    ("https://n.example/A%20b?q=Caps", "https://n.example/A%20b?q=Caps"),
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


def test_the_article_id_is_the_first_128_bits_of_the_canonical_urls_sha256() -> None:
    canonical = "https://n.example/story"
    assert article_id(canonical) == hashlib.sha256(canonical.encode()).hexdigest()[:32]
    assert len(article_id("https://n.example/x")) == 32


def test_a_dead_letter_id_is_pinned_and_keyed_by_stage_subject_feed_and_what_was_lost() -> None:
    key = ("fetch_pages", "entry", "https://n.example/feed", "abc")
    assert letter_id(*key) == "0e1274d7736009b9c679673e4a55d322"
    changed = [letter_id(*key[:index], "other", *key[index + 1:]) for index in range(4)]
    assert len({letter_id(*key), *changed}) == 5  # each part counts
    assert all(len(value) == 32 for value in changed)


def test_the_content_fingerprint_ignores_case_whitespace_and_punctuation_only() -> None:
    fingerprint = content_fingerprint("Taiwan  Strait\ntensions rise.")
    assert fingerprint == content_fingerprint("taiwan strait TENSIONS rise")
    assert fingerprint != content_fingerprint("Taiwan Strait tensions fall")
    assert fingerprint == "sha256:" + hashlib.sha256(b"taiwan strait tensions rise").hexdigest()
