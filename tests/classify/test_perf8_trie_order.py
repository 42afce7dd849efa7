"""The gazetteer's automaton with its keys added in ``trie_ordered``'s order (session 8) finds the same
hits, in the same order, as one with the keys added in the data's order."""

from __future__ import annotations

import random

import ahocorasick
from vigil_classify.benchmark import make_alerts
from vigil_classify.engine import Classifier
from vigil_classify.gazetteer import _trie_rank, trie_ordered
from vigil_classify.textnorm import padded
from vigil_shared.events import classified_text


def test_same_hits_in_the_same_order(classifier: Classifier, fixture_texts: list[str]) -> None:
    items = list(classifier.gazetteer.automaton.items())
    rnd = random.Random(7)
    shuffled = items[:]
    rnd.shuffle(shuffled)  # an order with no relation to the ranks
    plain = ahocorasick.Automaton()
    for k, value in shuffled:
        plain.add_word(k, value)
    plain.make_automaton()
    ordered = trie_ordered(shuffled)
    assert len(ordered) == len(plain) == len(items)
    # random runs of keys (overlapping ones too), with other separators and cases
    keys = [k.strip() for k, _v in items]
    seps = (" ", ", ", ". ", "  ", "-", "\n", "é", " the ", "")
    texts = list(fixture_texts)
    texts += [classified_text(title, text) for title, text in make_alerts(300, seed=43)]
    for _ in range(2000):
        words = [rnd.choice(keys) for _ in range(rnd.randint(1, 10))]
        texts.append("".join(w.title() if rnd.random() < 0.3 else w + rnd.choice(seps) for w in words))
    hits = 0
    for text in texts:
        norm = padded(text)
        found = list(ordered.iter(norm))
        assert found == list(plain.iter(norm)), text
        hits += len(found)
    assert hits > 10_000
    for k, value in items[::97]:
        assert ordered.get(k) is value


def test_the_gazetteer_is_loaded_with_the_ordered_automaton(classifier: Classifier) -> None:
    """Its keys are listed (depth first by pyahocorasick: the children of " " in the order they were
    made, or its reverse) with their first letters in rank order, not in the data's order (a test of
    the speed-up only: the hits are the same in any order, see above)."""
    ranks = [_trie_rank(k) for k in classifier.gazetteer.automaton.keys()]  # noqa: SIM118 (an automaton)
    firsts = list(dict.fromkeys(r[1] for r in ranks if len(r) > 1))
    assert len(firsts) > 30
    assert firsts in (sorted(firsts), sorted(firsts, reverse=True))
