"""The topic tagger: the seed article, exclusions, word boundaries, zones and evidence; the
layout of a text; relevance by where a topic is and how much of the text develops it; tuning
the thresholds on one labelled set and scoring on the other."""

from __future__ import annotations

import dataclasses
import json
import pickle

import yaml

from pipeline import demo
from pipeline.cli import main
from transforms.core import ConfigError
from transforms.topics import (
    INFINITE,
    Relevance,
    Taxonomy,
    Term,
    Topic,
    TopicMatcher,
    evaluate,
    labelled_text,
    load_taxonomy,
    parse_taxonomy,
    text_layout,
    tune,
    with_relevance,
)
from transforms.topics.layout import Layout
from transforms.topics.matcher import _LOWER_INTO_ASCII, DFA_KEYS

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
    # Outside the excluded phrases the topic is found again.
    assert "trade" in _tags("Robots on show", text + "\nTariffs on robots rose.")


def test_word_boundaries_and_inflections() -> None:
    assert _tags("", "The trademark dispute went to court.") == {}
    assert "trade" in _tags("", "New tariffs were announced.")
    assert "taiwan" in _tags("", "Taiwan's president spoke.")
    assert "taiwan" in _tags("", "Taiwan\u2019s president spoke.")
    assert _tags("", "Taiwania, a conifer, grows tall.") == {}  # not an inflection
    taxes = TopicMatcher(parse_taxonomy(
        "version: t\ntopics:\n  - name: tax\n    terms: [tax]\n", "t.yaml"))
    (tag,) = taxes.tag("", "Taxes rose, the taxman said, and taxis too.")
    assert [(e.term, e.count) for e in tag.evidence] == [("tax", 1)]  # "Taxes" only


def test_overlapping_terms_count_once_in_a_topic_and_in_every_topic() -> None:
    matcher = TopicMatcher(parse_taxonomy("""
version: t
topics:
  - name: trade
    terms: [trade, trade war, war games]
  - name: conflict
    terms: [war]
""", "t.yaml"))
    tags = {tag.name: tag for tag in matcher.tag("", "The trade war games began.")}
    # In one topic the longest match counts ("trade war", not "trade" too), and a match that
    # overlaps it only in part does not ("war games"); another topic keeps its own "war".
    assert [(e.term, e.count) for e in tags["trade"].evidence] == [("trade war", 1)]
    assert [(e.term, e.count) for e in tags["conflict"].evidence] == [("war", 1)]


def test_a_taxonomy_too_large_for_a_dfa_tags_the_same() -> None:
    # Past DFA_KEYS the automaton is a contiguous NFA (a third of the memory): same matches.
    words = [f"code{number:05d}" for number in range(DFA_KEYS + 500)]
    topics = [Topic(name=f"topic-{index}", description="", terms=tuple(
        Term(word) for word in words[index::100])) for index in range(100)]
    matcher = TopicMatcher(Taxonomy(version="large", topics=tuple(topics)))
    (tag,) = matcher.tag("", "The parts were code00007 and code00107; not code001070.")
    assert tag.name == "topic-7"
    assert [(e.term, e.count) for e in tag.evidence] == [("code00007", 1), ("code00107", 1)]


def test_a_matcher_survives_pickling() -> None:
    # As a Beam runner may pickle what a transform holds; it is compiled again when loaded.
    matcher = pickle.loads(pickle.dumps(TopicMatcher(load_taxonomy())))
    assert _tags("Taiwan holds snap election", "Voters went to the polls.", matcher) == {
        "taiwan": "about"}


def test_evidence_lists_the_most_found_terms_first_then_by_name() -> None:
    matcher = TopicMatcher(parse_taxonomy("""
version: t
topics:
  - name: trade
    terms: [tariff, export, duty, quota]
""", "t.yaml"))
    (tag,) = matcher.tag("", "A quota. An export duty and a tariff. Another tariff.")
    assert [(e.term, e.count) for e in tag.evidence] == [
        ("tariff", 2), ("duty", 1), ("export", 1), ("quota", 1)]


def test_a_patterns_matches_are_weighed_in_text_order_with_the_terms() -> None:
    matcher = TopicMatcher(parse_taxonomy(r"""
version: t
topics:
  - name: shipping
    terms: [cargo]
    patterns: ['\bbuys?\b']
""", "t.yaml"))
    ((_, found),) = matcher.tag_with_signals("", "A cargo he buys. Another cargo.")
    # The first sentence holds two matches (1.5 at most), the second one: not three sentences.
    assert (found.sentences, found.paragraphs) == (2.5, 1)


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
    assert _tags("", "The Wto ruled on WTO's rules.", matcher) == {"wto": "mention"}
    # A case-sensitive and a case-insensitive term with the same letters, in two topics.
    both = TopicMatcher(parse_taxonomy("""
version: t
topics:
  - name: party
    terms: [{term: KMT, case_sensitive: true}]
  - name: letters
    terms: [kmt]
""", "t.yaml"))
    assert _tags("", "The KMT won.", both) == {"party": "mention", "letters": "mention"}
    assert _tags("", "The kmt won.", both) == {"letters": "mention"}


def test_a_trade_flow_in_wire_copy_is_trade() -> None:
    # A buyer and a quantity of a traded good: the subject is a trade flow, with no trade word.
    text = ("A purchasing mission from Ruritania will arrive next month and expects to buy\n"
            "300,000 bales of cotton, officials said.")
    tags = TopicMatcher(load_taxonomy()).tag("RURITANIA MISSION TO BUY 300,000 BALES COTTON",
                                             text)
    assert [(t.name, t.relevance) for t in tags] == [("trade", "about")]
    assert [(e.term, e.zones) for e in tags[0].evidence] == [("trade flow", ("title", "lead"))]
    # A harvest is not a trade flow, however many tonnes.
    assert _tags("Harvest estimate", "Farmers harvested 2.5 mln tonnes of wheat.") == {}


def test_a_pattern_is_tried_only_on_texts_with_a_word_it_requires() -> None:
    matcher = TopicMatcher(parse_taxonomy(r"""
version: t
topics:
  - name: rates
    patterns:
      - {pattern: '\bcut (?:its|the) \w+ rate', label: rate cut, weight: 2,
         requires: [central bank]}
      - '\bbasis points?\b'
""", "t.yaml"))
    (tag,) = matcher.tag("", "The central bank cut its policy rate by 25 basis points.")
    # A pattern without a label is shown as its expression.
    assert [(e.term, e.count) for e in tag.evidence] == [(r"\bbasis points?\b", 1),
                                                         ("rate cut", 1)]
    # No required word: the expression is not tried (though it would match); the other is.
    (tag,) = matcher.tag("", "The bank cut its policy rate by 25 basis points.")
    assert [e.term for e in tag.evidence] == [r"\bbasis points?\b"]


def test_patterns_match_in_any_case_unless_case_sensitive() -> None:
    matcher = TopicMatcher(parse_taxonomy(r"""
version: t
topics:
  - name: chips
    patterns: ['\bChip ?makers?\b', '\bfab\W\d+\b']
  - name: arm
    patterns: [{pattern: '\bARM\b', case_sensitive: true}]
""", "t.yaml"))
    assert _tags("", "CHIPMAKERS and chip makers", matcher) == {"chips": "mention"}
    assert _tags("", "Work on FAB-21 began.", matcher) == {"chips": "mention"}
    assert _tags("", "The arm of the law.", matcher) == {}
    assert _tags("", "ARM designs chips.", matcher) == {"arm": "mention"}


def test_text_outside_ascii_matches_as_it_reads() -> None:
    # Curly quotes, dashes and accented letters in the text (searched as an ASCII copy where
    # the terms allow) bound words and lower-case as they read.
    def evidence(topic: str, text: str) -> list[str]:
        matcher = TopicMatcher(parse_taxonomy(
            f"version: t\ntopics:\n  - name: t\n{topic}", "t.yaml"))
        return [e.term for tag in matcher.tag("", text) for e in tag.evidence
                for _ in range(e.count)]

    ascii_terms = "    terms: [trade, tax, istanbul, kelvin]\n    patterns: ['résumés?']\n"
    assert evidence(ascii_terms, "\u201cTrade\u201d \u2014 taxes\u2019 rise") == ["tax", "trade"]
    assert evidence(ascii_terms, "Tradé and tradeé, taxesé, détax") == []
    kelvin = "\u212a"  # lower-cases to "k", as "İ" does to "i"
    assert evidence(ascii_terms, f"İSTANBUL, 300 {kelvin}ELVIN") == ["istanbul", "kelvin"]
    assert evidence(ascii_terms, "RÉSUMÉS \u2014 résumé") == ["résumés?"] * 2
    # A term with "?" is never found where the text has another character.
    assert evidence("    terms: ['who?']\n", "Who\u2019s there? \u201cWHO?\u201d") == ["who?"]
    # Terms with letters outside ASCII, cased or not.
    accented = TopicMatcher(parse_taxonomy(
        "version: t\ntopics:\n  - name: food\n    terms: [café, 台北]\n", "t.yaml"))
    (tag,) = accented.tag("", "\u201cCAFÉ\u201d in 台北\u2019s old town")
    assert sorted((e.term, e.count) for e in tag.evidence) == [("café", 1), ("台北", 1)]


def test_the_unicode_facts_the_ascii_search_rests_on() -> None:
    # The matcher searches an ASCII copy of a text unless the text holds a character that
    # lower-cases into ASCII or into a (caseless) character of a term: this Python's Unicode
    # has no other way into ASCII, and a caseless character is no other's lower case.
    into_ascii, into_caseless = set(), set()
    for code in range(0x80, 0x110000):
        lower = chr(code).lower()[:1]
        if lower.isascii():
            into_ascii.add(chr(code))
        elif lower != chr(code) and lower.upper() == lower:
            into_caseless.add(chr(code))
    assert into_ascii == _LOWER_INTO_ASCII and into_caseless == set()


def test_a_lone_surrogate_in_a_text_is_no_word_and_no_error() -> None:
    # JSON can carry one ("\\udcff"); it is searched as the replacement character, with the
    # text lower-cased in full (a term's character, 台, is in it) or as an ASCII copy.
    matcher = TopicMatcher(load_taxonomy())
    for place in ("台湾", "Taiwan"):
        tags = matcher.tag("", f"Tariffs rose.\udcff New tariffs\udcff in {place}.")
        assert {tag.name: [(e.term, e.count) for e in tag.evidence] for tag in tags} == {
            "trade": [("tariff", 2)], "taiwan": [(place, 1)]}


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
    # About by its headline: term weight 2 where 0.5 is enough, four times the threshold.
    assert tag.score == 4.0


def test_the_layout_of_the_three_shapes_of_text() -> None:
    pipeline_text = "First paragraph. It has two sentences.\nSecond paragraph!\nThird? Yes."
    shape = text_layout(pipeline_text)
    assert (shape.paragraphs, shape.sentences) == (3, 5)
    assert shape.paragraph_starts == (0, 39, 57)
    assert shape.sentence_starts == (0, 17, 39, 57, 64)
    web = "A wrapped\nparagraph. Two.\n\nAnother one.\n\n\nLast."
    assert (text_layout(web).paragraphs, text_layout(web).sentences) == (3, 4)
    wire = "The first paragraph is\nhard-wrapped here.\n    The second\nstarts indented.\n"
    assert (text_layout(wire).paragraphs, text_layout(wire).sentences) == (2, 2)
    # The lead: whole paragraphs until about 100 words.
    long = "\n".join(["word " * 60] * 4)
    assert text_layout(long).lead_end == len("word " * 60) * 2 + 1
    web_lead = "\n\n".join(["word " * 99 + "last", "wrapped\nfollows", "third"])
    assert text_layout(web_lead).lead_end == web_lead.index("\n\nwrapped")
    assert text_layout(wire).lead_end == len(wire)  # under 100 words: all of it


def test_blank_paragraphs_and_blank_texts_have_no_paragraphs() -> None:
    padded = "\n \n\tFirst one.\n\n \n\n  Second one.\n\n"
    shape = text_layout(padded)
    assert shape.paragraph_starts == (padded.index("First"), padded.index("Second"))
    assert shape.sentence_starts == shape.paragraph_starts
    assert text_layout(" \n\n\t ") == Layout((), (), 5)
    assert text_layout("") == Layout((), (), 0)


def test_long_runs_of_white_space() -> None:
    # Hostile or broken pages: every shape of text, with long runs of white space between its
    # paragraphs and at its end (searched in linear time, which a test cannot time but a
    # quadratic search would turn into minutes).
    shapes = (("\n \n" * 5000, " \n" * 20000),  # web copy: blank lines
              ("\n\r" * 5000 + "\n   ", "\r\n" * 20000),  # wire copy: indented paragraphs
              ("\r\n" * 10000, " \r\n" * 20000))  # one paragraph per line
    for gap, end in shapes:
        text = "First one." + gap + "Second one." + end
        shape = text_layout(text)
        assert shape.paragraph_starts == (0, text.index("Second"))
        assert shape.sentence_starts == shape.paragraph_starts
        assert shape.lead_end == len(text)  # four words: all lead


LONG_FILLER = "The council debated parks, libraries and the bus timetable at length. " * 6


def _long_article(middle: list[str]) -> str:
    """Twenty paragraphs of council business, with `middle` paragraphs halfway through."""
    paragraphs = [LONG_FILLER] * 10 + middle + [LONG_FILLER] * 10
    return "\n".join(paragraphs)


def test_a_passing_aside_is_a_mention_however_often_words_occur() -> None:
    matcher = TopicMatcher(load_taxonomy())
    aside = "A speaker said tariffs, tariffs and more tariffs on imported steel hurt the city."
    (tag,) = matcher.tag("Council budget", _long_article([aside]))
    assert (tag.name, tag.relevance) == ("trade", "mention")


def test_a_topic_developed_in_one_section_of_a_long_article_is_about() -> None:
    matcher = TopicMatcher(load_taxonomy())
    section = [
        "Then the debate turned to tariffs. The mayor said the new tariffs on steel would"
        " raise the cost of the bridge. Importers have already raised their prices.",
        "A councillor said the trade war with China had cut exports from the port by a third."
        " Another asked whether the city could claim an exemption from the import duties.",
    ]
    tags = {tag.name: tag for tag in matcher.tag("Council budget", _long_article(section))}
    assert tags["trade"].relevance == "about"
    assert tags["trade"].score >= 1


def test_sentences_weigh_what_they_say_and_longer_texts_need_more_of_them() -> None:
    matcher = TopicMatcher(load_taxonomy())
    # Four sentences that name trade only by weak terms ("import", weight 0.5) weigh two.
    weak = ["The city imported new buses.", "Its steel is imported too.",
            "An importer of paper spoke.", "Imported lamps light the hall."]
    strong = ["Tariffs on buses rose.", "Steel tariffs rose too.",
              "A paper maker fears tariffs.", "The lamps face tariffs as well."]
    short = ["The council met on Tuesday.", "It debated the parks.", "The mayor spoke.",
             "Libraries open late."]

    def relevance(paragraphs: list[str]) -> str:
        tag = next(t for t in matcher.tag("Council budget", "\n".join(paragraphs))
                   if t.name == "trade")
        return tag.relevance

    # Two paragraphs of council business (the lead), the four sentences, two more.
    assert relevance([LONG_FILLER] * 2 + weak + [LONG_FILLER] * 2) == "mention"
    assert relevance([LONG_FILLER] * 2 + strong + [LONG_FILLER] * 2) == "about"
    # Two strong sentences make a short wire story about trade, not a long feature.
    assert relevance(strong[:2] + short) == "about"
    assert relevance(strong[:2] + [LONG_FILLER] * 6) == "mention"


def test_terms_wrapped_across_lines_still_match() -> None:
    # Wire copy is hard-wrapped: a two-word term may start on one line and end on the next.
    (tag,) = TopicMatcher(load_taxonomy()).tag(
        "House panel acts", "The measure is part of a wide-ranging trade\nbill before the House.")
    assert [(e.term, e.count) for e in tag.evidence] == [("trade bill", 1)]


def test_a_topic_defined_only_by_its_terms_tags_sensibly() -> None:
    matcher = TopicMatcher(parse_taxonomy("""
version: t
topics:
  - name: chips
    terms: [semiconductor, chipmaker, foundry]
""", "t.yaml"))
    assert _tags("Chipmaker opens a foundry", "Work began.", matcher) == {"chips": "about"}
    aside = "One speaker works for a chipmaker."
    assert _tags("Council budget", _long_article([aside]), matcher) == {"chips": "mention"}


def test_each_criterion_alone_makes_about_and_can_be_turned_off() -> None:
    text = "\n".join([LONG_FILLER] * 3 + ["Taiwan said so. Taiwan did it. Taiwan again."]
                     + [LONG_FILLER] * 3)
    taxonomy = load_taxonomy()
    # Three sentences name the topic: at least 1 plus 5% of the text's 39 sentences.
    only_share = Relevance(headline=INFINITE, lead=INFINITE, sentences=1, share=0.05,
                           section=INFINITE)
    assert _tags("", text, TopicMatcher(with_relevance(taxonomy, only_share)))["taiwan"] == (
        "about")
    nothing = Relevance(headline=INFINITE, lead=INFINITE, share=INFINITE, section=INFINITE)
    assert _tags("Taiwan", text, TopicMatcher(with_relevance(taxonomy, nothing)))["taiwan"] == (
        "mention")


def test_relevance_thresholds_in_the_topics_file(caplog) -> None:
    taxonomy = parse_taxonomy("""
version: t
relevance: {share: 0.3, section: null}
topics:
  - name: chips
    terms: [chip]
    relevance: {headline: 2}
  - name: boats
    terms: [boat]
""", "t.yaml")
    chips, boats = taxonomy.topics
    assert taxonomy.thresholds(boats).share == 0.3 and taxonomy.thresholds(boats).section == (
        INFINITE)
    assert taxonomy.thresholds(chips).headline == 2 and taxonomy.thresholds(chips).share == 0.3
    try:
        parse_taxonomy("version: t\nrelevance: {share: 0}\ntopics: [{name: a, terms: [a]}]",
                       "t.yaml")
    except ConfigError as error:
        assert str(error) == "t.yaml: relevance.share: expected a positive number, got 0"
    else:
        raise AssertionError("a zero threshold was accepted")
    # Files written for the earlier scoring still load; their retired keys are reported.
    parse_taxonomy("version: t\ntopics: [{name: a, terms: [a], about: 5, title_boost: 4}]",
                   "old.yaml")
    assert "old.yaml: about, title_boost no longer used" in caplog.text


def _labelled_set(corpus, name: str) -> list:
    return [labelled_text(item, item["id"]) for item in
            map(json.loads, (corpus / "topics" / f"{name}.jsonl").open())]


def test_thresholds_chosen_on_one_labelled_set_hold_on_the_other(corpus) -> None:
    # Figures for text the thresholds were not chosen on (README, "Topics file"); the
    # bundled ones were chosen on both sets.
    taxonomy = load_taxonomy()
    sets = {name: _labelled_set(corpus, name) for name in ("dev", "dev2")}
    for train, test in (("dev", "dev2"), ("dev2", "dev")):
        tuned = tune(taxonomy, sets[train])
        evaluation = evaluate(TopicMatcher(with_relevance(taxonomy, tuned.relevance)),
                              sets[test])
        for score in evaluation.scores:
            assert score.f1 >= 0.93, (train, test, score.topic, score.f1)
    for name, items in sets.items():
        for score in evaluate(TopicMatcher(taxonomy), items).scores:
            assert score.f1 >= 0.92, (name, score.topic, score.f1)


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
    assert "MET headline  term weight 1 in the headline (takes 0.5)" in out
    assert ("    developed sentences naming it weigh 1, 50% of the text's 2, in 1 paragraph(s)"
            " (takes 2 + 8% of 2 = 2.16, in 1)") in out
    assert "trade            no" in out

    assert main(["topics", "tune", str(labelled)]) == 0
    out = capsys.readouterr().out
    assert "# F1 there: taiwan 1.000, trade 1.000, fentanyl 1.000" in out
    assert set(yaml.safe_load(out)["relevance"]) == {
        "headline", "lead", "lead_sentences", "share", "sentences", "paragraphs", "section"}
    # Several labelled sets: each is scored on its own.
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "d", "title": "Fentanyl seized", "text": "Police said.",
                                 "labels": ["fentanyl"]}) + "\n")
    assert main(["topics", "tune", str(labelled), str(other)]) == 0
    out = capsys.readouterr().out
    assert f"# F1 in {labelled}: taiwan 1.000, trade 1.000, fentanyl 1.000" in out
    assert f"# F1 in {other}: taiwan 1.000, trade 1.000, fentanyl 1.000" in out
    assert main(["topics", "eval", str(labelled), "--tune-on", str(labelled)]) == 0
    assert capsys.readouterr().out.startswith(f"thresholds chosen on {labelled}: headline ")


def test_a_topics_file_without_thresholds_gets_the_bundled_ones() -> None:
    # As the README says: missing keys keep the bundled values.
    mine = parse_taxonomy("version: '1'\ntopics:\n  - name: chips\n    terms: [chip]\n", "mine")
    partial = parse_taxonomy("version: '1'\nrelevance: {section: 9}\n"
                             "topics:\n  - name: chips\n    terms: [chip]\n", "partial")
    bundled = load_taxonomy().relevance
    assert mine.relevance == bundled
    assert partial.relevance == dataclasses.replace(bundled, section=9)
