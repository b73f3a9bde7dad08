"""Loading the feeds file (YAML or OPML) and the topic taxonomy (YAML), with clear errors.

Every problem becomes one `ConfigError` whose message names the file, the entry and what is
wrong, e.g. `feeds.yaml: feeds[2].url: 'ftp://x' is not an http(s) URL`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import lxml.etree
import yaml
from apache_beam.io.filesystems import FileSystems

from pipeline.durations import parse_duration
from transforms.core import Feed, mask_userinfo
from transforms.fetch import FetchError, validate_url
from transforms.topics import DEFAULT_RELEVANCE, INFINITE, Relevance, Taxonomy, Term, Topic

log = logging.getLogger(__name__)

DEFAULT_TOPICS = "default_topics.yaml"
# libyaml's loader where PyYAML was built with it: much faster on a large taxonomy, with the
# same safe subset of YAML.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TOPIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TOPIC_KEYS = {
    "name", "description", "terms", "aliases", "patterns", "exclude", "mention", "relevance",
}
# Keys of topics files written for the tagger before its relevance followed the article's
# layout: still accepted, so those files load, and reported as unused.
_RETIRED_TOPIC_KEYS = {"title_boost", "lead_boost", "about", "reference_words"}
_RELEVANCE_KEYS = {field.name for field in dataclasses.fields(Relevance)}
_TERM_KEYS = {"term", "weight", "case_sensitive"}
_PATTERN_KEYS = {"pattern", "weight", "case_sensitive", "label", "requires"}
_FEED_KEYS = {"url", "name", "tags", "poll_interval"}

T = TypeVar("T")


class ConfigError(Exception):
    """A feeds or topics file that cannot be used; the message is one line for the user."""


# ---------------------------------------------------------------------------------------------
# Feeds


def load_feeds(path: str | Path) -> tuple[Feed, ...]:
    """The feeds in a YAML feeds file or an OPML export, told apart by content, not extension."""
    source = str(path)
    data = _read(path)
    text = data.decode("utf-8-sig", errors="replace").lstrip()
    feeds = _opml_feeds(data, source) if text.startswith("<") else _yaml_feeds(text, source)
    if not feeds:
        raise ConfigError(f"{source}: no feeds listed")
    return _merge_duplicates(feeds, source)


def _yaml_feeds(text: str, source: str) -> list[Feed]:
    document = _yaml(text, source)
    if not isinstance(document, dict) or "feeds" not in document:
        raise ConfigError(f"{source}: expected a mapping with a 'feeds' list (or an OPML file)")
    items = document["feeds"]
    if not isinstance(items, list):
        raise ConfigError(f"{source}: 'feeds' must be a list, got {_kind(items)}")
    feeds = []
    for index, item in enumerate(items):
        where = f"{source}: feeds[{index}]"
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping with 'url', got {_kind(item)}")
        _no_unknown_keys(item, _FEED_KEYS, where)
        if "url" not in item:
            raise ConfigError(f"{where}: missing 'url'")
        url = _feed_url(item["url"], f"{where}.url")
        name = _optional(item.get("name"), str, f"{where}.name")
        tags = _string_list(item.get("tags", []), f"{where}.tags")
        poll_interval = _duration(item["poll_interval"], f"{where}.poll_interval") if (
            "poll_interval" in item) else None
        feeds.append(Feed(url=url, name=name, tags=tags, index=index,
                          poll_interval=poll_interval))
    return feeds


def _opml_feeds(data: bytes, source: str) -> list[Feed]:
    # No entity expansion and no network: an OPML file is untrusted input.
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
    try:
        root = lxml.etree.fromstring(data, parser)
    except lxml.etree.XMLSyntaxError as exc:
        raise ConfigError(f"{source}: not well-formed XML (OPML expected): {exc}") from None
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise ConfigError(f"{source}: an XML feeds file must be OPML, found <{root.tag}>")
    feeds: list[Feed] = []

    def walk(element: Any, folders: tuple[str, ...]) -> None:
        for outline in element.iterchildren("outline"):
            label = (outline.get("title") or outline.get("text") or "").strip()
            xml_url = outline.get("xmlUrl") or outline.get("xmlurl")
            if xml_url is not None:
                where = f"{source}: outline {label or xml_url!r} (line {outline.sourceline})"
                categories = tuple(
                    c.strip().strip("/") for c in (outline.get("category") or "").split(",")
                )
                tags = tuple(dict.fromkeys(t for t in folders + categories if t))
                feeds.append(
                    Feed(url=_feed_url(xml_url.strip(), where), name=label or None, tags=tags,
                         index=len(feeds))
                )
            walk(outline, folders + ((label,) if label and xml_url is None else ()))

    body = root.find("body")
    if body is None:
        raise ConfigError(f"{source}: OPML file has no <body>")
    walk(body, ())
    return feeds


def _feed_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a URL string, got {_kind(value)}")
    try:
        return validate_url(value.strip())
    except FetchError:
        raise ConfigError(f"{where}: {value!r} is not an absolute http(s) URL") from None


def _merge_duplicates(feeds: list[Feed], source: str) -> tuple[Feed, ...]:
    """A feed listed twice (common in OPML folders) is fetched once, with the tags of both."""
    merged: dict[str, Feed] = {}
    for feed in feeds:
        first = merged.get(feed.url)
        if first is None:
            merged[feed.url] = dataclasses.replace(feed, index=len(merged))
            continue
        log.warning("%s: feed %s is listed more than once; fetching it once", source,
                    mask_userinfo(feed.url))
        tags = tuple(dict.fromkeys(first.tags + feed.tags))
        merged[feed.url] = dataclasses.replace(
            first, name=first.name or feed.name, tags=tags,
            poll_interval=first.poll_interval or feed.poll_interval)
    return tuple(merged.values())


# ---------------------------------------------------------------------------------------------
# Topics


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The taxonomy in a topics YAML file, or the bundled default (taiwan, trade, fentanyl)."""
    if path is None:
        bundled = resources.files("pipeline").joinpath(DEFAULT_TOPICS)
        return parse_taxonomy(bundled.read_text(encoding="utf-8"), f"<bundled {DEFAULT_TOPICS}>")
    return parse_taxonomy(_read(path).decode("utf-8-sig", errors="replace"), str(path))


def parse_taxonomy(text: str, source: str) -> Taxonomy:
    """A Taxonomy from topics YAML text; `source` names the file in error messages."""
    document = _yaml(text, source)
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with 'version' and 'topics'")
    _no_unknown_keys(document, {"version", "topics", "relevance"}, source)
    version = document.get("version")
    if not isinstance(version, (str, int, float)) or not str(version).strip():
        raise ConfigError(f"{source}: 'version' is required (a string such as '2026.11')")
    items = document.get("topics")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{source}: 'topics' must be a non-empty list")
    relevance = _relevance(document.get("relevance"), f"{source}: relevance",
                           DEFAULT_RELEVANCE) or DEFAULT_RELEVANCE
    topics = [_topic(item, f"{source}: topics[{i}]", relevance) for i, item in enumerate(items)]
    names = [topic.name for topic in topics]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{source}: topic {name!r} is defined more than once")
    retired = sorted({key for item in items for key in item} & _RETIRED_TOPIC_KEYS)
    if retired:
        log.warning("%s: %s no longer used: a topic is 'about' an article by where its terms"
                    " are and how much of the text they cover (see 'relevance' in the README)",
                    source, ", ".join(retired))
    return Taxonomy(version=str(version).strip(), topics=tuple(topics), relevance=relevance)


def _relevance(item: Any, where: str, base: Relevance) -> Relevance | None:
    """Relevance thresholds from a `relevance` mapping (None where there is none); a key left
    out keeps `base`'s value, and null turns a criterion off."""
    if item is None:
        return None
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping of thresholds, got {_kind(item)}")
    _no_unknown_keys(item, _RELEVANCE_KEYS, where)
    values: dict[str, float] = {}
    for key, value in item.items():
        if value is None:
            values[key] = INFINITE
            continue
        number = _number(value, f"{where}.{key}")
        if number <= 0:
            raise ConfigError(f"{where}.{key}: expected a positive number, got {value!r}")
        values[key] = number
    return dataclasses.replace(base, **values)


def _topic(item: Any, where: str, taxonomy_relevance: Relevance) -> Topic:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_kind(item)}")
    name = item.get("name")
    if not isinstance(name, str) or not _TOPIC_NAME.match(name):
        raise ConfigError(
            f"{where}.name: expected a lower-case name of letters, digits, '-' or '_', got "
            f"{name!r}"
        )
    where = f"{where} ({name})"
    _no_unknown_keys(item, _TOPIC_KEYS | _RETIRED_TOPIC_KEYS, where)
    terms = [_term(t, f"{where}.terms[{i}]") for i, t in enumerate(item.get("terms") or [])]
    terms += [Term(text=a) for a in _string_list(item.get("aliases", []), f"{where}.aliases")]
    patterns = item.get("patterns") or []
    if not isinstance(patterns, list):
        raise ConfigError(f"{where}.patterns: expected a list, got {_kind(patterns)}")
    terms += [_pattern(p, f"{where}.patterns[{i}]") for i, p in enumerate(patterns)]
    if not terms:
        raise ConfigError(f"{where}: needs at least one of 'terms', 'aliases' or 'patterns'")
    mention = _number(item.get("mention", Topic(name, "", ()).mention), f"{where}.mention")
    if mention <= 0:
        raise ConfigError(f"{where}.mention: expected a positive number, got {mention:g}")
    return Topic(
        name=name,
        description=_optional(item.get("description"), str, f"{where}.description") or "",
        terms=tuple(terms),
        exclusions=_string_list(item.get("exclude", []), f"{where}.exclude"),
        mention=mention,
        # A topic's own thresholds complete the taxonomy's.
        relevance=_relevance(item.get("relevance"), f"{where}.relevance", taxonomy_relevance),
    )


def _term(item: Any, where: str) -> Term:
    if isinstance(item, str):
        if not item.strip():
            raise ConfigError(f"{where}: empty term")
        return Term(text=item.strip())
    if not isinstance(item, dict) or "term" not in item:
        raise ConfigError(f"{where}: expected a string or a mapping with 'term'")
    _no_unknown_keys(item, _TERM_KEYS, where)
    text = item["term"]
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}.term: expected a non-empty string")
    return Term(text=text.strip(), **_term_options(item, where))


def _term_options(item: dict[str, Any], where: str) -> dict[str, Any]:
    """The `weight` and `case_sensitive` of a term or pattern mapping."""
    case_sensitive = item.get("case_sensitive", False)
    if not isinstance(case_sensitive, bool):
        raise ConfigError(f"{where}.case_sensitive: expected true or false")
    return {"weight": _number(item.get("weight", 1.0), f"{where}.weight"),
            "case_sensitive": case_sensitive}


def _pattern(item: Any, where: str) -> Term:
    """A regular expression term: a string, or a mapping with `pattern` (and a weight, a label
    for the evidence, and `requires`: words one of which must be in a text for the expression to
    be tried there, which keeps a slow expression off the texts it cannot match)."""
    if isinstance(item, str):
        item = {"pattern": item}
    if not isinstance(item, dict) or "pattern" not in item:
        raise ConfigError(f"{where}: expected a string or a mapping with 'pattern'")
    _no_unknown_keys(item, _PATTERN_KEYS, where)
    pattern = item["pattern"]
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where}.pattern: expected a non-empty string")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{where}: invalid regular expression: {exc}") from None
    return Term(
        text=pattern,
        **_term_options(item, where),
        pattern=True,
        label=_optional(item.get("label"), str, f"{where}.label") or "",
        requires=_string_list(item.get("requires", []), f"{where}.requires"),
    )


# ---------------------------------------------------------------------------------------------
# Shared validation helpers


def _read(path: str | Path) -> bytes:
    """A config file's bytes: a local path, or a URL of a file system Beam has (gs://... for a
    Dataflow Flex Template, whose launcher has no copy of the file)."""
    if isinstance(path, str) and FileSystems.get_scheme(path) is not None:
        try:
            with FileSystems.open(path) as handle:
                return bytes(handle.read())
        except Exception as exc:  # Beam wraps a file system's errors in its own
            raise ConfigError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


def _no_unknown_keys(item: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in item if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _duration(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: expected a duration such as 15m, got {_kind(value)}")
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: expected a non-negative number, got {value!r}")
    return float(value)


def _optional(value: Any, kind: type[T], where: str) -> T | None:
    if value is None:
        return None
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {_kind(value)}")
    return value


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__

