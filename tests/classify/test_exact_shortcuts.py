"""The shortcuts of the compiled-build round (session 5) give what they replace, on every input."""

from __future__ import annotations

import random
from collections import Counter

from vigil_classify import engine, geoparse, severity, taxonomy, textnorm
from vigil_classify.taxonomy import LabelEvidence, Reading


def test_sort_hits_is_list_sort() -> None:
    rnd = random.Random(21)
    for _ in range(20_000):
        n = rnd.randint(0, 50)
        span = rnd.choice((4, 30, 400))
        hits = [(rnd.randint(0, span), -rnd.randint(1, 7), (rnd.randint(0, 3),)) for _ in range(n)]
        if rnd.random() < 0.6:
            hits.sort(key=lambda h: h[0] - h[1])  # by end, as the automaton reports them
        ref = sorted(hits)
        got = list(hits)
        textnorm.sort_hits(got)
        assert got == ref, hits


def test_sort_hits_falls_back_on_many_moves() -> None:
    hits = [(i, -1, (i,)) for i in range(300, 0, -1)]  # reversed: far more moves than the budget
    ref = sorted(hits)
    textnorm.sort_hits(hits)
    assert hits == ref


_WORD_PIECES = (
    "no", "not", "nor", "n", "there", "unlikely", "without", "ruled", "denied", "at", "near", "on", "front",
    "vicinity", "targeting", "towards", "NOT", "No", "Nor", "nothing", "snow", "atone", "_", "'", "-", ".",
    " ", "\n", "9", "x", "é",
)  # fmt: skip


def test_sort_automaton_hits_orders_as_sort_hits() -> None:
    """The automaton's own hits (end, (length, ...)) end up in the order sort_hits gives the same
    hits as (start, -length, value), whatever the input order (and on the fallback paths)."""
    rnd = random.Random(22)
    for _ in range(20_000):
        n = rnd.randint(0, 50)
        span = rnd.choice((4, 30, 400))
        made = {(rnd.randint(0, span), rnd.randint(1, 7)) for _ in range(n)}  # (start, length), unique
        hits = [(s + length - 1, (length, (s, length), None, None)) for s, length in made]
        if rnd.random() < 0.6:
            hits.sort(key=lambda h: h[0])  # by end, as the automaton reports them
        else:
            rnd.shuffle(hits)
        if hits and rnd.random() < 0.1:
            hits.append(hits[rnd.randrange(len(hits))])  # the same key twice: list.sort's turn
        ref = [(h[0] - h[1][0] + 1, -h[1][0], h) for h in hits]
        textnorm.sort_hits(ref)
        got = list(hits)
        textnorm.sort_automaton_hits(got)
        assert got == [h for _s, _n, h in ref], hits


def test_sort_automaton_hits_falls_back_on_many_moves() -> None:
    hits = [(i, (1, i)) for i in range(300, 0, -1)]  # reversed: far more moves than the budget
    textnorm.sort_automaton_hits(hits)
    assert hits == sorted(hits)


def test_padded_word_tests_are_the_word_set_tests() -> None:
    rnd = random.Random(23)
    for _ in range(30_000):
        text = "".join(rnd.choice(_WORD_PIECES) + rnd.choice(("", " ", ",")) for _ in range(rnd.randint(0, 8)))
        if not text.isascii():
            continue
        words = taxonomy._ascii_words(text)
        padded = taxonomy._padded_words(text)
        assert taxonomy._has_word(padded, taxonomy._NEGATOR_FIRST_KEYS) == (
            not taxonomy._NEGATOR_FIRST_WORDS.isdisjoint(words)
        ), text
        assert taxonomy._has_word(padded, taxonomy._LOCATIVE_KEYS) == (
            not taxonomy._LOCATIVE_WORDS.isdisjoint(words)
        ), text


def test_known_ascii_flags_change_nothing() -> None:
    rnd = random.Random(24)
    for _ in range(10_000):
        window = "".join(rnd.choice(_WORD_PIECES) + " " for _ in range(rnd.randint(0, 10)))
        if not window.isascii():
            continue
        assert taxonomy._negated_window(window, True) == taxonomy._negated_window(window)
        assert taxonomy._clause_cut(window, True) == taxonomy._clause_cut(window)
        assert taxonomy._locative_before(window, True) == taxonomy._locative_before(window)
        assert geoparse._feature_after(window, True) == geoparse._feature_after(window)


def test_region_stem_and_feature_word_tests_are_the_originals() -> None:
    rnd = random.Random(25)
    pieces = (
        "region", "Provinces", "stat", "state", "oblast", "count", "krai", "territor", "district", "x", " ",
        "prefectur", "departmen", "governorate", "Mount", "Mt", "Mt.", "Lake", "Lac", "Rio", "River", "Cape",
        "Gulf of", "Sea of", "of", "t", "e", "volcano", "St.", "rd", "Ave", "park", "hotel", "é", "\n",
    )  # fmt: skip
    for _ in range(30_000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 6)))
        low = text.lower()
        assert geoparse._has_region_stem(low) == (geoparse._REGION_STEM.search(low) is not None), low
        assert geoparse._ends_with_feature_word(text) == text.endswith(geoparse._FEATURE_WORDS), text
        assert geoparse._feature_after(text) == (geoparse._FEATURE_AFTER.match(text) is not None), text


def test_severity_rules_take_any_collection_and_mapping() -> None:
    rnd = random.Random(26)
    types = ("crime", "terrorism", "kidnapping", "cyber", "natural_disaster", "transport_disruption", "health")
    cue_names = [c for c in severity.CUES if not c.startswith("sev:magnitude")]
    for _ in range(3_000):
        threats = rnd.sample(types, rnd.randint(0, 3))
        cues = {c: rnd.randint(1, 2) for c in rnd.sample(cue_names, rnd.randint(0, 5))}
        text = rnd.choice(("", "A magnitude 6.4 earthquake", "magnitude 4.1 tremor"))
        urg = severity.urgency(threats, cues)
        assert severity.urgency(tuple(threats), Counter(cues)) == urg
        sev = severity.severity(threats, cues, text, urg)
        assert severity.severity(frozenset(threats) if len(threats) < 2 else threats, Counter(cues), text, urg) == sev
        cert = severity.certainty(threats, cues, urg)
        assert severity.certainty(tuple(threats), Counter(cues), urg) == cert
        assert severity.assess(tuple(threats), Counter(cues), text) == (urg, sev, cert)


def test_label_scores_are_in_confidence_then_label_order() -> None:
    rnd = random.Random(27)
    text = "x" * 50
    for _ in range(2_000):
        table = {
            f"label{i}": LabelEvidence(rnd.choice((1.0, 1.5, 2.0, 2.5, 0.5)), [(i, i + 3)])
            for i in rnd.sample(range(20), rnd.randint(0, 8))
        }
        routine = rnd.randint(0, 5)
        got = engine._scores(text, table, routine)
        expected = sorted(
            (engine._confidence(ev.score, routine), label) for label, ev in table.items() if ev.score >= 1.0
        )
        expected.sort(key=lambda item: (-item[0], item[1]))
        assert [(p["confidence"], p["type"]) for p in got] == expected


def test_evidence_and_reading_keep_their_dataclass_behaviour() -> None:
    assert LabelEvidence() == LabelEvidence(0.0, [])
    assert LabelEvidence().spans is not LabelEvidence().spans
    assert LabelEvidence(1.0, [(1, 2)]) == LabelEvidence(score=1.0, spans=[(1, 2)])
    assert repr(LabelEvidence(1.0, [(1, 2)])) == "LabelEvidence(score=1.0, spans=[(1, 2)])"
    reading = Reading({}, {}, {"urg:Past": 1}, 2)
    assert reading == Reading(threats={}, targets={}, cues={"urg:Past": 1}, routine=2)
    found = geoparse._Found(3, "Lima", "city", 0.7)
    assert (found.place, found.name, found.kind, found.confidence, found.evidence) == (3, "Lima", "city", 0.7, [])
    assert geoparse._Found(1, "a", "city", 0.5).evidence is not geoparse._Found(1, "a", "city", 0.5).evidence


def test_locative_search_from_the_floor_is_the_full_search() -> None:
    rnd = random.Random(28)
    pieces = (
        "at", "near", "on", "in front of", "attack on", "area around", "vicinity of", "surrounding", "the",
        "The", "U.S.", "Embassy", "Main", "St.", "x_y", "2", "²", "ſ", "\u212a", "İ", "ı", " ", "  ", "\n", "\t",
        ",", ":", "-", "'", "’", "(", ")", "é", "Ωmega", ".",
    )  # fmt: skip
    for _ in range(30_000):
        window = "".join(rnd.choice(pieces) + rnd.choice(("", " ")) for _ in range(rnd.randint(0, 9)))
        floor = taxonomy._locative_floor(window)
        ref = taxonomy._LOCATIVE.search(window)
        got = taxonomy._LOCATIVE.search(window, floor)
        assert (got and got.span()) == (ref and ref.span()), window
        assert taxonomy._locative_before(window) == (ref is not None), window


def test_no_before_with_the_normalised_text_is_the_window_test() -> None:
    """_no_before searches the normalised text for "no" first; the outcome is the window test's
    ("no" or "No" in the window, then the negator), for any case and script."""
    rnd = random.Random(25)
    pieces = (*_WORD_PIECES, "NO", "nO", "Nö", "ño", "no.", "Not", "N", "o", "kno", "w")
    for _ in range(20_000):
        text = "".join(rnd.choice(pieces) + rnd.choice(("", " ", ",", "\n")) for _ in range(rnd.randint(0, 30)))
        if not text:
            continue
        norm = textnorm.padded(text)
        ascii = text.isascii()
        start = rnd.randint(0, len(text))
        lo = max(0, start - rnd.choice((60, 10, 3)))
        window = text[lo:start]
        want = ("no" in window or "No" in window) and taxonomy._negated_window(window, ascii)
        assert taxonomy._no_before(text, norm, lo, start, ascii) == want, (text, lo, start)


def test_magnitude_from_the_normalised_text_is_the_search() -> None:
    rnd = random.Random(26)
    pieces = ("magnitude", "Magnitude", "MAGNITUDE", "mAgNiTuDe", "magnitud", " ", "-", " of ", "6.4", "5", ".", "é")
    for _ in range(20_000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 10)))
        want = severity._MAGNITUDE.search(text)
        for got in (severity._magnitude(text), severity._magnitude(text, textnorm.padded(text))):
            assert (got and got.span(), got and got.group(1)) == (want and want.span(), want and want.group(1)), text


def test_fold_memo_is_the_fold() -> None:
    rnd = random.Random(27)
    pieces = ("São", " ", "-", "Paulo", "ST.", "Zürich", "x", "  ")
    for _ in range(5_000):
        name = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 5)))
        assert geoparse._fold(name) == " ".join(textnorm.normalise(name).split()) == geoparse._fold(name)


def test_negated_window_from_the_normalised_text_is_the_window_test() -> None:
    rnd = random.Random(28)
    for _ in range(20_000):
        text = "".join(rnd.choice(_WORD_PIECES) + rnd.choice(("", " ", ",", ";")) for _ in range(rnd.randint(0, 30)))
        if not text.isascii():
            continue
        norm = textnorm.padded(text)
        start = rnd.randint(0, len(text))
        lo = max(0, start - rnd.choice((60, 10, 3)))
        window = text[lo:start]
        assert taxonomy._negated_window(window, True, norm, lo) == taxonomy._negated_window(window), (text, lo, start)
