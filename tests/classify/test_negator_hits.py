"""Negation tests from the negators' word hits (session 7) give what :class:`taxonomy._Negation` gives."""

from __future__ import annotations

import random

from vigil_classify import taxonomy, textnorm
from vigil_classify.benchmark import make_alerts
from vigil_classify.engine import Classifier
from vigil_classify.taxonomy import NEGATOR_KEYS, NEGATOR_MARK, Taxonomy
from vigil_shared.events import classified_text

_PIECES = (
    "no", "not", "nor", "n", "n't", "there", "There", "unlikely", "Unlikely", "without", "ruled", "ruled out", "denied",
    "NOT", "No", "NO", "nO", "Nor", "nothing", "snow", "casino", "Reno", "cannot", "don't", "isn't", "can't", "won’t",
    "there is no", "there were", "is", "are", "do", "does", "will", "and", "but", "however", "And", "threat", "attack",
    "bombing", "protest", "explosion", "flights", "cancelled", "closed", "_", "'", "-", ".", "x", "9", "Moscow",
)  # fmt: skip
_SEPS = ("", " ", " ", " ", ", ", ". ", "; ", ": ", "  ", "\n", "-", "'", "!", "?")


def _texts(rnd: random.Random, n: int) -> list[str]:
    return [
        "".join(rnd.choice(_PIECES) + rnd.choice(_SEPS) for _ in range(rnd.randint(0, 40))) for _ in range(n)
    ]


def _negs(classifier: Classifier, norm: str) -> list[int]:
    """The starts of the negator-word hits, as the engine collects them."""
    mark = classifier._neg_mark
    return [end - value[0] + 1 for end, value in classifier.gazetteer.automaton.iter(norm) if value[2] is mark]


def test_the_taxonomy_marks_every_negator_first_word() -> None:
    tax = Taxonomy()
    assert set(NEGATOR_KEYS) == {textnorm.key(w.decode()) for w in taxonomy._NEGATOR_FIRST_WORDS}
    for k in NEGATOR_KEYS:
        labels, _cues = tax.entries[k]
        assert labels is NEGATOR_MARK  # one object for all (the engine tells the hits by it)
    # no rule reads the mark: its category is none of those _read dispatches on
    assert NEGATOR_MARK[0][0] not in {"threat", "target", "cue", "routine", "tr_subject", "singular", "tr_effect",
                                      "weak_terror", "western", "tr_suppress", "neutral"}  # fmt: skip


def test_the_engine_uses_the_negator_hits(classifier: Classifier) -> None:
    """The loaded gazetteer (built or unpickled) shares one mark among the negator keys."""
    assert classifier._neg_mark is not None
    auto = classifier.gazetteer.automaton
    assert all(auto.get(k)[2] is classifier._neg_mark for k in NEGATOR_KEYS)


def test_negated_at_is_the_negation_test(classifier: Classifier) -> None:
    rnd = random.Random(71)
    checked = negated = 0
    for text in _texts(rnd, 6000):
        if not text or not text.isascii():
            continue
        norm = textnorm.padded(text)
        negs = _negs(classifier, norm)
        ref = taxonomy._Negation(text)
        # where a hit can start: a word's first character (the automaton's keys are whole words)
        starts = [i for i in range(len(text)) if norm[i] == " " and norm[i + 1] != " "]
        for start in rnd.sample(starts, min(6, len(starts))):
            lo = start - 60 if start > 60 else 0
            want = ref(start)
            assert taxonomy._negated_at(text, norm, lo, start, negs) == want, (text, start)
            checked += 1
            negated += want
    assert negated > 1000
    assert checked - negated > 1000


def test_negated_at_window_edges(classifier: Classifier) -> None:
    """Windows that cut a word ending with a negator's first word ("casino", "Reno", "can't"), at
    every offset."""
    texts = [
        "x" * 50 + "casino threat is here today, yes " + "a" * 10 + " attack",
        "Reno" + " " * 57 + "bombing",
        "xcan't" + " " * 56 + "bombing",
        "xcan'" + " " * 56 + "bombing",
        "xnor bombing and xthere is a bombing, Xno: attack " * 3,
        "ano_ " * 30,
    ]
    for text in texts:
        norm = textnorm.padded(text)
        negs = _negs(classifier, norm)
        ref = taxonomy._Negation(text)
        for start in (i for i in range(len(text)) if norm[i] == " " and norm[i + 1] != " "):
            lo = start - 60 if start > 60 else 0
            assert taxonomy._negated_at(text, norm, lo, start, negs) == ref(start), (text, start)


def test_read_with_and_without_the_negator_hits(classifier: Classifier, fixture_texts: list[str]) -> None:
    """The whole reading is the same with the negator hits (ASCII texts) as with _Negation."""
    texts = list(fixture_texts)
    texts += [classified_text(t, x) for t, x in make_alerts(500, seed=71)]
    texts += _texts(random.Random(72), 3000)
    for text in texts:
        norm = textnorm.padded(text)
        found = list(classifier.gazetteer.automaton.iter(norm))
        negs = [e - v[0] + 1 for e, v in found if v[2] is classifier._neg_mark]
        labels = [h for h in found if h[1][2] is not None and h[1][2] is not classifier._neg_mark]
        cues = [h for h in found if h[1][3] is not None]
        with_negs = taxonomy.read_hits(text, list(labels), list(cues), norm, negs)
        # the reference: every label hit (the marked ones too), negation by _Negation
        ref = taxonomy.read_hits(text, [h for h in found if h[1][2] is not None], list(cues), norm)
        assert with_negs == ref, text


def test_ascii_clause_cut_is_the_clause_cut() -> None:
    rnd = random.Random(73)
    pieces = ("and", "AND", "And", "but", "But", "however", "HOWEVER", "band", "butter", "andy", "_and", "and_",
              "whoever", "x", "9", "t", "d", "r", ",", ";", ":", ".", "!", "?", " ", "'", "-", "\n")  # fmt: skip
    for _ in range(30_000):
        window = "".join(rnd.choice(pieces) + rnd.choice(("", " ", "")) for _ in range(rnd.randint(0, 14)))
        assert taxonomy._ascii_clause_cut(window) == taxonomy._clause_cut(window, True), window
