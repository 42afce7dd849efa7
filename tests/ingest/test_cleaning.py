from __future__ import annotations

from vigil_ingest.cleaning import (
    detect_language,
    html_to_text,
    normalize_language,
    normalize_text,
    to_text,
)


def test_scripts_styles_and_tracking_pixels_are_removed() -> None:
    html = (
        "<style>p{color:red}</style><p>Avoid the area.<img src='https://t.example.test/pixel.gif' "
        "width='1' height='1'></p><script>alert('x')</script><p onclick='evil()'>Stay indoors.</p>"
    )
    text = html_to_text(html)
    assert text == "Avoid the area.\n\nStay indoors."
    for leftover in ("alert", "color", "pixel", "evil", "<"):
        assert leftover not in text


def test_links_are_kept_as_text_without_tracking_params() -> None:
    html = (
        '<p>See <a href="https://embassy.example.test/contact/?utm_source=rss&amp;id=3">Assistance</a> '
        'or <a href="https://embassy.example.test/faq">https://embassy.example.test/faq</a>. '
        '<a href="javascript:alert(1)">Click</a></p>'
    )
    text = html_to_text(html)
    assert "Assistance (https://embassy.example.test/contact/?id=3)" in text
    assert "https://embassy.example.test/faq." in text
    assert "(https://embassy.example.test/faq)" not in text  # no "url (url)" when the label is the url
    assert "javascript" not in text
    assert "Click" in text


def test_lists_and_paragraphs_render_as_lines() -> None:
    text = html_to_text("<p><b>Actions:</b></p><ul><li>Avoid crowds.</li><li>Monitor media.</li></ul>")
    assert text == "Actions:\n\n* Avoid crowds.\n* Monitor media."


def test_whitespace_and_control_characters_are_normalised() -> None:
    raw = "  Road\x00 closed\u200b  near\t\tthe\u00a0bridge.\r\n\r\n\r\n\r\nDetour\x07 via A1.  "
    assert normalize_text(raw) == "Road closed near the bridge.\n\nDetour via A1."


def test_plain_text_passes_through_normalised() -> None:
    assert to_text("Protest at 5 < 6 pm, bring water") == "Protest at 5 < 6 pm, bring water"
    assert to_text("Fish &amp; chips") == "Fish & chips"  # entity in text is decoded as HTML


def test_language_detection_and_source_hint() -> None:
    assert (
        detect_language("Die Botschaft warnt vor möglichen Anschlägen in der Innenstadt von Berlin.") == "de"
    )
    assert detect_language("The embassy warns of possible attacks in the city centre this weekend.") == "en"
    assert detect_language("short") is None
    assert detect_language("whatever the text says", "fr-FR") == "fr"
    assert normalize_language("EN_us") == "en"
    assert normalize_language("not a tag") is None
