"""Shortcuts in the classifier's hot path that must not change what it computes."""

from __future__ import annotations

import pytest
from vigil_classify import taxonomy
from vigil_classify.engine import Classifier
from vigil_classify.taxonomy import LabelEvidence, Taxonomy
from vigil_classify.textnorm import padded


def test_neutral_phrases_keep_their_key_but_no_entry() -> None:
    tax = Taxonomy()
    labels, _cues = tax.entries[" security plans "]
    assert labels == ()
    # still a label hit, so it absorbs the shorter cues it overlaps
    hits = tax.hits(" review your security plans now ")
    assert (12, 26, ()) in hits
    assert [h for h in hits if 12 <= h[0] < 26] == [(12, 26, ())]
    assert all(e[0] != "neutral" for ls, _c in tax.entries.values() if ls for e in ls)


def test_evidence_made_without_init_equals_the_dataclass() -> None:
    ev = taxonomy._evidence(1.0, (3, 9))
    assert type(ev) is LabelEvidence
    assert ev == LabelEvidence(score=1.0, spans=[(3, 9)])
    assert taxonomy._evidence(0.5, (0, 1)).spans is not taxonomy._evidence(0.5, (0, 1)).spans
    # a first credit of an int weight is a float, as 0.0 + weight was
    assert type(taxonomy._evidence(1, (0, 1)).score) is float


def test_rare_negation_hints_need_the_ascii_apostrophe_for_nt() -> None:
    assert taxonomy._Negation("They didn't see it.").rare
    assert not taxonomy._Negation("They didn’t see it.").rare
    assert not taxonomy._Negation("It's fine, go on.").rare
    assert taxonomy._Negation("Attacks are unlikely.").rare


def test_region_cue_still_turns_a_city_into_a_region(classifier: Classifier) -> None:
    # The cue is evaluated lazily (only for a region candidate or a city winner).
    text = "Flooding in Hatay, Gaziantep and Kahramanmaras provinces closed roads."
    kinds = {loc.name: loc.kind for loc in classifier.classify(text).locations}
    assert kinds.get("Gaziantep") == "region" or kinds.get("Hatay") == "region"


def test_read_found_is_read_of_the_resolved_hits(classifier: Classifier, fixture_texts: list[str]) -> None:
    """The fused path (raw hits resolved inside the loop) reads exactly what read() reads."""
    from test_one_pass import _mixed, _texts

    gaz, tax = classifier.gazetteer, classifier.taxonomy
    for text in _texts(fixture_texts) + _mixed(tax, gaz, 1500):
        found = list(gaz.automaton.iter(padded(text)))
        assert taxonomy.read_found(text, found) == taxonomy.read(text, tax.hits_in(found)), text


def test_read_keeps_a_cue_hit_that_overlaps_a_label_hit() -> None:
    # hits() is the label table's hits followed by the cue table's: a cue inside a label phrase is
    # a hit of its own table and is counted (read() must not resolve the two tables together).
    text = "Further attacks are expected."
    label = (8, 15, (("threat", "terrorism", 1.0),))
    cue = (8, 15, (("cue", "urg:Expected", 1.0),))
    reading = taxonomy.read(text, [label, cue])
    assert reading.cues == {"urg:Expected": 1}
    assert reading.threats["terrorism"].spans == [(8, 15)]
    # and within one table a later overlapping hit is dropped by read_found's resolution
    found = [(15, (8, None, label[2], None)), (15, (4, None, (("threat", "crime", 1.0),), None))]
    assert set(taxonomy.read_found(text, found).threats) == {"terrorism"}


def test_raw_hit_entry_points_match_the_found_based_ones(classifier: Classifier, fixture_texts: list[str]) -> None:
    """The engine splits the automaton's hits by table in one loop; the results are those of
    find_location_data and read_found on the same hits."""
    from test_one_pass import _mixed, _texts
    from vigil_classify import geoparse

    gaz, tax = classifier.gazetteer, classifier.taxonomy
    for text in _texts(fixture_texts) + _mixed(tax, gaz, 500):
        norm = padded(text)
        found = list(gaz.automaton.iter(norm))
        places = [(e - v[0] + 1, -v[0], v[1]) for e, v in reversed(found) if v[1] is not None]
        labels = [(e - v[0] + 1, -v[0], v[2]) for e, v in reversed(found) if v[2] is not None]
        cues = [(e - v[0] + 1, -v[0], v[3]) for e, v in reversed(found) if v[3] is not None]
        assert geoparse.location_data_from_raw(gaz, text, places) == geoparse.find_location_data(
            gaz, text, norm, None, found
        )
        assert taxonomy.read_raw(text, labels, cues) == taxonomy.read_found(text, found)


def test_sentence_fallback_reads_the_same(
    classifier: Classifier, fixture_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When sentence_ids gives up (a position that is not alphanumeric), the sentence split up to
    the last hit (endpos from the sorted tables) numbers the positions the same way."""
    from test_one_pass import _texts

    gaz = classifier.gazetteer
    texts = _texts(fixture_texts)
    founds = [list(gaz.automaton.iter(padded(text))) for text in texts]
    expected = [taxonomy.read_found(text, found) for text, found in zip(texts, founds, strict=True)]
    monkeypatch.setattr(taxonomy, "sentence_ids", lambda _text, _positions: None)
    for text, found, want in zip(texts, founds, expected, strict=True):
        assert taxonomy.read_found(text, found) == want, text


def test_credit_all_is_credit_of_each_hit_in_order() -> None:
    import random

    rnd = random.Random(4)
    for _ in range(300):
        hits = [
            (rnd.randint(0, 99), rnd.choice("abc"), rnd.choice((0.0, 0.5, 1, 1.0)), (rnd.randint(0, 9), i))
            for i in range(rnd.randint(0, 9))
        ]
        start = {"a": taxonomy._evidence(0.25, (1, 2))} if rnd.random() < 0.5 else {}
        one_by_one = {k: LabelEvidence(v.score, list(v.spans)) for k, v in start.items()}
        for _pos, label, weight, span in hits:
            taxonomy._credit(one_by_one, label, weight, span)
        together = {k: LabelEvidence(v.score, list(v.spans)) for k, v in start.items()}
        taxonomy._credit_all(together, hits)
        assert together == one_by_one
        assert list(together) == list(one_by_one)  # same label order
        assert all(len(ev.spans) <= 3 for ev in together.values())
