"""One automaton pass for places and cues gives exactly what the two separate passes gave."""

from __future__ import annotations

import random
from pathlib import Path

from vigil_classify import gazetteer, geoparse
from vigil_classify.benchmark import make_alerts
from vigil_classify.engine import Classifier
from vigil_classify.gazetteer import Gazetteer
from vigil_classify.taxonomy import Taxonomy
from vigil_classify.textnorm import padded
from vigil_shared.events import classified_text


def _texts(fixture_texts: list[str]) -> list[str]:
    return fixture_texts + [classified_text(title, text) for title, text in make_alerts(300, seed=23)]


def _mixed(tax: Taxonomy, gaz: Gazetteer, n: int) -> list[str]:
    """Random runs of cue phrases and place names (overlapping keys of both tables)."""
    rnd = random.Random(9)
    cues = sorted(k.strip() for k in tax.entries)
    names = sorted(gaz.key_forms.values())[::40]
    seps = (" ", ", ", ". ", " - ", "  ", "\n", " the ", " in ")
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rnd.randint(1, 12)):
            word = rnd.choice(cues) if rnd.random() < 0.6 else rnd.choice(names)
            parts.append(word.title() if rnd.random() < 0.4 else word)
            parts.append(rnd.choice(seps))
        out.append("".join(parts))
    return out


def test_the_gazetteer_carries_the_taxonomy(classifier: Classifier) -> None:
    assert classifier._one_pass
    auto = classifier.gazetteer.automaton
    for key, (labels, cues) in classifier.taxonomy.entries.items():
        value = auto.get(key)
        assert value[0] == len(key)
        assert value[2:] == (labels, cues)
    # A place name keeps its candidates, and a key that is only a cue phrase has none.
    assert auto.get(" moscow ")[1]
    assert auto.get(" shelter in place ")[1] is None


def test_same_hits_and_places_as_two_passes(classifier: Classifier, fixture_texts: list[str]) -> None:
    gaz, tax = classifier.gazetteer, classifier.taxonomy
    for text in _texts(fixture_texts) + _mixed(tax, gaz, 1500):
        norm = padded(text)
        found = list(gaz.automaton.iter(norm))
        assert tax.hits_in(found) == tax.hits(norm), text
        assert geoparse.find_location_data(gaz, text, norm, None, found) == geoparse.find_location_data(
            gaz, text, norm, None
        )


def test_a_classifier_without_the_taxonomy_in_its_gazetteer_gives_the_same_results(
    classifier: Classifier,
) -> None:
    """Two passes (a gazetteer built without the taxonomy's phrases) give the same results."""
    gaz = classifier.gazetteer
    # The same places and names without the extra phrases: drop them from a copy of the automaton.
    import ahocorasick

    auto = ahocorasick.Automaton()
    for key, value in gaz.automaton.items():
        if value[1] is not None:
            auto.add_word(key, (value[0], value[1], None, None))
    auto.make_automaton()
    two = Classifier(Gazetteer(gaz.places, auto, gaz.key_forms), classifier.taxonomy)
    assert not two._one_pass
    for title, text in make_alerts(300, seed=29):
        assert two.classify_payload(text, title=title) == classifier.classify_payload(text, title=title)


def test_extra_digest_follows_the_phrases() -> None:
    tax = Taxonomy()
    digest = gazetteer.extra_digest(tax.entries)
    assert digest == gazetteer.extra_digest(dict(tax.entries))
    changed = dict(tax.entries)
    changed[" a new phrase "] = ((("threat", "crime", 1.0),), None)
    assert gazetteer.extra_digest(changed) != digest


def test_prune_keeps_the_newest_files_with_extra_phrases(tmp_path: Path) -> None:
    import os

    stem = "gazetteer-4-f2-x"
    for i in range(5):
        p = tmp_path / f"{stem}-x{i}.pickle"
        p.write_bytes(b"")
        os.utime(p, (1000 + i, 1000 + i))
    plain = tmp_path / f"{stem}.pickle"
    plain.write_bytes(b"")
    gazetteer._prune(tmp_path, stem)
    # Room for the file about to be written: the two newest stay, the plain cache file is untouched.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{stem}-x3.pickle", f"{stem}-x4.pickle", f"{stem}.pickle"]
    )
