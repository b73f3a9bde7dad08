"""The topic matcher: the seed article, exclusions, word boundaries, zones and evidence."""

from __future__ import annotations

import json

from pipeline import demo
from pipeline.cli import main
from pipeline.config import load_taxonomy, parse_taxonomy
from transforms.topics import TopicMatcher, evaluate, labelled_text

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
    filler = "Officials gave no further details on the operation. " * 12  # past the lead
    (tag,) = matcher.tag(
        "Fentanyl seizures rise",
        f"Agents seized fentanyl at the border.\n{filler}\nMore fentanyl was found.",
    )
    assert tag.name == "fentanyl" and tag.relevance == "about"
    (evidence,) = tag.evidence
    assert (evidence.term, evidence.count, evidence.zones) == (
        "fentanyl", 3, ("title", "lead", "body"))
    # weight 2: x5 in the title, x2 in the lead, x1 in the body (the text is under 300 words)
    assert tag.score == 2 * 5 + 2 * 2 + 2 * 1


def test_body_mentions_count_less_in_long_texts() -> None:
    matcher = TopicMatcher(load_taxonomy())
    lead = "The council met on Monday to discuss the city budget and new bus routes. " * 8
    aside = "A speaker mentioned tariffs on imported steel in passing."
    short = f"{lead}\n{aside}"
    long = f"{lead}\n{aside}\n" + "The debate on parks and libraries went on. " * 200
    (in_short,) = matcher.tag("Council budget", short)
    (in_long,) = matcher.tag("Council budget", long)
    assert in_long.score < in_short.score
    assert in_long.relevance == "mention"


def test_default_taxonomy_meets_the_f1_target_on_the_labelled_corpus(corpus) -> None:
    items = [json.loads(line) for line in (corpus / "topics" / "dev.jsonl").open()]
    evaluation = evaluate(TopicMatcher(load_taxonomy()),
                          [labelled_text(item, item["id"]) for item in items])
    for score in evaluation.scores:
        assert score.f1 >= 0.92, (score.topic, score.f1)


def test_topics_eval_and_explain_commands(tmp_path, capsys) -> None:
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("\n".join(json.dumps(item) for item in [
        {"id": "a", "title": "Tariffs rise again", "text": "Imports fell.", "labels": ["trade"]},
        {"id": "b", "title": "Weather", "text": "Sunny. Taipei trip.", "labels": ["taiwan"]},
        {"id": "c", "title": "Trade show opens", "text": "Robots.", "labels": []},
    ]) + "\n")
    assert main(["topics", "eval", str(labelled)]) == 0
    out = capsys.readouterr().out
    assert "trade                1.000   1.000  1.000    1   0   0" in out
    assert "taiwan               1.000   0.000  0.000    0   0   1" in out
    assert "taiwan     b  'Weather'" in out and "Taipei x1 (lead)" in out

    text = tmp_path / "story.txt"
    text.write_text("Taiwan's legislature passed the budget.\nOfficials said little else.")
    assert main(["topics", "explain", "--title", "Taiwan budget passes", "--text",
                 str(text)]) == 0
    out = capsys.readouterr().out
    assert "taiwan           ABOUT" in out and "Taiwan x2 (title/lead)" in out
    assert "trade            no" in out
