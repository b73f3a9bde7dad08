"""Feeds files (YAML and OPML) and topic taxonomies: what loads, and the one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apache_beam.io.localfilesystem import LocalFileSystem

from pipeline.cli.feeds_file import load_feeds
from transforms.core import ConfigError
from transforms.topics import load_taxonomy, parse_taxonomy


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_feeds_with_names_tags_and_bare_urls(tmp_path: Path) -> None:
    path = _write(tmp_path, "feeds.yaml", """
feeds:
  - url: https://news.example/world.rss
    name: World
    tags: [world, asia]
  - https://news.example/markets.atom
""")
    feeds = load_feeds(path)
    assert [(f.url, f.name, f.tags, f.index) for f in feeds] == [
        ("https://news.example/world.rss", "World", ("world", "asia"), 0),
        ("https://news.example/markets.atom", None, (), 1),
    ]


OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="News" title="News">
      <outline text="Asia" title="Asia">
        <outline type="rss" text="Asia desk" xmlUrl="https://news.example/asia.rss"
                 htmlUrl="https://news.example/asia/"/>
      </outline>
      <outline type="rss" text="Markets" xmlUrl="https://news.example/markets.atom"
               category="/economy,trade"/>
    </outline>
    <outline type="rss" title="Health" xmlUrl="https://news.example/health.xml"/>
    <outline text="Also in Asia" xmlUrl="https://news.example/asia.rss"/>
  </body>
</opml>
"""


def test_opml_nested_outlines_folders_become_tags(tmp_path: Path) -> None:
    # Chosen by content: the extension says YAML, the file is OPML.
    feeds = load_feeds(_write(tmp_path, "subscriptions.yaml", OPML))
    assert [(f.url, f.name, f.tags) for f in feeds] == [
        ("https://news.example/asia.rss", "Asia desk", ("News", "Asia")),
        ("https://news.example/markets.atom", "Markets", ("News", "economy", "trade")),
        ("https://news.example/health.xml", "Health", ()),
    ]
    assert [f.index for f in feeds] == [0, 1, 2]


@pytest.mark.parametrize(("text", "message"), [
    ("feeds: []", "no feeds listed"),
    ("feeds: https://x.example/feed", "'feeds' must be a list, got str"),
    ("sources: [https://x.example/feed]", "expected a mapping with a 'feeds' list"),
    ("feeds:\n  - name: no url here", "feeds[0]: missing 'url'"),
    ("feeds:\n  - url: ftp://x.example/feed", "feeds[0].url: 'ftp://x.example/feed' is not an"),
    ("feeds:\n  - url: https://x.example/a\n  - url: /relative/feed",
     "feeds[1].url: '/relative/feed' is not an absolute http(s) URL"),
    ("feeds:\n  - url: https://x.example/a\n    tag: [oops]", "feeds[0]: unknown key 'tag'"),
    ("feeds:\n  - url: https://x.example/a\n    tags: world", "feeds[0].tags: expected a list"),
    ("feeds: [\n", "invalid YAML (line 2, column 1)"),
    ("<opml><body><outline xmlUrl='nope'/></body></opml>", "is not an absolute http(s) URL"),
    ("<rss><channel/></rss>", "an XML feeds file must be OPML, found <rss>"),
    ("<opml><body>", "not well-formed XML"),
])
def test_bad_feeds_files_name_the_file_entry_and_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, "feeds.yaml", text)
    with pytest.raises(ConfigError) as error:
        load_feeds(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_feeds_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_feeds(tmp_path / "absent.yaml")


class _FolderFileSystem(LocalFileSystem):
    """A Beam file system for `folder://PATH` URLs, standing in for gs:// and s3:// (Beam
    finds file systems by their scheme among the subclasses of FileSystem)."""

    @classmethod
    def scheme(cls) -> str:
        return "folder"

    def open(self, path: str, *args: Any, **kwargs: Any) -> Any:
        return super().open(path.removeprefix("folder://"), *args, **kwargs)


def test_config_files_are_read_through_beams_file_systems_when_given_a_url(
    tmp_path: Path,
) -> None:
    # How a Dataflow Flex Template's launcher gets them: gs://..., read by Beam's FileSystems.
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text("feeds: [https://news.example/rss]\n")
    feeds = load_feeds(f"folder://{feeds_file}")
    assert [feed.url for feed in feeds] == ["https://news.example/rss"]
    with pytest.raises(ConfigError, match=r"^folder:///nowhere/feeds.yaml: cannot read: "):
        load_feeds("folder:///nowhere/feeds.yaml")
    with pytest.raises(ConfigError, match=r"^nofs://bucket/feeds.yaml: cannot read: Unable"):
        load_feeds("nofs://bucket/feeds.yaml")  # a scheme Beam has no file system for


def test_bundled_taxonomy_has_the_three_default_topics() -> None:
    taxonomy = load_taxonomy()
    assert [t.name for t in taxonomy.topics] == ["taiwan", "trade", "fentanyl"]
    assert taxonomy.version


def test_taxonomy_terms_aliases_patterns(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(_write(tmp_path, "topics.yaml", """
version: "7"
topics:
  - name: chips
    terms: [semiconductor, {term: TSMC, case_sensitive: true, weight: 2}]
    aliases: [半导体]
    patterns:
      - '\\bchip ?makers?\\b'
      - {pattern: 'fabs?\\b', label: fab, weight: 0.5, requires: [fab, fabs]}
    exclude: [potato chips]
    mention: 2
    relevance: {headline: 1.5, section: null}
"""))
    (topic,) = taxonomy.topics
    assert taxonomy.version == "7"
    assert [(t.text, t.weight, t.case_sensitive, t.pattern) for t in topic.terms] == [
        ("semiconductor", 1.0, False, False), ("TSMC", 2.0, True, False),
        ("半导体", 1.0, False, False), ("\\bchip ?makers?\\b", 1.0, False, True),
        ("fabs?\\b", 0.5, False, True),
    ]
    assert (topic.terms[-1].label, topic.terms[-1].requires) == ("fab", ("fab", "fabs"))
    assert topic.exclusions == ("potato chips",) and topic.mention == 2.0
    assert topic.relevance is not None and topic.relevance.headline == 1.5
    assert topic.relevance.section == float("inf")


@pytest.mark.parametrize(("text", "message"), [
    ("topics: []", "'version' is required"),
    ("version: 1\ntopics: []", "'topics' must be a non-empty list"),
    ("version: 1\ntopics:\n  - name: Bad Name\n    terms: [x]", "topics[0].name: expected a"),
    ("version: 1\ntopics:\n  - name: a\n    terms: [x]\n    treshold: 2",
     "topics[0] (a): unknown key 'treshold'"),
    ("version: 1\ntopics:\n  - name: a", "topics[0] (a): needs at least one of"),
    ("version: 1\ntopics:\n  - name: a\n    terms: [x]\n    relevance: {share: high}",
     "topics[0] (a).relevance.share: expected a non-negative number, got 'high'"),
    ("version: 1\ntopics:\n  - name: a\n    terms: [x]\n    relevance: {shares: 0.2}",
     "topics[0] (a).relevance: unknown key 'shares'"),
    ("version: 1\ntopics:\n  - name: a\n    terms: [x]\n    mention: 0",
     "topics[0] (a).mention: expected a positive number, got 0"),
    ("version: 1\ntopics:\n  - name: a\n    patterns: ['(unclosed']",
     "topics[0] (a).patterns[0]: invalid regular expression"),
    ("version: 1\ntopics:\n  - name: a\n    patterns: [{pattern: x, requires: y}]",
     "topics[0] (a).patterns[0].requires: expected a list of non-empty strings"),
    ("version: 1\ntopics:\n  - name: a\n    patterns: [{regex: x}]",
     "topics[0] (a).patterns[0]: expected a string or a mapping with 'pattern'"),
    ("version: 1\ntopics:\n  - name: a\n    terms: [{weight: 2}]",
     "topics[0] (a).terms[0]: expected a string or a mapping with 'term'"),
    ("version: 1\ntopics:\n  - {name: a, terms: [x]}\n  - {name: a, terms: [y]}",
     "topic 'a' is defined more than once"),
])
def test_bad_taxonomies_name_the_topic_and_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_taxonomy(text, "topics.yaml")
    assert str(error.value).startswith("topics.yaml")
    assert message in str(error.value)
