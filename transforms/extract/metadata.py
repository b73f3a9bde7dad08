"""Article metadata from a parsed page: title, authors, date, language, site, image, paywall.

A lean reader of what publishers declare (Open Graph and other meta tags, JSON-LD, `<link
rel=canonical>`, `<html lang>`), with htmldate for the publication date. It is here rather than
trafilatura's own metadata pass because that pass also mines categories, tags and licences
newsbeam does not use, and costs a third of the extraction time.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from htmldate import find_date
from lxml.html import HtmlElement

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_BYLINE = re.compile(r"^\s*(?:by|von|par|por|di|door|av|af)\s+", re.IGNORECASE)
_NOT_A_NAME = re.compile(
    r"(?:^|\b)(?:staff|editors?|editorial|newsroom|reporters?|desk|correspondents?|wire|"
    r"agencies|agency|admin|team|contributors?)(?:\b|$)",
    re.IGNORECASE,
)
_AUTHOR_SPLIT = re.compile(r"\s*(?:;|,|\band\b|\bund\b|\bet\b|\by\b|&|\|)\s*", re.IGNORECASE)
_DATE_IN_TEXT = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\b(?:19|20)\d\d\b")
_TITLE_SEPARATORS = re.compile(r"\s+[|\u2013\u2014\-:\u00b7\u2022]\s+")
# Paywall markers publishers declare: schema.org's isAccessibleForFree (what Google asks paywalled
# sites to use) and the article:content_tier meta tag of metering systems. Class names such as
# "paywall" are not used: sites ship the widget's markup on free articles too.
LOCKED_TIERS = ("locked", "premium", "subscriber", "subscribers")


@dataclasses.dataclass(frozen=True)
class PageMetadata:
    """What a page says about itself; None or empty where it says nothing usable."""

    titles: tuple[str, ...]  # candidate headlines, best first (og:title, h1, <title> ...)
    authors: tuple[str, ...]
    date: datetime | None  # the publication day, midnight UTC
    language: str | None
    site_name: str | None
    description: str | None
    canonical_url: str | None
    image: str | None
    paywalled: bool

    @property
    def title(self) -> str | None:
        return self.titles[0] if self.titles else None


EMPTY_METADATA = PageMetadata(titles=(), authors=(), date=None, language=None, site_name=None,
                              description=None, canonical_url=None, image=None,
                              paywalled=False)


def page_metadata(tree: HtmlElement, url: str) -> PageMetadata:
    """Read the page's own metadata. Does not modify the tree."""
    meta = _meta_tags(tree)
    json_ld = list(_json_ld_objects(tree))
    site_name = _first(meta.get("og:site_name"), meta.get("application-name"))
    return PageMetadata(
        titles=_titles(tree, meta, json_ld, site_name),
        authors=_authors(tree, meta, json_ld, site_name),
        date=_date(tree, url),
        language=_language(tree, meta),
        site_name=site_name,
        description=_first(meta.get("og:description"), meta.get("description"),
                           meta.get("twitter:description")),
        canonical_url=_canonical(tree, meta, url),
        image=_absolute(url, _first(meta.get("og:image"), meta.get("og:image:url"),
                                    meta.get("twitter:image"), _json_ld_image(json_ld))),
        paywalled=_paywalled(meta, json_ld),
    )


def clean_authors(names: list[str], site_name: str | None = None) -> tuple[str, ...]:
    """A clean list of person names: no "By", no dates, no site or desk names, no duplicates."""
    cleaned: list[str] = []
    for raw in names:
        for part in _AUTHOR_SPLIT.split(_BYLINE.sub("", raw or "")):
            name = " ".join(part.split()).strip(" ,.;:-|@")
            if (
                not name or len(name) > 60 or _DATE_IN_TEXT.search(name)
                or _NOT_A_NAME.search(name) or "http" in name.lower() or "@" in name
                or (site_name and name.casefold() == site_name.casefold())
                or len(name.split()) > 5 or not any(c.isalpha() for c in name)
            ):
                continue
            if name.casefold() not in (c.casefold() for c in cleaned):
                cleaned.append(name)
    return tuple(cleaned)


def _meta_tags(tree: HtmlElement) -> dict[str, str]:
    found: dict[str, str] = {}
    for element in tree.iter("meta"):
        key = element.get("property") or element.get("name") or element.get("itemprop")
        content = element.get("content")
        if key and content and content.strip():
            found.setdefault(key.strip().lower() if ":" not in key else key.strip(),
                             " ".join(content.split()))
    return found


def _json_ld_objects(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            data = json.loads(script.text or "")
        except (json.JSONDecodeError, ValueError):
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                yield item
                if isinstance(item.get("@graph"), list):
                    stack.extend(item["@graph"])


def _is_article(item: dict[str, Any]) -> bool:
    kind = item.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return any(isinstance(k, str) and ("Article" in k or k in ("BlogPosting", "Report"))
               for k in kinds)


def _titles(tree: HtmlElement, meta: dict[str, str], json_ld: list[dict[str, Any]],
            site_name: str | None) -> tuple[str, ...]:
    candidates = [meta.get("og:title"), meta.get("twitter:title")]
    candidates += [item.get("headline") for item in json_ld if _is_article(item)]
    candidates += [" ".join(h1.text_content().split()) for h1 in tree.iter("h1")][:2]
    page_title = tree.findtext(".//title")
    if page_title:
        page_title = " ".join(page_title.split())
        parts = _TITLE_SEPARATORS.split(page_title)
        if len(parts) > 1 and (site_name is None or any(
                site_name.casefold() in p.casefold() for p in parts)):
            candidates.append(max(parts, key=len))  # drop " | Site Name"
        candidates.append(page_title)
    out: list[str] = []
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip() and candidate not in out:
            out.append(candidate.strip())
    return tuple(out)


def _authors(tree: HtmlElement, meta: dict[str, str], json_ld: list[dict[str, Any]],
             site_name: str | None) -> tuple[str, ...]:
    names: list[str] = []
    for item in json_ld:
        if _is_article(item):
            names += _json_ld_names(item.get("author"))
    if not names:
        names += [v for k, v in meta.items()
                  if k in ("author", "article:author", "byl", "dc.creator", "sailthru.author")
                  and not v.startswith("http")]
    if not names:
        names += [" ".join(a.text_content().split()) for a in tree.xpath("//a[@rel='author']")]
    return clean_authors(names, site_name)


def _json_ld_names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        name = value.get("name")
        return [name] if isinstance(name, str) and value.get("@type") != "Organization" else []
    if isinstance(value, list):
        return [n for v in value for n in _json_ld_names(v)]
    return []


def _date(tree: HtmlElement, url: str) -> datetime | None:
    # htmldate reads the URL, meta tags, JSON-LD and the page text; original_date asks for the
    # publication rather than the last update.
    try:
        found = find_date(tree, url=url, original_date=True, extensive_search=True)
    except Exception:  # htmldate is defensive, but a date library on hostile input is not
        return None
    if not found:
        return None
    try:
        return datetime.fromisoformat(found).replace(tzinfo=UTC)
    except ValueError:
        return None


def _language(tree: HtmlElement, meta: dict[str, str]) -> str | None:
    candidates = [tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang"),
                  meta.get("content-language"), meta.get("og:locale"), meta.get("language")]
    candidates += tree.xpath("//meta[translate(@http-equiv,'CONTENT-LANGUAGE',"
                             "'content-language')='content-language']/@content")
    for candidate in candidates:
        if isinstance(candidate, str):
            candidate = candidate.strip().split(",")[0].strip()
            if _LANGUAGE.match(candidate):
                return candidate.replace("_", "-").split("-")[0].lower()
    return None


def _canonical(tree: HtmlElement, meta: dict[str, str], url: str) -> str | None:
    declared = tree.xpath("//link[translate(@rel,'CANONICAL','canonical')='canonical']/@href")
    candidate = _absolute(url, _first(*(declared or []), meta.get("og:url")))
    if not candidate:
        return None
    # A page may only speak for its own site: a canonical on another host is ignored.
    page_host, candidate_host = urlsplit(url).hostname, urlsplit(candidate).hostname
    if not page_host or not candidate_host:
        return None
    same_site = candidate_host == page_host or candidate_host.endswith("." + page_host) or (
        page_host.endswith("." + candidate_host))
    return candidate if same_site else None


def _json_ld_image(json_ld: list[dict[str, Any]]) -> str | None:
    for item in json_ld:
        if not _is_article(item):
            continue
        image = item.get("image")
        if isinstance(image, list) and image:
            image = image[0]
        if isinstance(image, dict):
            image = image.get("url")
        if isinstance(image, str):
            return image
    return None


def _paywalled(meta: dict[str, str], json_ld: list[dict[str, Any]]) -> bool:
    for item in json_ld:
        parts = [item] + [p for p in _as_list(item.get("hasPart")) if isinstance(p, dict)]
        for part in parts:
            free = part.get("isAccessibleForFree")
            if free is False or (isinstance(free, str) and free.strip().lower() == "false"):
                return True
    tier = meta.get("article:content_tier", "").strip().lower()
    return tier in LOCKED_TIERS


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def _absolute(base: str, value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if value.startswith("//"):
        value = urlsplit(base).scheme + ":" + value
    absolute = urljoin(base, value)
    return absolute if absolute.startswith(("http://", "https://")) else None


def _first(*values: str | None) -> str | None:
    for value in values:
        if value and value.strip():
            return value.strip()
    return None
