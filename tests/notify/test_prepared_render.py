"""Rendering once per (alert, kind) gives exactly the message of a full render per delivery."""

from __future__ import annotations

import json

import pytest
from vigil_notify.rendering import _REASON_MARK, Renderer

from .helpers import make_alert

HOSTILE = ['matched: <b>Moscow</b> & "friends" *x* _y_ [z](u)', "plain", "", "a\x00b"]


@pytest.mark.parametrize("kind", ["new", "update", "cancel"])
@pytest.mark.parametrize("reason", HOSTILE)
@pytest.mark.parametrize("name", ["Trip <Moscow> & 'co' *md*", "x"])
def test_prepared_equals_full_render(kind: str, reason: str, name: str) -> None:
    r = Renderer()
    alert = make_alert(title="<script>alert(1)</script> *bold* & co", text="Text with <i>tags</i> & [md](x)")
    full = r.render(alert, kind=kind, reason=reason, subscription_id="s1", subscription_name=name,
                    idempotency_key="k1")  # fmt: skip
    fast = r.prepare(alert, kind=kind).render(reason=reason, subscription_id="s1", subscription_name=name,
                                               idempotency_key="k1")  # fmt: skip
    assert (fast.title, fast.text, fast.markdown, fast.html) == (full.title, full.text, full.markdown, full.html)
    assert {k: v for k, v in fast.payload.items() if k != "sent_at"} == {
        k: v for k, v in full.payload.items() if k != "sent_at"
    }
    assert list(fast.payload) == list(full.payload)
    assert fast.idempotency_key == full.idempotency_key


def test_alert_quoting_a_stand_in_takes_the_full_render() -> None:
    r = Renderer()
    alert = make_alert(text=f"quoting {_REASON_MARK} here")
    fast = r.prepare(alert, kind="new").render(reason="R", subscription_id="s", subscription_name="N")
    assert _REASON_MARK in fast.text
    assert "quoting" in fast.text


def test_custom_templates_take_the_full_render() -> None:
    r = Renderer(templates={"body.txt": "{{ reason | upper }} {{ subscription_name }}"})
    fast = r.prepare(make_alert(), kind="new").render(reason="why", subscription_id="s", subscription_name="N")
    assert fast.text == "WHY N"


def _variants():  # type: ignore[no-untyped-def]
    from vigil_shared.events import CapInfo

    from .helpers import ISTANBUL, MOSCOW, SPB

    hostile = "<b>x</b> & \"q\" 'a' *b* _c_ [d](e) #f `g` \\ {h} | ~ ! + ( )"
    cap = CapInfo(identifier="i1", sender="s@x", sent="2026-11-25T12:00:00+00:00", msg_type="Alert",
                  instruction=f"Stay inside {hostile}", headline="Head <line>")  # fmt: skip
    yield make_alert()
    yield make_alert(title=hostile, text=f"Body {hostile}\n\nsecond  line\t tab", url=None, targets=())
    yield make_alert(locations=(), countries=("RU", "TR"), threats=(), targets=(), url="javascript:x")
    yield make_alert(locations=(MOSCOW, SPB, ISTANBUL), cap=cap, revision=2, revision_of="a-0", title="")
    yield make_alert(title="", text="x" * 200, cap=cap, url='https://e.x/?a=1&b="2"<3>')
    yield make_alert(locations=(), countries=(), threats=("terrorism", "civil_unrest"), severity="Extreme")


@pytest.mark.parametrize("kind", ["new", "update", "cancel"])
@pytest.mark.parametrize("reason", HOSTILE[:3])
def test_hand_written_bodies_equal_the_default_templates(kind: str, reason: str) -> None:
    from vigil_notify.rendering import render_default

    r = Renderer()
    for alert in _variants():
        ctx = r.context(alert, kind=kind, reason=reason, subscription_name="Trip <M> & 'co' *md*")  # type: ignore[arg-type]
        expected = (
            " ".join(r.env.get_template("title.txt").render(ctx).split()),
            r.env.get_template("body.txt").render(ctx),
            r.env.get_template("body.md").render(ctx),
            r.env.get_template("body.html").render(ctx),
        )
        assert render_default(ctx) == expected


@pytest.mark.parametrize("kind", ["new", "update", "cancel"])
def test_json_line_equals_the_payload_and_text_encoded(kind: str) -> None:
    import json

    from vigil_notify.channels.base import LazyMessage, Message
    from vigil_notify.rendering import _NAME_MARK

    r = Renderer()
    hostile = [*HOSTILE, "\\", 'q"uo\\te\n\t\u2028 é 😀', _REASON_MARK, f"\\{_NAME_MARK}", "\\u0000x"]
    alerts = [*_variants(), make_alert(text=f"a \\{_REASON_MARK} b"), make_alert(title='"\\\x01')]
    alerts += [make_alert(text="ascii with DEL \x7f inside"), make_alert(text="plain ascii")]
    # non-ASCII around the stand-ins (the text's pieces are encoded one by one, by the other encoder)
    alerts += [make_alert(title="Zürich \u2028 😀", text='Москва \x7f é\n\ttab "q" \\ end')]
    # a lone surrogate (orjson refuses it; the json module writes it as the line always did)
    alerts += [make_alert(text="lone \ud800 surrogate")]
    for alert in alerts:
        prepared = r.prepare(alert, kind=kind)
        for reason in hostile:
            for name in hostile[:4]:
                msg = prepared.render(reason=reason, subscription_id='s"1\\', subscription_name=name,
                                      idempotency_key="k\x02")  # fmt: skip
                line = msg.json_line()  # before the payload is made: from the shared parts
                expected = json.dumps({**msg.payload, "rendered_text": msg.text}, ensure_ascii=False)
                assert line == expected
                assert msg.json_line() == expected  # the payload was handed out: the default
                assert json.loads(msg.json_line())["rendered_text"] == msg.text
                assert Message.json_line(msg) == expected
                if isinstance(msg, LazyMessage):  # lazily made parts: the eager render's
                    full = r.render(alert, kind=kind, reason=reason, subscription_id='s"1\\',
                                    subscription_name=name, idempotency_key="k\x02")  # fmt: skip
                    assert (msg.title, msg.text, msg.markdown, msg.html) == (
                        full.title, full.text, full.markdown, full.html
                    )  # fmt: skip


def test_json_plain_equals_json_dumps() -> None:
    import json

    from vigil_notify.rendering import _json_plain

    values: list[object] = [
        *HOSTILE, 'q"uo\\te\n\t\u2028 é 😀', "", None, 0, 7, -3, True, 1.5, [], ["a", 'b"\\', "é\n"],
        ["a", 1], {"k": ["v"]}, ("t",),
    ]  # fmt: skip
    for v in values:
        doc = {"alert_id": "x", "value": v, "revision_of": None, "list": [v, v]}
        assert _json_plain(doc) == json.dumps(doc, ensure_ascii=False)
        assert _json_plain(v) == json.dumps(v, ensure_ascii=False)


def test_text_json_encoder_equals_the_json_module() -> None:
    """orjson's string escapes are the json module's (``ensure_ascii=False``) on every code point
    of the BMP and on astral ones; a lone surrogate takes the json module itself."""
    from vigil_notify.rendering import _json_str, _json_text

    every = "".join(chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF)
    for s in (every, every[::-1] * 2, "", 'a"b\\c\nd', "\x7f\x85\u2028\u2029\ufeff", "😀\U0010ffff", "x\ud800y"):
        assert _json_text(s) == _json_str(s) == json.dumps(s, ensure_ascii=False)


@pytest.mark.parametrize("kind", ["new", "update", "cancel"])
def test_json_line_bytes_equal_the_line_and_a_newline_encoded(kind: str) -> None:
    """What JSONL writes of a prepared message (its shared parts encoded once) is the line plus a
    newline, UTF-8 encoded; with a lone surrogate anywhere, it raises what that encoding raises."""
    from vigil_notify.channels.base import Message
    from vigil_notify.rendering import _NAME_MARK, FilledMessage

    r = Renderer()
    hostile = [*HOSTILE, 'q"uo\\te\n\t\u2028 é 😀', _REASON_MARK, f"\\{_NAME_MARK}", "lone \udc80"]
    alerts = [*_variants(), make_alert(text=f"a \\{_REASON_MARK} b"), make_alert(title='"\\\x01')]
    alerts += [make_alert(title="Zürich \u2028 😀", text='Москва \x7f é\n\ttab "q" \\ end')]
    alerts += [make_alert(text="lone \ud800 surrogate"), make_alert(title="t \udfff")]
    fast = 0
    for alert in alerts:
        prepared = r.prepare(alert, kind=kind)
        for reason in hostile:
            for name in hostile[:3] + hostile[-1:]:
                for sub_id in ('s"1\\', "é", "lone \ud801"):
                    msg = prepared.render(reason=reason, subscription_id=sub_id, subscription_name=name,
                                          idempotency_key="0123abcd")  # fmt: skip
                    fast += isinstance(msg, FilledMessage)
                    line = msg.json_line()
                    try:
                        expected = (line + "\n").encode("utf-8")
                    except UnicodeEncodeError:
                        with pytest.raises(UnicodeEncodeError):
                            msg.json_line_bytes()
                        continue
                    assert msg.json_line_bytes() == expected
                    msg.payload  # noqa: B018  (handed out: the default path from now on)
                    assert msg.json_line_bytes() == expected == Message.json_line_bytes(msg)
    assert fast > 100
    assert r.prepare(make_alert(), kind=kind)._json_bparts() is not None  # the encoded parts were used
    assert r.prepare(make_alert(text="lone \ud800 surrogate"), kind=kind)._json_bparts() is None


def test_encoded_parts_values_are_the_json_modules() -> None:
    """The encoded parts write each value with orjson between the json module's separators: for
    the values a payload holds (str, int, None, bool and lists of them) that is ``json.dumps``."""
    from vigil_notify.rendering import _orjson_dumps

    scalars: list[object] = [*HOSTILE, 'q"uo\\te\n\t\u2028 é 😀', "\x7f\x85\ufeff", "", None, 0, 7, -3, 10**18, True]
    for v in scalars:
        assert _orjson_dumps(v) == json.dumps(v, ensure_ascii=False).encode()
    for items in ([], [""], ["a", 'b"\\', "é\n"], scalars):
        joined = b"[" + b", ".join(map(_orjson_dumps, items)) + b"]"
        assert joined == json.dumps(items, ensure_ascii=False).encode()


@pytest.mark.parametrize("kind", ["new", "update", "cancel"])
def test_encoded_parts_from_the_text_head_equal_the_checked_ones(kind: str) -> None:
    """The encoded parts cut the text body at its known pieces (text_head, reason, middle, name,
    tail) instead of searching it for the stand-ins: the same parts as the stand-in way, and a head
    holding a NUL (an alert quoting a stand-in, or any NUL) takes the stand-in way."""
    from vigil_notify.rendering import _NAME_MARK, default_text, text_head

    r = Renderer()
    alerts = [*_variants(), make_alert(text=f"a \\{_REASON_MARK} b"), make_alert(title='"\\\x01')]
    alerts += [make_alert(title="Zürich \u2028 😀", text='Москва \x7f é\n\ttab "q" \\ end')]
    alerts += [make_alert(text=f"quoting {_NAME_MARK} here"), make_alert(text="a NUL \x00 alone")]
    alerts += [make_alert(text="lone \ud800 surrogate"), make_alert(title="t \udfff")]
    for alert in alerts:
        prepared = r.prepare(alert, kind=kind)
        if not prepared._fast:  # (a NUL in the title: every delivery takes the full render)
            continue
        ctx = prepared._ctx
        assert default_text(ctx) == f'{text_head(ctx)}{ctx["reason"]} (subscription "{ctx["subscription_name"]}")\n'
        assert prepared._make_json_bparts_from_head() == prepared._make_json_parts(as_bytes=True)


def test_json_cached_is_orjson_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached JSON of the small-vocabulary strings (severities, places, subscription ids...) is
    orjson's; a lone surrogate raises as orjson does and is not kept; the cache is emptied when full."""
    import orjson
    from vigil_notify import rendering

    monkeypatch.setattr(rendering, "_JSON_CACHE", {})
    values = [*HOSTILE, 'q"uo\\te\n\t\u2028 é 😀', "\x7f\x85\ufeff", "Kathmandu, NP", "Moderate"]
    for v in values + values:
        assert rendering._json_cached(v) == orjson.dumps(v)
    with pytest.raises(TypeError):
        rendering._json_cached("lone \ud800")
    assert "lone \ud800" not in rendering._JSON_CACHE
    monkeypatch.setattr(rendering, "_JSON_CACHE_MAX", 3)
    for i in range(10):
        assert rendering._json_cached(f"value {i}") == orjson.dumps(f"value {i}")
        assert len(rendering._JSON_CACHE) <= 3


@pytest.mark.parametrize(
    "title",
    ["Plain title", " lead", "trail ", "two  spaces", "tab\there", "nbsp\xa0x", "line\u2028sep", "\x1fctl", "",
     "ünï  cödé", "x\n", "ideographic\u3000space", "\x85next", "a b c", "😀 ok"],
)  # fmt: skip
@pytest.mark.parametrize("label", ["", "UPDATE"])
def test_default_title_keeps_the_templates_whitespace_rule(title: str, label: str) -> None:
    """The title's whitespace rule (runs collapsed, ends stripped) gives what the template path's
    ``" ".join(title.split())`` gives, with or without its shortcut for titles it would not change."""
    from vigil_notify.rendering import default_title

    ctx = {"title": title, "severity": "Severe", "kind_label": label}
    head = f"[{label}] [Severe] {title}" if label else f"[Severe] {title}"
    assert default_title(ctx) == " ".join(head.split())


@pytest.mark.parametrize("kind", ["new", "update", "cancel"])
def test_json_lines_bytes_equal_each_messages_json_line_bytes(kind: str) -> None:
    """What the JSONL channel writes of a batch (:func:`json_lines_bytes`: filled messages straight
    to their prepared message) is each message's own ``json_line_bytes()``: filled ones, ones whose
    payload was handed out (and changed), full renders and plain messages; a batch with a line that
    cannot be made raises what that message raises."""
    from vigil_notify.channels.base import Message
    from vigil_notify.rendering import FilledMessage, json_lines_bytes

    r = Renderer()
    hostile = [*HOSTILE, 'q"uo\\te\n\t\u2028 é 😀', _REASON_MARK, "lone \udc80"]
    alerts = [*_variants(), make_alert(title="Zürich \u2028 😀", text='Москва \x7f é\n\ttab "q" \\ end')]
    alerts += [make_alert(text="lone \ud800 surrogate")]
    ok: list[Message] = [Message(title="t", text="x", markdown="x", html="x", payload={"a": "é"})]
    filled = 0
    for alert in alerts:
        prepared = r.prepare(alert, kind=kind)
        for n, reason in enumerate(hostile):
            for sub_id in ('s"1\\', "é", "lone \ud801"):
                msg = prepared.render(reason=reason, subscription_id=sub_id, subscription_name=hostile[n % 3],
                                      idempotency_key=f"k{n}")  # fmt: skip
                if n % 4 == 1:
                    msg.payload  # noqa: B018  (handed out)
                if n % 4 == 2:
                    msg.payload["reason"] = "changed"
                try:
                    expected = msg.json_line_bytes()
                except Exception as exc:
                    with pytest.raises(type(exc)):
                        json_lines_bytes([*ok, msg])
                    continue
                filled += type(msg) is FilledMessage and "payload" not in msg.__dict__
                assert json_lines_bytes([msg]) == [expected]
                ok.append(msg)
    assert filled > 20
    assert json_lines_bytes(ok) == [m.json_line_bytes() for m in ok]
    assert json_lines_bytes([]) == []
