"""Threat-type and target detection from the curated taxonomy (:mod:`vigil_classify.taxonomy_data`).

One Aho-Corasick automaton holds every cue phrase (threats, targets, transport sub-rules, negators,
routine business, severity cues). Rules on top of the raw hits:

* *Longest match*: overlapping hits keep the longest ("bomb shelter" absorbs "bomb").
* *Negation*: a threat cue preceded in its clause by a negator ("no knowledge of any plot", "no
  reports of protests") does not count; imperative "do not" is not a negator.
* *Weak terrorism cues* ("attacks against", "explosion", "could be targeted") count as terrorism
  only when a target is named in the same sentence and the sentence has no military or crime cue.
* *Transport disruption* also comes from a transport subject and an effect in the same sentence
  ("Flights ... may be cancelled", "roads and the airport are closed") unless the sentence says it
  "remains open".
* *Singular institutions* ("Embassy", "Parliament") are targets only after a locative word.
* *Westerners' venues*: "frequented by / popular with" + Westerners / foreigners / Western visitors.
* A label needs a total weight of 1.0; targets are only reported for threats.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import ahocorasick

from vigil_classify import severity as sev
from vigil_classify import taxonomy_data as data
from vigil_classify.geoparse import REGION_KEYS
from vigil_classify.textnorm import _ASCII_MAP, AutomatonHit, padded, sort_automaton_hits
from vigil_classify.textnorm import key as norm_key

Entry = tuple[str, str, float]
"""(category, label, weight)."""


def _plural(word: str) -> str:
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    return word + "s"


def expand(phrase: str) -> list[str]:
    """``"shopping mall+"`` -> ``["shopping mall", "shopping malls"]``; ``"facilit+y"`` -> y/ies."""
    if phrase.endswith("+y"):
        stem = phrase[:-2]
        return [stem + "y", stem + "ies"]
    if phrase.endswith("+"):
        base = phrase[:-1]
        words = base.split(" ")
        return [base, " ".join([*words[:-1], _plural(words[-1])])]
    return [phrase]


Hit = tuple[int, int, tuple[Entry, ...]]
"""A cue hit: ``(start, end, entries)``, ``[start, end)`` in the original text and the entries of the
phrase found there (a plain tuple: hits are made by the ten thousand)."""


class Taxonomy:
    """The compiled cue automaton."""

    def __init__(self) -> None:
        table: dict[str, list[Entry]] = {}

        def add(phrase: str, entry: Entry) -> None:
            for form in expand(phrase):
                k = norm_key(form)
                slot = table.setdefault(k, [])
                if entry not in slot:
                    slot.append(entry)

        for label, phrases in data.THREATS.items():
            for phrase, weight in phrases:
                add(phrase, ("threat", label, weight))
        for label, phrases in data.TARGETS.items():
            for phrase, weight in phrases:
                add(phrase, ("target", label, weight))
        for label, names in data.SINGULAR_INSTITUTIONS.items():
            for name in names:
                add(name, ("singular", label, 1.0))
        for phrase in data.WESTERN_WORDS:
            add(phrase, ("western", "westerners_venues", 1.0))
        for phrase in data.WEAK_TERROR:
            add(phrase, ("weak_terror", "terrorism", 1.0))
        for phrase in data.TRANSPORT_SUBJECTS:
            add(phrase, ("tr_subject", "transport_disruption", 1.0))
        for phrase in data.AIR_SUBJECTS:
            add(phrase, ("tr_subject", "air", 1.0))
        for phrase in data.TRANSPORT_EFFECTS:
            add(phrase, ("tr_effect", "transport_disruption", 1.0))
        for phrase in data.TRANSPORT_SUPPRESS:
            add(phrase, ("tr_suppress", "transport_disruption", 1.0))
        for phrase in data.NEUTRAL:
            add(phrase, ("neutral", "", 0.0))
        for phrase in data.ROUTINE:
            add(phrase, ("routine", "", 0.0))
        cue_table: dict[str, list[Entry]] = {}
        for cat, cue_phrases in sev.CUES.items():
            for cue in cue_phrases:
                for form in expand(cue):
                    cue_table.setdefault(norm_key(form), []).append(("cue", cat, 1.0))
        marks = {k: NEGATOR_MARK for k in NEGATOR_KEYS} | {k: REGION_MARK for k in REGION_KEYS}
        self.entries = _entries(table, cue_table, marks)
        """Padded key -> (label entries or ``None``, severity-cue entries or ``None``): what the
        gazetteer's automaton carries besides place names (:meth:`hits_in`). The first words of the
        negators (:data:`NEGATOR_KEYS`) are keys too, with :data:`NEGATOR_MARK` for label entries:
        their hits tell :func:`read_hits` where a negator can start; so are the region words of
        geoparse's region cue (``geoparse.REGION_KEYS``, with :data:`REGION_MARK`)."""
        self.automaton = _compile(self.entries)

    def hits(self, norm_padded: str) -> list[Hit]:
        """Non-overlapping hits (longest first) of the label cues, then of the severity cues.

        One automaton pass serves both tables; each table's hits are then resolved on their own.
        """
        found = list(self.automaton.iter(norm_padded))
        labels = [(e - n + 1, -n, a) for e, (n, a, _c) in found if a is not None]
        cues = [(e - n + 1, -n, c) for e, (n, _a, c) in found if c is not None]
        return _greedy(labels) + _greedy(cues)

    def hits_in(self, found: list[tuple[int, tuple[int, Any, Any, Any]]]) -> list[Hit]:
        """:meth:`hits` from a pass of an automaton whose values are ``(length, anything, label
        entries, cue entries)`` and which holds every key of :attr:`entries` with its value (the
        gazetteer's, loaded with ``extra=self.entries``): the same hits, without a second pass."""
        labels = [(e - v[0] + 1, -v[0], v[2]) for e, v in found if v[2] is not None]
        cues = [(e - v[0] + 1, -v[0], v[3]) for e, v in found if v[3] is not None]
        return _greedy(labels) + _greedy(cues)


def _entries(
    table: dict[str, list[Entry]],
    cue_table: dict[str, list[Entry]],
    marks: dict[str, tuple[Entry, ...]] | None = None,
) -> dict[str, tuple[tuple[Entry, ...] | None, tuple[Entry, ...] | None]]:
    """Both tables by key: ``(label entries, cue entries)`` with ``None`` for a table that does not
    hold the key.

    A neutral phrase ("bomb shelter") only absorbs the shorter cues it overlaps; :func:`read` has no
    rule for it, so its entry is left out and its key keeps an empty tuple (still a label hit). A key
    of ``marks`` is a label key too, with its mark (one shared object) unless it has label entries of
    its own."""
    out: dict[str, tuple[tuple[Entry, ...] | None, tuple[Entry, ...] | None]] = {}
    marked = marks or {}
    for k in dict.fromkeys([*table, *cue_table, *marked]):
        entries = table.get(k)
        cues = cue_table.get(k)
        out[k] = (
            tuple(e for e in entries if e[0] != "neutral") if entries else marked.get(k),
            tuple(cues) if cues else None,
        )
    return out


def _compile(
    entries: dict[str, tuple[tuple[Entry, ...] | None, tuple[Entry, ...] | None]],
) -> ahocorasick.Automaton:
    """One automaton over both tables; a key's value is ``(length, label entries, cue entries)``."""
    auto = ahocorasick.Automaton()
    for k, (labels, cues) in entries.items():
        auto.add_word(k, (len(k), labels, cues))
    auto.make_automaton()
    return auto


def _greedy(raw: list[tuple[int, int, tuple[Entry, ...]]]) -> list[Hit]:
    # (start, -length) sorts leftmost-longest first; equal (start, length) means the same key, so the
    # entries never take part in a comparison.
    raw.sort()
    out: list[Hit] = []
    last_end = -1
    for start, neg_len, entries in raw:
        if start >= last_end:
            last_end = start - neg_len - 2
            out.append((start, last_end, entries))
    return out


_SENTENCE_END: Final = re.compile(r"[.!?;\n](?:(?<=[.!?;])[.!?;]*[\s\"”’)]+|(?<=\n)\n*)")
"""``[.!?;]+[\\s"”’)]+|\\n+`` written to start with one character class, which ``re`` scans for in C."""
_ABBREV = re.compile(r"(?:\b[A-Z]|\b[A-Z]\.[A-Z]|\bSt|\bMr|\bMrs|\bDr|\bNo|\bMt|\bGen|\bvs)$")
_NEGATOR: Final = re.compile(
    r"\b(?:no longer|no reports? of|no knowledge of|not aware of|no indication|no evidence|no specific|"
    r"no credible|no known|there (?:is|are|was|were) no|not expected|unlikely|without|ruled out|denied|"
    r"no threat|nor|no|(?<!do )(?<!does )(?<!did )(?<!should )(?<!must )(?<!will )not|n't)\b[^,;:.]*$",
    re.IGNORECASE,
)
_CLAUSE_BREAK: Final = re.compile(r"[,;:.!?]|\bbut\b|\bhowever\b|\band\b", re.IGNORECASE)
_LOCATIVE: Final = re.compile(
    r"\b(?:at|near|outside|around|against|on|toward|towards|in front of|targeting|attack on|"
    r"area around|vicinity of|surrounding)\s+(?:the\s+)?(?:[A-Z][\w.]*\s+){0,3}$",
    re.IGNORECASE,
)
_NEGATOR_FIRST_WORDS: Final = frozenset(
    {b"no", b"not", b"nor", b"there", b"unlikely", b"without", b"ruled", b"denied", b"n"}
)
"""The first word of every :data:`_NEGATOR` alternative: a match starts at a word boundary with one of
them as a whole word, so an ASCII clause without one among its :func:`_ascii_words` cannot match."""
_LOCATIVE_WORDS: Final = frozenset(
    {b"at", b"near", b"outside", b"around", b"against", b"on", b"toward", b"towards", b"front"}
    | {b"targeting", b"vicinity", b"surrounding"}
)
"""A word of every :data:`_LOCATIVE` alternative ("front" for "in front of", "on" for "attack on",
"around" for "area around", "vicinity" for "vicinity of"), each a whole word in any match."""


def _ascii_words(text: str) -> list[bytes]:
    """The lower-cased letter-and-digit runs of an ASCII ``text``.

    Every whole word (``\\w`` run without ``_``) of ``text`` is one of them; in ASCII text
    ``re.IGNORECASE`` folds exactly ``A-Z`` to ``a-z``.
    """
    return text.encode("ascii").translate(_ASCII_MAP).split()


def _padded_words(text: str) -> str:
    """The ASCII ``text`` lower-cased with every character other than a letter or digit made a space,
    padded with a space on each side: a word ``w`` is one of :func:`_ascii_words` exactly when
    ``f" {w} "`` occurs in it (a str: ``in`` on bytes first tries the needle as an int)."""
    return f" {text.encode('ascii').translate(_ASCII_MAP).decode('ascii')} "


def _has_word(padded_words: str, keys: tuple[str, ...]) -> bool:
    """Whether one of ``keys`` (padded words, see :func:`_padded_words`) occurs in ``padded_words``:
    ``not words.isdisjoint(_ascii_words(text))`` with substring tests instead of a list of word
    objects and a hash of each."""
    return any(k in padded_words for k in keys)


_NEGATOR_FIRST_KEYS: Final = tuple(f" {w.decode('ascii')} " for w in sorted(_NEGATOR_FIRST_WORDS))
NEGATOR_KEYS: Final = _NEGATOR_FIRST_KEYS
"""The automaton keys of :data:`_NEGATOR_FIRST_WORDS` (padded like every key): the taxonomy carries
them with :data:`NEGATOR_MARK` for label entries (see :func:`read_hits`)."""
NEGATOR_MARK: Final[tuple[Entry, ...]] = (("negator", "", 0.0),)
"""The label entries of the keys of :data:`NEGATOR_KEYS` that have none of their own, one object for
all of them (so one after pickling, too): a hit with it is where a negator can start. :func:`_read`
has no rule for its category."""
REGION_MARK: Final[tuple[Entry, ...]] = (("region_word", "", 0.0),)
"""The label entries of ``geoparse.REGION_KEYS``, as :data:`NEGATOR_MARK` is for the negators."""
_NEGATOR_FIRST_STRS: Final = frozenset(w.decode("ascii") for w in _NEGATOR_FIRST_WORDS)
_LOCATIVE_KEYS: Final = tuple(f" {w.decode('ascii')} " for w in sorted(_LOCATIVE_WORDS))


def _locative_before(window: str, ascii: bool = False) -> bool:
    """``_LOCATIVE.search(window) is not None``, skipping the regex for an ASCII window without one of
    :data:`_LOCATIVE_WORDS`. ``ascii=True`` says the window is known to be ASCII (a slice of an
    ASCII text), which spares the test."""
    if (ascii or window.isascii()) and not _has_word(_padded_words(window), _LOCATIVE_KEYS):
        return False
    return _LOCATIVE.search(window, _locative_floor(window)) is not None


_LOCATIVE_STRS: Final = frozenset(w.decode("ascii") for w in _LOCATIVE_WORDS)
_LOCATIVE_INITIALS: Final = frozenset(ord(w[:1]) for w in _LOCATIVE_WORDS)
_LOCATIVE_LONGEST: Final = max(len(w) for w in _LOCATIVE_WORDS)


def _ascii_alnum(c: int) -> bool:
    """``chr(c).isalnum()`` for an ASCII code ``c``."""
    return 97 <= c <= 122 or 65 <= c <= 90 or 48 <= c <= 57


def _ascii_locative_before(text: str, lo: int, start: int) -> bool:
    """``_locative_before(text[lo:start], True)`` for an ASCII ``text``, in one scan of character codes
    from ``start`` back to :func:`_locative_floor`'s floor: a match lies after the floor, so one of
    :data:`_LOCATIVE_WORDS` must be a word there (the words as :func:`_ascii_words` makes them; the
    floor's first word is whole); only then are the window and the regex search made."""
    i = start - 1
    found = False
    while i >= lo:
        c = ord(text[i])
        if _ascii_alnum(c):
            last = i
            while i > lo and _ascii_alnum(ord(text[i - 1])):
                i -= 1
            if (
                not found
                and last - i < _LOCATIVE_LONGEST
                and (ord(text[i]) | 32) in _LOCATIVE_INITIALS
                and text[i : last + 1].lower() in _LOCATIVE_STRS
            ):
                found = True
        elif not (c == 95 or c == 46 or c == 32 or 9 <= c <= 13 or 28 <= c <= 31):
            break  # (_locative_floor's test: alphanumeric, "_", "." or whitespace)
        i -= 1
    if not found:
        return False
    return _LOCATIVE.search(text[lo:start], i + 1 - lo) is not None


def _locative_floor(window: str) -> int:
    """The earliest offset a :data:`_LOCATIVE` match can start at in ``window``: just after its last
    character that no match can hold. A match runs to the end of the window (``$``, or the final
    newline before it) through word characters (the alternatives, ``the``, ``[A-Z]`` folded,
    ``[\\w.]``), ``.`` and whitespace only; searching from there finds the same match (``\\b`` still
    sees the character before) without the regex trying, and backtracking at, every earlier
    position."""
    i = len(window) - 1
    while i >= 0:
        ch = window[i]
        if not (ch.isalnum() or ch == "_" or ch == "." or ch.isspace()):
            break
        i -= 1
    return i + 1


_WESTERN_VERB: Final = re.compile(
    r"\b(?:" + "|".join(re.escape(v) for v in data.WESTERN_VERBS) + r")\s+(?:\w+\s+){0,2}$",
    re.IGNORECASE,
)


_WESTERN_VERB_WORDS: Final = tuple(v.lower() for v in data.WESTERN_VERBS)


def _western_verb_before(window: str, ascii: bool = False) -> bool:
    """``_WESTERN_VERB.search(window) is not None``. In an ASCII window (``ascii=True``: known to be;
    ``re.IGNORECASE`` folds exactly ``A-Z`` there) a match starts where one of the verbs occurs,
    lower-cased: the regex is tried there alone (a ``match`` at that offset, whose ``\\b`` still sees
    the character before), not at every offset of the window."""
    if not (ascii or window.isascii()):
        return _WESTERN_VERB.search(window) is not None
    low = window.lower()
    match = _WESTERN_VERB.match
    for verb in _WESTERN_VERB_WORDS:
        i = low.find(verb)
        while i >= 0:
            if match(window, i) is not None:
                return True
            i = low.find(verb, i + 1)
    return False


_ABBREV_TAILS: Final = (" St", " Mr", " Dr", " No", " Mt", "Mrs")


def sentence_starts(text: str, endpos: int | None = None) -> list[int]:
    """Start offsets of sentences (abbreviations such as "U.S." and "St." do not end one).

    With ``endpos`` only ``text[:endpos]`` is scanned; the starts up to ``endpos - 1`` are then those
    of the whole text (a match of ``_SENTENCE_END`` depends only on the characters up to its end and
    the one after it; cutting the text can only make a match fail or end at ``endpos``, and never
    creates one). Starts from ``endpos`` on may differ.
    """
    starts = [0]
    append = starts.append
    for m in _SENTENCE_END.finditer(text, 0, len(text) if endpos is None else endpos):
        i = m.start()
        if text[i] == "." and i >= 1:
            prev = text[i - 1]
            if prev.isupper():
                # "U.S." / "A." : an initial ends no sentence.
                if i < 2 or not text[i - 2].isalpha():
                    continue
            elif prev in "trso" and text[max(0, i - 3) : i] in _ABBREV_TAILS:
                continue
        append(m.end())
    return starts


def sentence_ids(text: str, positions: Iterable[int]) -> dict[int, int] | None:
    """A number per position, equal for two positions exactly when :func:`sentence_starts` puts them
    in one sentence; ``None`` when a position is not an alphanumeric character.

    A match of ``_SENTENCE_END`` holds no alphanumeric character, so none contains such a position;
    the matches that a scan from 0 finds after position ``p`` are then those a scan from ``p`` finds,
    and two positions ``p < q`` are in different sentences exactly when a match that ends a sentence
    (not an abbreviation, as in :func:`sentence_starts`) starts in ``text[p:q]``. One search per gap
    between consecutive positions, instead of a match object per sentence of the text.
    """
    ids: dict[int, int] = {}
    number = 0
    lo = -1
    for hi in sorted(positions):
        if not text[hi].isalnum():
            return None
        if lo >= 0 and _ends_sentence_in(text, lo, hi):
            number += 1
        ids[hi] = number
        lo = hi
    return ids


def _ends_sentence_in(text: str, lo: int, hi: int) -> bool:
    """Whether ``_SENTENCE_END.search(text, lo, hi)``, repeated from the end of each match that is an
    abbreviation's period (as :func:`sentence_starts` skips them), finds one that ends a sentence.

    The matches, by hand, in one scan of the character codes: a match starts at one of ``.!?;`` or a
    newline; a newline's match always ends a sentence; one of ``.!?;`` starts a match when the run of
    those characters after it is followed, before ``hi``, by whitespace or one of ``"”’)`` (and
    then no later character of the run starts one), and the match ends after that closing run.
    """
    i = lo
    while i < hi:
        c = ord(text[i])
        if c == 10:  # "\n"
            return True
        if c == 46 or c == 33 or c == 63 or c == 59:  # . ! ? ;
            j = i + 1
            while j < hi:
                d = ord(text[j])
                if not (d == 46 or d == 33 or d == 63 or d == 59):
                    break
                j += 1
            if j < hi and _closes(text[j]):
                end = j + 1
                while end < hi and _closes(text[end]):
                    end += 1
                if not (c == 46 and _abbreviation_period(text, i)):
                    return True
                i = end
            else:
                i = j
        else:
            i += 1
    return False


def _closes(ch: str) -> bool:
    """Whether ``ch`` is in ``_SENTENCE_END``'s closing class ``[\\s"”’)]``."""
    return ch.isspace() or ch in "\"”’)"


def _abbreviation_period(text: str, i: int) -> bool:
    """Whether the period at ``i`` (which starts a match of ``_SENTENCE_END``) ends an initial ("U.S.",
    "A.") or one of :data:`_ABBREV_TAILS` ("St.", "Mr."), which end no sentence."""
    if i < 1:
        return False
    prev = text[i - 1]
    if prev.isupper():
        return not (i >= 2 and text[i - 2].isalpha())
    return prev in "trso" and text[max(0, i - 3) : i] in _ABBREV_TAILS


_NEG_HINTS = ("no", "No", "n't", "unlikely", "without", "ruled out", "denied")
"""Substrings one of which every negator contains: without one in the window nothing is negated
(spelt out in :meth:`_Negation.__call__`)."""


class _Negation:
    """Negation checks for one text.

    The cheap pre-check (is any of :data:`_NEG_HINTS` wholly inside the 60 characters before the
    cue?) is a chain of ``in`` tests on that window, cheaper than indexing every hint of the text or
    one regex search (there are about 17 checks per alert); only the few windows that contain a hint
    pay for the clause split and the :data:`_NEGATOR` regex.
    """

    __slots__ = ("rare", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.rare = (
            ("'" in text and "n't" in text)  # one character is a memchr; "n't" is a slow search
            or "unlikely" in text
            or "without" in text
            or "ruled out" in text
            or "denied" in text
        )
        """Whether a hint other than "no" and "No" occurs in the text at all (else no window has one)."""

    def __call__(self, start: int) -> bool:
        window = self.text[max(0, start - 60) : start]
        if (
            "no" in window
            or "No" in window
            or (
                self.rare
                and (
                    "n't" in window
                    or "unlikely" in window
                    or "without" in window
                    or "ruled out" in window
                    or "denied" in window
                )
            )
        ):
            return _negated_window(window)
        return False


_BREAK_CHARS: Final = ",;:.!?"
_BREAK_WORDS: Final = ("but", "however", "and")
_NEG_STEMS: Final = ("no", "n't", "unlikely", "without", "ruled out", "denied")
"""Lower-case substrings one of which every :data:`_NEGATOR` alternative contains."""


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _clause_cut(window: str, ascii: bool = False) -> int:
    """End of the last :data:`_CLAUSE_BREAK` match in ``window`` (0 if none), with ``str.rfind``
    (``ascii=True``: the window is known to be ASCII)."""
    if not (ascii or window.isascii()):
        cut = 0
        for m in _CLAUSE_BREAK.finditer(window):
            cut = m.end()
        return cut
    cut = 0
    for ch in _BREAK_CHARS:
        i = window.rfind(ch)
        if i >= cut:
            cut = i + 1
    low = window.lower()
    n = len(low)
    for word in _BREAK_WORDS:
        i = low.rfind(word)
        while i >= 0 and i + len(word) > cut:
            e = i + len(word)
            if (i == 0 or not _is_word(low[i - 1])) and (e == n or not _is_word(low[e])):
                cut = e
                break
            i = low.rfind(word, 0, i)
    return cut


def _ascii_word(c: int) -> bool:
    """Whether the character ``c`` (a code point below 128) is a word character (``_is_word``)."""
    return 97 <= c <= 122 or 65 <= c <= 90 or 48 <= c <= 57 or c == 95


def _ascii_clause_cut(window: str) -> int:
    """``_clause_cut(window, True)`` for an ASCII ``window``, in one scan from its end: the end of the
    last break character or whole break word (the greatest end of any, which is what
    :func:`_clause_cut` keeps), found by the first one the scan meets."""
    n = len(window)
    i = n - 1
    while i >= 0:
        c = ord(window[i])
        if c == 44 or c == 59 or c == 58 or c == 46 or c == 33 or c == 63:  # , ; : . ! ?
            return i + 1
        # a break word ("and", "but", "however", any case) ending here, whole
        size = 0
        if c == 100 or c == 68:  # d
            size = 3 if i >= 2 and window[i - 2 : i + 1].lower() == "and" else 0
        elif c == 116 or c == 84:  # t
            size = 3 if i >= 2 and window[i - 2 : i + 1].lower() == "but" else 0
        elif c == 114 or c == 82:  # r
            size = 7 if i >= 6 and window[i - 6 : i + 1].lower() == "however" else 0
        if (
            size
            and (i + 1 == n or not _ascii_word(ord(window[i + 1])))
            and (i - size < 0 or not _ascii_word(ord(window[i - size])))
        ):
            return i + 1
        i -= 1
    return 0


def _no_before(text: str, norm: str, lo: int, start: int, ascii: bool) -> bool:
    """Whether a negator ends ``text[lo:start]`` within its last clause, for a text without the
    rarer negation hints (see :class:`_Negation`): only a window holding "no" or "No" can (the
    window is sliced only then; ``ascii``: the text is known to be ASCII). ``norm`` is the text
    normalised (``textnorm.padded``: lower-cased, one padding space first, so ``text[i]`` is
    ``norm[i + 1]``): a window with "no" or "No" has "no" at the same place in it, so one search of
    ``norm`` rules out most windows before the two of ``text``."""
    return (
        norm.find("no", lo + 1, start + 1) >= 0
        and (text.find("no", lo, start) >= 0 or text.find("No", lo, start) >= 0)
        and _negated_window(text[lo:start], ascii, norm if ascii else None, lo)
    )


def _negated_window(window: str, ascii: bool = False, norm: str | None = None, lo: int = 0) -> bool:
    """Whether a negator ends ``window`` within its last clause (``ascii=True``: the window is known
    to be ASCII, e.g. a slice of an ASCII text; the result is the same either way). ``norm``, with
    ``lo``: the window is ``text[lo:lo + len(window)]`` of an ASCII ``text`` whose
    ``textnorm.padded`` is ``norm``, where the window's translation (:func:`_padded_words` without
    its padding) already is, one place further on: sliced from there instead of made again."""
    # The clause starts after a break character or a whole word, so its words are words of the
    # window: without a first word of a negator in the window there is none in the clause either.
    if ascii or window.isascii():
        end = lo + 1 + len(window)
        if not _has_word(f" {norm[lo + 1 : end]} " if norm is not None else _padded_words(window), _NEGATOR_FIRST_KEYS):
            return False
        cut = _clause_cut(window, True)
        clause = window[cut:]
        if not _has_word(
            f" {norm[lo + 1 + cut : end]} " if norm is not None else _padded_words(clause), _NEGATOR_FIRST_KEYS
        ):
            return False
    else:
        clause = window[_clause_cut(window) :]
    return _clause_negated(clause)


def _clause_negated(clause: str) -> bool:
    """Whether a cue's clause (the part of its window after the clause cut) holds a negator: the last
    test of both negation paths."""
    if not clause:
        return False
    low = clause.lower()
    if not any(stem in low for stem in _NEG_STEMS):
        return False
    return _NEGATOR.search(clause) is not None


def _negated(text: str, start: int) -> bool:
    """Whether a cue at ``start`` is negated within its clause (one-off form of :class:`_Negation`)."""
    return _Negation(text)(start)


def _is_negated(
    text: str, norm: str, lo: int, start: int, negs: list[int], fast: bool, negated: _Negation, rare: bool, ascii: bool
) -> bool:
    """:func:`_read`'s negation test of the cue at ``start`` (``lo = max(0, start - 60)``):
    :func:`_negated_at` when ``fast`` (an ASCII text, ``negs`` known), else ``negated(start)``, in
    the form :func:`_no_before` when the text has none of the rarer hints."""
    if fast:
        return _negated_at(text, norm, lo, start, negs)
    return negated(start) if rare else _no_before(text, norm, lo, start, ascii)


def _near_negator(negs: list[int], lo: int, start: int) -> bool:
    """Whether one of ``negs`` (where :data:`NEGATOR_KEYS` occur, see :func:`_negated_at`) lies in
    ``[lo, start)``."""
    for s in negs:  # noqa: SIM110 (a loop: any() of a generator makes a generator object)
        if lo <= s < start:
            return True
    return False


def _negated_at(text: str, norm: str, lo: int, start: int, negs: list[int]) -> bool:
    """``_Negation(text)(start)`` for an ASCII ``text`` and the start of a hit (a word's first
    character: ``text[start - 1]`` is not alphanumeric; ``lo`` is ``max(0, start - 60)``), from
    ``negs``: the starts (padded coordinates, i.e. the text offset of the word) of the hits of
    :data:`NEGATOR_KEYS` in ``norm`` (``textnorm.padded(text)``), or a superset of them.

    The outcome of :class:`_Negation` is "the window ``text[lo:start]`` holds one of
    :data:`_NEG_HINTS` and :data:`_NEGATOR` matches in its last clause" (its ``rare`` flag only spares
    tests of windows that cannot hold a rarer hint). A match begins with one of
    :data:`_NEGATOR_FIRST_WORDS` as a whole word: in an ASCII text a ``\\b`` is a change between an
    alphanumeric character (or ``_``) and one that normalises to a space, so that word is a hit of its
    key at the match's offset, unless the match is at the window's very start and the window cuts a
    word there (then the window's first, partial word is that word). Without either, nothing in the
    window is negated, and the window, its hints and its clause are never made.
    """
    if not _near_negator(negs, lo, start):
        # (norm[lo] is text[lo - 1]: a space there means the window starts with a whole word)
        if lo == 0 or norm[lo] == " ":
            return False
        c = ord(norm[lo + 1])  # (the first letter of a negator's first word: n, t, u, w, r or d)
        if not (c == 110 or c == 116 or c == 117 or c == 119 or c == 114 or c == 100):
            return False
        word = norm[lo + 1 : norm.find(" ", lo + 1)]
        if word not in _NEGATOR_FIRST_STRS:
            return False
        if word == "n" and text[lo + 1 : lo + 2] != "'":
            return False  # (the word "n" begins only "n't")
    window = text[lo:start]
    if not (
        "no" in window
        or "No" in window
        or "n't" in window
        or "unlikely" in window
        or "without" in window
        or "ruled out" in window
        or "denied" in window
    ):
        return False
    # _negated_window(window, True), with the negator-word test of its clause from negs: a clause cut
    # after a break character or word starts at a whole word (see _negated_window), so a match in it
    # starts at a hit of negs from lo + cut on.
    cut = _ascii_clause_cut(window)
    if cut > 0 and not _near_negator(negs, lo + cut, start):
        return False
    clause = window[cut:]
    return _clause_negated(clause)


# The dataclasses below write their ``__init__`` themselves (``init=False``): the compiled build then
# constructs them natively, where the one the dataclass decorator generates is interpreted Python,
# called with an argument tuple and a keyword dict (a few µs per object); equality and repr are still
# the dataclass's.


@dataclass(slots=True, init=False)
class LabelEvidence:
    score: float
    spans: list[tuple[Any, ...]]
    """``(start, end)`` pairs of ints (a variable-length tuple type: the compiled build keeps the
    tuples and their int objects as they are, for the payload's evidence)."""

    def __init__(self, score: float = 0.0, spans: list[tuple[Any, ...]] | None = None) -> None:
        self.score = score
        self.spans = [] if spans is None else spans


def _evidence(weight: float, span: tuple[int, int]) -> LabelEvidence:
    """``LabelEvidence()`` credited once: ``score`` 0.0 + ``weight``, one span."""
    return LabelEvidence(0.0 + weight, [span])


def _credit(table: dict[str, LabelEvidence], label: str, weight: float, span: tuple[int, int]) -> None:
    """Add ``weight`` to ``label``'s score in ``table``, keeping its first three spans."""
    ev = table.get(label)
    if ev is None:
        table[label] = _evidence(weight, span)
        return
    ev.score += weight
    if len(ev.spans) < 3:
        ev.spans.append(span)


def _credit_all(table: dict[str, LabelEvidence], hits: list[tuple[int, str, float, tuple[int, int]]]) -> None:
    """:func:`_credit` of each ``(position, label, weight, span)`` in order, in one loop (the targets
    of an alert: about six calls per alert saved)."""
    for _pos, label, weight, span in hits:
        ev = table.get(label)
        if ev is None:
            table[label] = _evidence(weight, span)
        else:
            ev.score += weight
            if len(ev.spans) < 3:
                ev.spans.append(span)


@dataclass(slots=True, init=False)
class Reading:
    threats: dict[str, LabelEvidence]
    targets: dict[str, LabelEvidence]
    cues: dict[str, int]
    """Counts of the severity cues that occur (a missing cue occurred 0 times)."""
    routine: int

    def __init__(
        self,
        threats: dict[str, LabelEvidence],
        targets: dict[str, LabelEvidence],
        cues: dict[str, int],
        routine: int,
    ) -> None:
        self.threats = threats
        self.targets = targets
        self.cues = cues
        self.routine = routine


def read(text: str, hits: list[Hit]) -> Reading:
    """Apply the rules in the module docstring to the cue hits of ``text``."""
    # Greedy hits need no more resolution: cut them into runs in which no hit overlaps the one
    # before (a run then passes :func:`_read`'s leftmost-longest check whole, in the same order).
    tables: list[list[AutomatonHit]] = []
    last_end = -1
    for start, end, entries in hits:
        if start < last_end or not tables:
            tables.append([])
        # as the automaton yields it: (end in padded coordinates, (key length, -, label entries, -))
        tables[-1].append((end + 1, (end - start + 2, None, entries, None)))
        last_end = end
    return _read(text, tables, [])


def read_found(text: str, found: list[tuple[int, tuple[int, Any, Any, Any]]]) -> Reading:
    """``read(text, Taxonomy.hits_in(found))`` without making the hit lists: the leftmost-longest
    resolution of each table runs inside :func:`_read`'s loop over the sorted raw hits."""
    labels: list[AutomatonHit] = [hit for hit in found if hit[1][2] is not None]
    cues: list[AutomatonHit] = [hit for hit in found if hit[1][3] is not None]
    return read_hits(text, labels, cues)


def read_raw(
    text: str,
    labels: list[tuple[int, int, tuple[Entry, ...]]],
    cues: list[tuple[int, int, tuple[Entry, ...]]],
) -> Reading:
    """:func:`read_found` from the raw hits ``(start, -length, entries)`` of each table (``start``
    in padded coordinates), in any order."""
    # (start, -length) is the hit (end, (length, ...)) with end = start + length - 1
    return read_hits(
        text,
        [(s - nl - 1, (-nl, None, e, None)) for s, nl, e in labels],
        [(s - nl - 1, (-nl, None, None, e)) for s, nl, e in cues],
    )


def read_hits(
    text: str,
    labels: list[AutomatonHit],
    cues: list[AutomatonHit],
    norm: str | None = None,
    negs: list[int] | None = None,
) -> Reading:
    """:func:`read_found` from the automaton's hits ``(end, (length, -, label entries, cue
    entries))`` that have label entries (``labels``) and cue entries (``cues``), in any order (both
    lists are sorted in place): the engine keeps the automaton's own hit tuples. ``norm``:
    ``textnorm.padded(text)`` if the caller has it. ``negs``: the starts (``end - length + 1``) of
    all the hits of :data:`NEGATOR_KEYS` (or more): the negation tests of an ASCII text then start
    from them (:func:`_negated_at`); needs ``norm``. The hits with :data:`NEGATOR_MARK` for label
    entries may be left out of ``labels`` (no rule reads them, and as single whole words they
    never overlap another key's hit in a way that changes which hits the leftmost-longest
    resolution keeps)."""
    sort_automaton_hits(labels)
    sort_automaton_hits(cues)
    return _read(text, (labels,), cues, norm, negs)


Span = tuple[int, int]


def _hit_start(hit: AutomatonHit) -> int:
    """Where an automaton hit ``(end, (length, ...))`` starts (padded coordinates)."""
    value: tuple[Any, ...] = hit[1]
    n: int = value[0]
    end: int = hit[0]
    return end - n + 1


def _read(
    text: str,
    tables: Sequence[list[AutomatonHit]],
    cue_table: list[AutomatonHit],
    norm: str | None = None,
    negs: list[int] | None = None,
) -> Reading:
    """:func:`read` over tables of automaton hits ``(end, (length, -, label entries, cue entries))``,
    each sorted by :func:`~vigil_classify.textnorm.sort_automaton_hits`; overlapping hits of a table
    are resolved leftmost-longest as :func:`_greedy` does. A hit of ``tables`` is read for its label
    entries; ``cue_table`` is one more such table read for its severity-cue entries (the automaton's
    cue slot), by a loop of its own, without the category dispatch and span that label hits need (a
    cue entry among label entries is read the same way). ``norm``: ``textnorm.padded(text)`` (made
    here if not given); ``negs``: see :func:`read_hits`."""
    if norm is None:
        norm = padded(text)
    ascii = text.isascii()
    # An ASCII text with the negators' word hits tests negation from them (_negated_at), else with
    # _Negation (which looks for the rarer hints in the whole text first).
    fast = negs is not None and ascii
    at: list[int] = negs if negs is not None else []
    negated = _Negation("" if fast else text)
    threats: dict[str, LabelEvidence] = {}
    targets: dict[str, LabelEvidence] = {}
    cues: dict[str, int] = {}
    routine = 0
    # The loop records cue offsets; they become sentence numbers afterwards, and only when a rule
    # that compares sentences can fire (the sentence split is a regex pass over the whole text).
    # A hit's span (start, end) is made once, for the hits that are kept or credited.
    military_at: list[int] = []
    crime_at: list[int] = []
    weak_at: list[tuple[int, Span]] = []
    subject_at: list[tuple[int, Span]] = []
    effect_at: list[tuple[int, Span]] = []
    suppress_at: list[int] = []
    air_at: list[int] = []
    target_at: list[tuple[int, str, float, Span]] = []
    last_cue_end = -1

    # ``negated(start)`` is ``_negated_window`` of the 60 characters before ``start`` when they hold
    # "no" or "No" (or, if the text has one of the rarer hints at all, one of those), else False:
    # without a rarer hint in the text, that is :func:`_no_before` (a native call when compiled).
    rare = negated.rare
    for hit in cue_table:
        value: tuple[Any, ...] = hit[1]
        n: int = value[0]
        end_idx: int = hit[0]
        start = end_idx - n + 1
        if start < last_cue_end:
            continue  # overlaps the cue kept before it (leftmost-longest, as _greedy)
        last_cue_end = start + n - 2
        lo = start - 60 if start > 60 else 0
        cue_entries: tuple[Entry, ...] = value[3]
        for _cat, label, _weight in cue_entries:
            if label == "urg:Past" or not _is_negated(text, norm, lo, start, at, fast, negated, rare, ascii):
                cues[label] = cues.get(label, 0) + 1
    for table in tables:
        last_end = -1
        for hit in table:
            value = hit[1]
            n = value[0]
            end_idx = hit[0]
            start = end_idx - n + 1
            if start < last_end:
                continue  # overlaps the hit kept before it (leftmost-longest, as _greedy)
            last_end = end = start + n - 2
            entries: tuple[Entry, ...] = value[2]
            lo = start - 60 if start > 60 else 0
            # Categories by frequency (about 9 threat, 7 severity-cue, 4 target, 1 routine and 1
            # transport subject entries per ~1 KB alert); they exclude one another, so the order
            # changes nothing else.
            for cat, label, weight in entries:
                if cat == "threat":
                    if _is_negated(text, norm, lo, start, at, fast, negated, rare, ascii):
                        continue
                    # credit(threats, label, weight, (start, end)), inlined (the most frequent call)
                    ev = threats.get(label)
                    if ev is None:
                        threats[label] = _evidence(weight, (start, end))
                    else:
                        ev.score += weight
                        if len(ev.spans) < 3:
                            ev.spans.append((start, end))
                    if weight >= 1.0:
                        if label == "armed_conflict":
                            military_at.append(start)
                        elif label in ("crime", "kidnapping"):
                            crime_at.append(start)
                elif cat == "cue":
                    if label == "urg:Past" or not _is_negated(text, norm, lo, start, at, fast, negated, rare, ascii):
                        cues[label] = cues.get(label, 0) + 1
                elif cat == "target":
                    target_at.append((start, label, weight, (start, end)))
                elif cat == "routine":
                    routine += 1
                elif cat == "tr_subject":
                    subject_at.append((start, (start, end)))
                    if label == "air":
                        air_at.append(start)
                elif cat == "singular":
                    if (
                        _ascii_locative_before(text, start - 40 if start > 40 else 0, start)
                        if ascii
                        else _locative_before(text[start - 40 if start > 40 else 0 : start])
                    ):
                        target_at.append((start, label, weight, (start, end)))
                elif cat == "tr_effect":
                    if not _is_negated(text, norm, lo, start, at, fast, negated, rare, ascii):
                        effect_at.append((start, (start, end)))
                elif cat == "weak_terror":
                    if not _is_negated(text, norm, lo, start, at, fast, negated, rare, ascii):
                        weak_at.append((start, (start, end)))
                elif cat == "western":
                    if _western_verb_before(text[start - 40 if start > 40 else 0 : start], ascii):
                        target_at.append((start, label, weight, (start, end)))
                elif cat == "tr_suppress":
                    suppress_at.append(start)
    if not (weak_at or suppress_at or (subject_at and effect_at)):
        # No rule compares sentences: every hit may as well share one (the rules below then reduce
        # to crediting the targets in order).
        _credit_all(targets, target_at)
        return Reading(threats, targets, cues, routine)
    # A recovery notice ("aftershocks have eased ... some roads remain closed for repairs") reports
    # no transport disruption from a subject and an effect.
    past = cues.get("urg:Past", 0)
    recovered = past > 0 and past >= cues.get("urg:Immediate", 0)
    transport = bool(subject_at and effect_at) and not recovered
    # Only whether two cues share a sentence matters, and only for the rules that can fire: number
    # the sentences of their cue positions.
    # (one add per position: set.update with several iterables is a generic method call)
    positions: set[int] = set()
    if weak_at:
        for pos, _span in weak_at:
            positions.add(pos)
        for pos, _label, _weight, _span in target_at:
            positions.add(pos)
        for pos in military_at:
            positions.add(pos)
        for pos in crime_at:
            positions.add(pos)
    if transport:
        for pos, _span in subject_at:
            positions.add(pos)
        for pos, _span in effect_at:
            positions.add(pos)
        for pos in suppress_at:
            positions.add(pos)
        for pos in air_at:
            positions.add(pos)
    if suppress_at:
        for pos, _label, _weight, _span in target_at:
            positions.add(pos)
        for pos, _span in effect_at:
            positions.add(pos)
        for pos in suppress_at:
            positions.add(pos)
    ids = sentence_ids(text, positions)
    if ids is None:
        # Every position looked up below is the start of a hit: the sentences after the last hit
        # need not be split (see :func:`sentence_starts`; each table is sorted by start, and a
        # later endpos than the last kept hit's start + 1 leaves the starts before it the same).
        last_start = max((_hit_start(table[-1]) for table in (*tables, cue_table) if table), default=0)
        starts = sentence_starts(text, last_start + 1)
        bisect_right = bisect.bisect_right
        ids = {pos: bisect_right(starts, pos) - 1 for pos in positions}

    if weak_at:
        target_sent = {ids[pos] for pos, _label, _weight, _span in target_at}
        military_sent = {ids[pos] for pos in military_at}
        crime_sent = {ids[pos] for pos in crime_at}
        for pos, span in weak_at:
            sent = ids[pos]
            if sent in target_sent and sent not in military_sent and sent not in crime_sent:
                _credit(threats, "terrorism", 1.0, span)
    if transport:
        tr_subject: dict[int, list[Span]] = {}
        for pos, span in subject_at:
            tr_subject.setdefault(ids[pos], []).append(span)
        tr_effect: dict[int, list[Span]] = {}
        for pos, span in effect_at:
            tr_effect.setdefault(ids[pos], []).append(span)
        tr_suppress = {ids[pos] for pos in suppress_at}
        air_sent = {ids[pos] for pos in air_at}
        for sent, subjects in tr_subject.items():
            effects = tr_effect.get(sent)
            if effects and sent not in tr_suppress:
                _credit(threats, "transport_disruption", 1.0, subjects[0])
                _credit(threats, "transport_disruption", 0.0, effects[0])
                if sent in air_sent:
                    # "Flights ... cancelled": the airports are hit.
                    _credit(targets, "transport_hubs", 1.0, subjects[0])
    if suppress_at:
        suppressed = {ids[pos] for pos in suppress_at}
        affected = {ids[pos] for pos, _span in effect_at}
        for pos, label, weight, span in target_at:
            # "flights from the airport remain available", "schools have reopened": not a target.
            sent = ids[pos]
            if sent in suppressed and sent not in affected:
                continue
            _credit(targets, label, weight, span)
    else:
        _credit_all(targets, target_at)
    return Reading(threats, targets, cues, routine)
