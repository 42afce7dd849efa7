"""HTML and text normalisation: what every alert text goes through before it is published.

HTML is sanitised with :mod:`nh3` (scripts, styles, images/tracking pixels, event handlers and
unsafe URLs dropped) and then rendered to text with :mod:`inscriptis`, which knows block layout
(paragraphs, lists, tables). Links survive as ``label (url)``, or just ``url`` when the label is
the URL. Text is then normalised: Unicode NFC, control and zero-width characters removed, runs of
blanks collapsed, at most one empty line between paragraphs.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:  # nh3 and inscriptis (lxml) are imported on the first HTML text, not at start-up
    from inscriptis.model.config import ParserConfig
    from inscriptis.model.html_document_state import HtmlDocumentState

# Tags kept by the sanitiser: structure only. No img (tracking pixels), no media, no forms.
_ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "div", "dl", "dt",
        "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "q", "s",
        "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr", "u", "ul",
    }
)  # fmt: skip
# Tags removed together with their content.
_DROP_WITH_CONTENT: frozenset[str] = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math", "head", "title"}
)
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href"}, "td": {"colspan"}, "th": {"colspan"}}
_URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})

_TRACKING_PARAM = re.compile(r"^(utm_[a-z_]*|fbclid|gclid|mc_cid|mc_eid|_hsenc|_hsmi)$", re.IGNORECASE)

_HTML_HINT = re.compile(
    r"<\s*(p|br|div|span|a\s|a>|ul|ol|li|strong|em|b|i|h[1-6]|table|script|style|img|blockquote)\b[^>]*>"
    r"|&(#\d+|#x[0-9a-f]+|[a-z]+);",
    re.IGNORECASE,
)
# C0/C1 controls except tab and newline, plus zero-width and bidi formatting characters.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff\ufffe]"
)
_ASCII_CONTROLS = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
"""_CONTROL's characters in ASCII."""
_BLANKS = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# what _BLANKS changes: runs of two or more blanks, and single blanks other than a space
_ODD_BLANKS = r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"
_BLANK_RUNS = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]{2,}|" + _ODD_BLANKS)
_ODD_BLANK = re.compile(_ODD_BLANKS)
_MANY_NEWLINES = re.compile(r"\n{3,}")
_LINK_SELF = re.compile(r"(?P<url>(?:https?|mailto):[^\s()]+) \((?P=url)\)")


def strip_tracking_params(url: str) -> str:
    """``url`` without ``utm_*``/click-id query parameters (unchanged if it does not parse)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in pairs if not _TRACKING_PARAM.match(k)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        return strip_tracking_params(value.strip())
    return value


def sanitize_html(markup: str) -> str:
    """Sanitised HTML: only structural tags and safe links survive."""
    import nh3

    return nh3.clean(
        markup,
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={k: set(v) for k, v in _ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(_URL_SCHEMES),
        link_rel=None,
        strip_comments=True,
        attribute_filter=_attribute_filter,
    )


def _a_start(state: HtmlDocumentState, attrs: dict[str, Any]) -> None:
    state.link_target = str(attrs.get("href", "") or "")


def _a_end(state: HtmlDocumentState) -> None:
    if state.link_target:
        state.tags[-1].write(f" ({state.link_target})")
    state.link_target = ""


@lru_cache(maxsize=1)
def _parser_config() -> ParserConfig:
    from inscriptis.model.config import ParserConfig
    from inscriptis.model.tag import CustomHtmlTagHandlerMapping

    mapping = CustomHtmlTagHandlerMapping(start_tag_mapping={"a": _a_start}, end_tag_mapping={"a": _a_end})
    return ParserConfig(custom_html_tag_handler_mapping=mapping)


def normalize_text(text: str) -> str:
    """Plain text normalised: NFC, no control characters, collapsed blanks, tidy line breaks."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    if text.isascii():
        # ASCII text (most alerts) is checked with bytes/str methods, not by regex scans: its only
        # controls are _ASCII_CONTROLS, its only blank other than a space is a tab
        data = text.encode("ascii")
        if len(data.translate(None, _ASCII_CONTROLS)) != len(data):
            text = _CONTROL.sub("", text)
        odd_blank = "\t" in text
    else:
        text = _CONTROL.sub("", text)
        odd_blank = _ODD_BLANK.search(text) is not None
    # blanks collapsed in one pass over the text, skipped when there is nothing to collapse
    # (the same as _BLANKS.sub(" ", line) per line: no blank is a line break)
    if odd_blank or "  " in text:
        text = _BLANK_RUNS.sub(" ", text)
    text = "\n".join([line.strip() for line in text.split("\n")]) if "\n" in text else text.strip()
    if "\n\n\n" in text:
        text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def normalize_inline(text: str) -> str:
    """Single-line text (titles, names): normalised and with every line break folded to a space."""
    return collapse_whitespace(normalize_text(text))


_ASCII_BLANKS = ("\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f")
"""The ASCII characters ``str.split()`` splits on, besides the space."""


def collapse_whitespace(text: str) -> str:
    """``" ".join(text.split())``: runs of whitespace made one space, none at either end.

    ASCII text (most alerts) is done with a few ``str.replace`` calls, which run in C without
    building a list of every word (a fifth of the cost on a 1 KB alert).
    """
    if not text.isascii():
        return " ".join(text.split())
    for blank in _ASCII_BLANKS:
        if blank in text:
            text = text.replace(blank, " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text.strip(" ")


def looks_like_html(text: str) -> bool:
    """Whether ``text`` contains HTML markup or character references worth rendering."""
    if "<" not in text and "&" not in text:  # what every hint starts with: no regex scan needed
        return False
    return _HTML_HINT.search(text) is not None


def html_to_text(markup: str) -> str:
    """Clean, normalised text from an HTML fragment or document."""
    import nh3
    from inscriptis import get_text

    safe = sanitize_html(markup)
    if not safe.strip():
        return ""
    try:
        rendered = get_text(safe, _parser_config())
    except Exception:  # inscriptis/lxml choking on odd markup: fall back to tag stripping
        rendered = html.unescape(nh3.clean(safe, tags=set()))
    rendered = _LINK_SELF.sub(r"\g<url>", rendered)
    return normalize_text(rendered)


def to_text(value: str, content_type: str | None = None) -> str:
    """Clean text from a value that may be HTML (``content_type`` ``text/html`` forces it)."""
    is_html = bool(content_type) and "html" in (content_type or "").lower()
    if is_html or looks_like_html(value):
        return html_to_text(value)
    return normalize_text(value)


# ---------------------------------------------------------------- language


_MIN_DETECT_CHARS = 20
_MIN_CONFIDENCE = 0.5
MAX_SAMPLE_CHARS = 5000
"""Language identification reads at most this much of a text (its opening, stripped)."""
OPENING_CHARS = 512
"""The language is decided on the text's first ``OPENING_CHARS`` characters when they settle it.

py3langid's decision on an alert settles within its first sentences: on the dev fixture and the
holdouts (tests/fixtures, 74 alerts of 177-556 characters) the first 128 characters already give
every alert the tag the whole text gives (tests/ingest/test_language_opening.py); this bound is
four times that, a title and a first paragraph (some 80 words). An opening that does not settle it
(py3langid below ``_MIN_CONFIDENCE``, or undetermined) is followed by the whole sample, as before.
Scoring is linear in the bytes read: a 1 KB alert costs half as much. The price: a text whose
opening is confidently one language and whose bulk is another is tagged with the opening's."""


def normalize_language(tag: str | None) -> str | None:
    """A BCP 47 tag reduced to its lowercase primary subtag (``en-US`` -> ``en``), or None."""
    if not tag:
        return None
    primary = re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def detect_language(text: str, hint: str | None = None) -> str | None:
    """The language of ``text``: the source's own ``hint`` if valid, else py3langid's guess.

    Returns None for text too short or too ambiguous to tell.
    """
    return detect_languages([text], [hint])[0]


def _settled(guess: tuple[str, float]) -> bool:
    lang, prob = guess
    return lang != "und" and prob >= _MIN_CONFIDENCE


def detect_languages(texts: Sequence[str], hints: Sequence[str | None] | None = None) -> list[str | None]:
    """:func:`detect_language` of each text (with its hint), the texts needing a guess scored together
    (:func:`vigil_ingest.language.classify_many`: cheaper per text than one at a time): first their
    openings (``OPENING_CHARS``), then, for the openings that did not settle it, the whole samples."""
    found: list[str | None] = [None] * len(texts)
    todo: list[int] = []
    samples: list[str] = []
    for i, text in enumerate(texts):
        given = normalize_language(hints[i]) if hints is not None else None
        if given:
            found[i] = given
            continue
        sample = text.strip()[:MAX_SAMPLE_CHARS]
        if len(sample) >= _MIN_DETECT_CHARS:
            todo.append(i)
            samples.append(sample)
    if samples:
        from vigil_ingest.language import classify_many

        guesses = classify_many([sample[:OPENING_CHARS] for sample in samples])
        unsettled = [k for k, guess in enumerate(guesses) if len(samples[k]) > OPENING_CHARS and not _settled(guess)]
        if unsettled:
            for k, guess in zip(unsettled, classify_many([samples[k] for k in unsettled]), strict=True):
                guesses[k] = guess
        for i, guess in zip(todo, guesses, strict=True):
            if _settled(guess):
                found[i] = guess[0]
    return found
