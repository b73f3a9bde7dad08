"""The topic matcher: the seed article, exclusions, word boundaries, zones and evidence."""

from __future__ import annotations

from pipeline import demo
from pipeline.config import load_taxonomy, parse_taxonomy
from transforms.topics import TopicMatcher

SEED_PATH = "/world/2023/06/18/blinken-meets-qin-gang-beijing.html"


def _tags(title: str, text: str, matcher: TopicMatcher | None = None) -> dict[str, str]:
    matcher = matcher or TopicMatcher(load_taxonomy())
    return {tag.name: tag.relevance for tag in matcher.tag(title, text)}


def test_seed_article_is_tagged_taiwan_trade_and_fentanyl() -> None:
    seed = next(a for a in demo.sample_articles() if a["path"] == SEED_PATH)
    tags = _tags(seed["title"], "\n".join(seed["paragraphs"]))
    assert set(tags) == {"taiwan", "trade", "fentanyl"}


def test_headline_topic_is_about_and_passing_word_is_mention() -> None:
    text = ("Officials met on Tuesday.\nThey discussed the budget.\n"
            "The minister also flew to Taipei last year for an unrelated visit.")
    assert _tags("Taiwan holds snap election", "Voters went to the polls.") == {
        "taiwan": "about"}
    assert _tags("Budget talks resume", text) == {"taiwan": "mention"}


def test_exclusions_cancel_matches_in_context() -> None:
    text = ("The company showed its robots at a trade show.\nIt is a trade-off, said a trade "
            "union leader at the Board of Trade.\nThe drug trade is booming, police said.")
    assert "trade" not in _tags("Robots on show", text)
    assert _tags("Robots on show", text + "\nTariffs on robots rose.") == {"trade": "mention"}


def test_word_boundaries_and_inflections() -> None:
    assert _tags("", "The trademark dispute went to court.") == {}
    assert "trade" in _tags("", "New tariffs were announced.")
    assert "taiwan" in _tags("", "Taiwan's president spoke.")


def test_cjk_aliases_match_without_spaces() -> None:
    assert "taiwan" in _tags("", "总统访问台湾的消息")


def test_case_sensitive_terms() -> None:
    matcher = TopicMatcher(parse_taxonomy("""
version: t
topics:
  - name: wto
    terms: [{term: WTO, case_sensitive: true}]
""", "t.yaml"))
    assert _tags("", "The WTO ruled.", matcher) == {"wto": "mention"}
    assert _tags("", "The wto ruled.", matcher) == {}


def test_evidence_counts_terms_and_zones() -> None:
    matcher = TopicMatcher(load_taxonomy())
    (tag,) = matcher.tag(
        "Fentanyl seizures rise",
        "Agents seized fentanyl at the border.\nOfficials spoke.\nMore fentanyl was found.",
    )
    assert tag.name == "fentanyl" and tag.relevance == "about"
    (evidence,) = tag.evidence
    assert (evidence.term, evidence.count, evidence.zones) == ("fentanyl", 3, ("title", "lead",
                                                                                "body"))
    # 2 (weight) x 4 (title) + 2 x 2 (lead) + 2 x 1 (body)
    assert tag.score == 14.0
