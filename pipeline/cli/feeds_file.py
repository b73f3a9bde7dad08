"""Loading the feeds file (YAML or OPML), with clear errors (ConfigError)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import lxml.etree

from transforms.core import (
    ConfigError,
    Feed,
    config_duration,
    kind_of,
    load_yaml,
    mask_userinfo,
    no_unknown_keys,
    optional_of,
    read_config_file,
    string_list,
)
from transforms.fetch import FetchError, validate_url

log = logging.getLogger(__name__)

_FEED_KEYS = {"url", "name", "tags", "poll_interval"}



def load_feeds(path: str | Path) -> tuple[Feed, ...]:
    """The feeds in a YAML feeds file or an OPML export, told apart by content, not extension."""
    source = str(path)
    data = read_config_file(path)
    text = data.decode("utf-8-sig", errors="replace").lstrip()
    feeds = _opml_feeds(data, source) if text.startswith("<") else _yaml_feeds(text, source)
    if not feeds:
        raise ConfigError(f"{source}: no feeds listed")
    return _merge_duplicates(feeds, source)


def _yaml_feeds(text: str, source: str) -> list[Feed]:
    document = load_yaml(text, source)
    if not isinstance(document, dict) or "feeds" not in document:
        raise ConfigError(f"{source}: expected a mapping with a 'feeds' list (or an OPML file)")
    items = document["feeds"]
    if not isinstance(items, list):
        raise ConfigError(f"{source}: 'feeds' must be a list, got {kind_of(items)}")
    feeds = []
    for index, item in enumerate(items):
        where = f"{source}: feeds[{index}]"
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping with 'url', got {kind_of(item)}")
        no_unknown_keys(item, _FEED_KEYS, where)
        if "url" not in item:
            raise ConfigError(f"{where}: missing 'url'")
        url = _feed_url(item["url"], f"{where}.url")
        name = optional_of(item.get("name"), str, f"{where}.name")
        tags = string_list(item.get("tags", []), f"{where}.tags")
        poll_interval = config_duration(item["poll_interval"], f"{where}.poll_interval") if (
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
        raise ConfigError(f"{where}: expected a URL string, got {kind_of(value)}")
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
