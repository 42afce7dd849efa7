"""Shortcuts in the classifier's hot path that must not change what it computes."""

from __future__ import annotations

from vigil_classify import taxonomy
from vigil_classify.engine import Classifier
from vigil_classify.taxonomy import LabelEvidence, Taxonomy


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
    ev = taxonomy._evidence(1.0, 3, 9)
    assert type(ev) is LabelEvidence
    assert ev == LabelEvidence(score=1.0, spans=[(3, 9)])
    assert taxonomy._evidence(0.5, 0, 1).spans is not taxonomy._evidence(0.5, 0, 1).spans
    # a first credit of an int weight is a float, as 0.0 + weight was
    assert type(taxonomy._evidence(1, 0, 1).score) is float


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
