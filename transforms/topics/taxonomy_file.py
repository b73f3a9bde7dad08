"""Loading a topic taxonomy from its YAML file (or the bundled default), with clear errors."""

from __future__ import annotations

import dataclasses
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any

from transforms.core import (
    ConfigError,
    config_number,
    kind_of,
    load_yaml,
    no_unknown_keys,
    optional_of,
    read_config_file,
    string_list,
)
from transforms.topics.relevance import DEFAULT_RELEVANCE, INFINITE, Relevance
from transforms.topics.taxonomy import Taxonomy, Term, Topic

log = logging.getLogger(__name__)

DEFAULT_TOPICS = "default_topics.yaml"

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



def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The taxonomy in a topics YAML file, or the bundled default (taiwan, trade, fentanyl)."""
    if path is None:
        bundled = resources.files("transforms.topics").joinpath(DEFAULT_TOPICS)
        return parse_taxonomy(bundled.read_text(encoding="utf-8"), f"<bundled {DEFAULT_TOPICS}>")
    return parse_taxonomy(read_config_file(path).decode("utf-8-sig", errors="replace"), str(path))


def parse_taxonomy(text: str, source: str) -> Taxonomy:
    """A Taxonomy from topics YAML text; `source` names the file in error messages."""
    document = load_yaml(text, source)
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with 'version' and 'topics'")
    no_unknown_keys(document, {"version", "topics", "relevance"}, source)
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
        raise ConfigError(f"{where}: expected a mapping of thresholds, got {kind_of(item)}")
    no_unknown_keys(item, _RELEVANCE_KEYS, where)
    values: dict[str, float] = {}
    for key, value in item.items():
        if value is None:
            values[key] = INFINITE
            continue
        number = config_number(value, f"{where}.{key}")
        if number <= 0:
            raise ConfigError(f"{where}.{key}: expected a positive number, got {value!r}")
        values[key] = number
    return dataclasses.replace(base, **values)


def _topic(item: Any, where: str, taxonomy_relevance: Relevance) -> Topic:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping, got {kind_of(item)}")
    name = item.get("name")
    if not isinstance(name, str) or not _TOPIC_NAME.match(name):
        raise ConfigError(
            f"{where}.name: expected a lower-case name of letters, digits, '-' or '_', got "
            f"{name!r}"
        )
    where = f"{where} ({name})"
    no_unknown_keys(item, _TOPIC_KEYS | _RETIRED_TOPIC_KEYS, where)
    terms = [_term(t, f"{where}.terms[{i}]") for i, t in enumerate(item.get("terms") or [])]
    terms += [Term(text=a) for a in string_list(item.get("aliases", []), f"{where}.aliases")]
    patterns = item.get("patterns") or []
    if not isinstance(patterns, list):
        raise ConfigError(f"{where}.patterns: expected a list, got {kind_of(patterns)}")
    terms += [_pattern(p, f"{where}.patterns[{i}]") for i, p in enumerate(patterns)]
    if not terms:
        raise ConfigError(f"{where}: needs at least one of 'terms', 'aliases' or 'patterns'")
    mention = config_number(item.get("mention", Topic(name, "", ()).mention), f"{where}.mention")
    if mention <= 0:
        raise ConfigError(f"{where}.mention: expected a positive number, got {mention:g}")
    return Topic(
        name=name,
        description=optional_of(item.get("description"), str, f"{where}.description") or "",
        terms=tuple(terms),
        exclusions=string_list(item.get("exclude", []), f"{where}.exclude"),
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
    no_unknown_keys(item, _TERM_KEYS, where)
    text = item["term"]
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}.term: expected a non-empty string")
    return Term(text=text.strip(), **_term_options(item, where))


def _term_options(item: dict[str, Any], where: str) -> dict[str, Any]:
    """The `weight` and `case_sensitive` of a term or pattern mapping."""
    case_sensitive = item.get("case_sensitive", False)
    if not isinstance(case_sensitive, bool):
        raise ConfigError(f"{where}.case_sensitive: expected true or false")
    return {"weight": config_number(item.get("weight", 1.0), f"{where}.weight"),
            "case_sensitive": case_sensitive}


def _pattern(item: Any, where: str) -> Term:
    """A regular expression term: a string, or a mapping with `pattern` (and a weight, a label
    for the evidence, and `requires`: words one of which must be in a text for the expression to
    be tried there, which keeps a slow expression off the texts it cannot match)."""
    if isinstance(item, str):
        item = {"pattern": item}
    if not isinstance(item, dict) or "pattern" not in item:
        raise ConfigError(f"{where}: expected a string or a mapping with 'pattern'")
    no_unknown_keys(item, _PATTERN_KEYS, where)
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
        label=optional_of(item.get("label"), str, f"{where}.label") or "",
        requires=string_list(item.get("requires", []), f"{where}.requires"),
    )
