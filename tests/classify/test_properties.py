from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from vigil_classify.engine import Classifier
from vigil_classify.textnorm import normalise
from vigil_shared.events import classified_text

_clf = Classifier()

WORDS = st.sampled_from(
    [
        "Moscow",
        "Nice",
        "protests",
        "no",
        "not",
        "airport",
        "closed",
        "bomb",
        "İstanbul",
        "Kahramanmaraş",
        "U.S.",
        "Embassy",
        "St.",
        "Petersburg",
        ",",
        ".",
        "\n",
        "🙂",
        "ß",
        "ǅ",
        "magnitude 7.2",
        "border with",
    ]
)
TEXT = st.one_of(st.text(), st.lists(st.one_of(WORDS, st.text(max_size=5)), max_size=40).map(" ".join))


def _check(title: str, text: str) -> None:
    result = _clf.classify(text, title=title, issuer="U.S. Embassy Moscow")
    full = classified_text(title, text)
    spans = [ev for t in (*result.threat_types, *result.targets) for ev in t.evidence]
    spans += [ev for loc in result.locations for ev in loc.evidence]
    for ev in spans:
        assert 0 <= ev.start < ev.end <= len(full)
        assert full[ev.start : ev.end] == ev.text
    assert result.is_threat == bool(result.threat_types)
    assert set(result.countries) >= {loc.country_code for loc in result.locations}


@settings(max_examples=300, deadline=None)
@given(title=st.text(max_size=30), text=TEXT)
def test_arbitrary_text_never_crashes_and_offsets_are_exact(title: str, text: str) -> None:
    _check(title, text)


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_normalise_keeps_length(text: str) -> None:
    assert len(normalise(text)) == len(text)


@settings(max_examples=50, deadline=None)
@given(text=TEXT)
def test_deterministic(text: str) -> None:
    assert _clf.classify(text) == _clf.classify(text)
