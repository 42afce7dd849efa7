# ruff: noqa: E501  (templates are easier to read unwrapped)
"""Messages from templates: a title, plain text, Markdown and HTML, plus a structured payload.

Templates are Jinja2 (``*.html`` templates autoescaped; Markdown gets its own escaping filter).
They show severity/urgency, places, threat types and targets, the advice (CAP ``instruction`` when
present), the evidence snippets the classifier quoted, a link, and "why you got this" — the match
explanation. Updates and cancellations are marked in the title and the first line.
Override any template by passing ``templates={"title.txt": "...", ...}`` to :class:`Renderer`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final, NamedTuple, cast

import orjson
from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import escape as html_escape
from vigil_shared.events import AlertClassified, CapInfo, DeliveryKind, LabelScore

from vigil_notify.channels.base import Message
from vigil_notify.filled import FilledMessage
from vigil_notify.matching import fields_of

KIND_LABEL: Final = {"new": "", "update": "UPDATE", "cancel": "CANCELLED", "digest": "DIGEST"}

TITLE = """{% if kind_label %}[{{ kind_label }}] {% endif %}[{{ severity }}] {{ title }}"""

TEXT = """\
{% if kind == "cancel" %}CANCELLED: the alert below has been withdrawn by its issuer.
{% elif kind == "update" %}UPDATE to an alert you received earlier (revision {{ revision }}).
{% endif %}{{ title }}
Severity: {{ severity }} | Urgency: {{ urgency }}{% if issuer %} | Issuer: {{ issuer }}{% endif %}
{% if places %}Places: {{ places | join(", ") }}
{% endif %}{% if threats %}Threats: {{ threats | join(", ") }}
{% endif %}{% if targets %}Targets: {{ targets | join(", ") }}
{% endif %}
{{ text }}
{% if advice %}
Advice: {{ advice }}
{% endif %}{% if evidence %}
Evidence:
{% for e in evidence %}  - "{{ e }}"
{% endfor %}{% endif %}{% if url %}
Link: {{ url }}
{% endif %}
Why you got this: {{ reason }} (subscription "{{ subscription_name }}")
"""

MARKDOWN = """\
{% if kind == "cancel" %}**CANCELLED**: the alert below has been withdrawn by its issuer.

{% elif kind == "update" %}**UPDATE** to an alert you received earlier (revision {{ revision }}).

{% endif %}**{{ title | md }}**

*Severity:* {{ severity }} · *Urgency:* {{ urgency }}{% if issuer %} · *Issuer:* {{ issuer | md }}{% endif %}
{% if places %}
*Places:* {{ places | join(", ") | md }}{% endif %}{% if threats %}
*Threats:* {{ threats | join(", ") | md }}{% endif %}{% if targets %}
*Targets:* {{ targets | join(", ") | md }}{% endif %}

{{ text | md }}
{% if advice %}
**Advice:** {{ advice | md }}
{% endif %}{% if evidence %}
**Evidence:**
{% for e in evidence %}> {{ e | md }}
{% endfor %}{% endif %}{% if url %}
[Read the full alert]({{ url }})
{% endif %}
_Why you got this: {{ reason | md }}_
"""

HTML = """\
<div class="vigil-alert vigil-{{ kind }}">
{% if kind == "cancel" %}<p><strong>CANCELLED</strong>: the alert below has been withdrawn by its issuer.</p>
{% elif kind == "update" %}<p><strong>UPDATE</strong> to an alert you received earlier (revision {{ revision }}).</p>
{% endif %}<h2>{{ title }}</h2>
<p><strong>Severity:</strong> {{ severity }} &middot; <strong>Urgency:</strong> {{ urgency }}{% if issuer %} &middot; <strong>Issuer:</strong> {{ issuer }}{% endif %}</p>
<ul>
{% if places %}<li><strong>Places:</strong> {{ places | join(", ") }}</li>{% endif %}
{% if threats %}<li><strong>Threats:</strong> {{ threats | join(", ") }}</li>{% endif %}
{% if targets %}<li><strong>Targets:</strong> {{ targets | join(", ") }}</li>{% endif %}
</ul>
<p>{{ text }}</p>
{% if advice %}<p><strong>Advice:</strong> {{ advice }}</p>{% endif %}
{% if evidence %}<p><strong>Evidence:</strong></p><ul>{% for e in evidence %}<li><q>{{ e }}</q></li>{% endfor %}</ul>{% endif %}
{% if url %}<p><a href="{{ url }}">Read the full alert</a></p>{% endif %}
<p><em>Why you got this: {{ reason }}</em></p>
</div>
"""

DIGEST_TITLE = """[DIGEST] {{ items | length }} more alert{{ "s" if items | length != 1 else "" }} for "{{ subscription_name }}\""""

DIGEST_TEXT = """\
You reached the notification limit for this channel; these alerts were folded into one digest:
{% for i in items %}
- [{{ i.severity }}] {{ i.title }}{% if i.places %} ({{ i.places | join(", ") }}){% endif %}{% if i.url %}
  {{ i.url }}{% endif %}
  why: {{ i.reason }}
{% endfor %}"""

DIGEST_MARKDOWN = """\
You reached the notification limit for this channel; these alerts were folded into one digest:
{% for i in items %}
- **[{{ i.severity }}] {{ i.title | md }}**{% if i.places %} ({{ i.places | join(", ") | md }}){% endif %}{% if i.url %} — [link]({{ i.url }}){% endif %}
  _why: {{ i.reason | md }}_
{% endfor %}"""

DIGEST_HTML = """\
<div class="vigil-digest"><p>You reached the notification limit for this channel; these alerts were folded into one digest:</p>
<ul>{% for i in items %}<li><strong>[{{ i.severity }}] {{ i.title }}</strong>{% if i.places %} ({{ i.places | join(", ") }}){% endif %}{% if i.url %} &mdash; <a href="{{ i.url }}">link</a>{% endif %}<br><em>why: {{ i.reason }}</em></li>{% endfor %}</ul></div>
"""

DEFAULT_TEMPLATES = {
    "title.txt": TITLE,
    "body.txt": TEXT,
    "body.md": MARKDOWN,
    "body.html": HTML,
    "digest_title.txt": DIGEST_TITLE,
    "digest.txt": DIGEST_TEXT,
    "digest.md": DIGEST_MARKDOWN,
    "digest.html": DIGEST_HTML,
}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")
_MD_TABLE: Final = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+!|~"})


def md_escape(value: Any) -> str:
    """A backslash before every Markdown special character (the same as ``_MD_SPECIAL.sub``)."""
    return str(value).translate(_MD_TABLE)


# Stand-ins rendered in place of the per-subscription fields (see :meth:`Renderer.prepare`): no
# character in them is touched by Markdown or HTML escaping, and NUL never occurs in an alert that
# reached notify through JSON text fields by chance in this exact sequence.
_REASON_MARK: Final = "\x00vigil-reason-5f0c1e\x00"
_NAME_MARK: Final = "\x00vigil-subscription-name-5f0c1e\x00"


def _esc(value: Any) -> str:
    return str(html_escape(value))


def render_default(ctx: dict[str, Any]) -> tuple[str, str, str, str]:
    """(title, text, markdown, html) exactly as the default ``title.txt``/``body.*`` templates
    render ``ctx`` (tests compare the two on many alerts); several times faster than Jinja."""
    return default_title(ctx), default_text(ctx), default_markdown(ctx), default_html(ctx)


def default_title(ctx: dict[str, Any]) -> str:
    """The default ``title.txt`` of ``ctx``."""
    return _title_of(ctx["title"], ctx["severity"], ctx["kind_label"])


def _title_of(title: Any, severity: Any, label: Any) -> str:
    """:func:`default_title` of a context with this title, severity and kind label."""
    head = f"[{label}] [{severity}] {title}" if label else f"[{severity}] {title}"
    # the whitespace rule (" ".join(head.split())) changes nothing in a printable head without a
    # run of spaces or a space at either end: " " is the only printable whitespace character
    if head.isprintable() and "  " not in head and head[0] != " " and head[-1] != " ":
        return head
    return " ".join(head.split())


def default_text(ctx: dict[str, Any]) -> str:
    """The default ``body.txt`` of ``ctx``."""
    return f"{text_head(ctx)}{ctx['reason']}{_TEXT_MIDDLE}{ctx['subscription_name']}{_TEXT_TAIL}"


_TEXT_MIDDLE: Final = ' (subscription "'
_TEXT_TAIL: Final = '")\n'
"""What the default ``body.txt`` writes between the reason and the subscription name, and after the
name (the body ends there)."""


def text_head(ctx: dict[str, Any]) -> str:
    """The default ``body.txt`` of ``ctx`` up to its reason (the body is this, the reason,
    :data:`_TEXT_MIDDLE`, the subscription name and :data:`_TEXT_TAIL`)."""
    return _text_head_of(
        ctx["kind"], ctx["revision"], ctx["title"], ctx["severity"], ctx["urgency"], ctx["issuer"], ctx["places"],
        ctx["threats"], ctx["targets"], ctx["text"], ctx["advice"], ctx["evidence"], ctx["url"],
    )  # fmt: skip


def _text_head_of(
    kind: Any, rev: Any, title: Any, severity: Any, urgency: Any, issuer: Any, places: Any, threats: Any,
    targets: Any, text: Any, advice: Any, evidence: Any, url: Any,
) -> str:  # fmt: skip
    """:func:`text_head` of a context with these values (read once from a dict or a :class:`_Base`)."""
    t: list[str] = []
    if kind == "cancel":
        t.append("CANCELLED: the alert below has been withdrawn by its issuer.\n")
    elif kind == "update":
        t.append(f"UPDATE to an alert you received earlier (revision {rev}).\n")
    t.append(f"{title}\nSeverity: {severity} | Urgency: {urgency}")
    if issuer:
        t.append(f" | Issuer: {issuer}")
    t.append("\n")
    if places:
        t.append(f"Places: {', '.join(places)}\n")
    if threats:
        t.append(f"Threats: {', '.join(threats)}\n")
    if targets:
        t.append(f"Targets: {', '.join(targets)}\n")
    t += ("\n", text, "\n")  # (not one f-string: the text is copied once, by the join)
    if advice:
        t.append(f"\nAdvice: {advice}\n")
    if evidence:
        t.append("\nEvidence:\n")
        for e in evidence:  # (a loop: a generator costs more, compiled or not)
            t.append(f'  - "{e}"\n')
    if url:
        t.append(f"\nLink: {url}\n")
    t.append("\nWhy you got this: ")
    return "".join(t)


def default_markdown(ctx: dict[str, Any]) -> str:
    """The default ``body.md`` of ``ctx``."""
    kind, rev = ctx["kind"], ctx["revision"]
    title, severity, urgency = ctx["title"], ctx["severity"], ctx["urgency"]
    issuer, places, threats, targets = ctx["issuer"], ctx["places"], ctx["threats"], ctx["targets"]
    text, advice, evidence, url, reason = ctx["text"], ctx["advice"], ctx["evidence"], ctx["url"], ctx["reason"]
    m: list[str] = []
    if kind == "cancel":
        m.append("**CANCELLED**: the alert below has been withdrawn by its issuer.\n\n")
    elif kind == "update":
        m.append(f"**UPDATE** to an alert you received earlier (revision {rev}).\n\n")
    m.append(f"**{md_escape(title)}**\n\n*Severity:* {severity} · *Urgency:* {urgency}")
    if issuer:
        m.append(f" · *Issuer:* {md_escape(issuer)}")
    m.append("\n")
    if places:
        m.append(f"\n*Places:* {md_escape(', '.join(places))}")
    if threats:
        m.append(f"\n*Threats:* {md_escape(', '.join(threats))}")
    if targets:
        m.append(f"\n*Targets:* {md_escape(', '.join(targets))}")
    m.append(f"\n\n{md_escape(text)}\n")
    if advice:
        m.append(f"\n**Advice:** {md_escape(advice)}\n")
    if evidence:
        m.append("\n**Evidence:**\n")
        m.extend(f"> {md_escape(e)}\n" for e in evidence)
    if url:
        m.append(f"\n[Read the full alert]({url})\n")
    m.append(f"\n_Why you got this: {md_escape(reason)}_\n")
    return "".join(m)


def default_html(ctx: dict[str, Any]) -> str:
    """The default ``body.html`` of ``ctx``."""
    kind, rev = ctx["kind"], ctx["revision"]
    title, severity, urgency = ctx["title"], ctx["severity"], ctx["urgency"]
    issuer, places, threats, targets = ctx["issuer"], ctx["places"], ctx["threats"], ctx["targets"]
    text, advice, evidence, url, reason = ctx["text"], ctx["advice"], ctx["evidence"], ctx["url"], ctx["reason"]
    h: list[str] = [f'<div class="vigil-alert vigil-{_esc(kind)}">\n']
    if kind == "cancel":
        h.append("<p><strong>CANCELLED</strong>: the alert below has been withdrawn by its issuer.</p>\n")
    elif kind == "update":
        h.append(f"<p><strong>UPDATE</strong> to an alert you received earlier (revision {_esc(rev)}).</p>\n")
    h.append(
        f"<h2>{_esc(title)}</h2>\n<p><strong>Severity:</strong> {_esc(severity)} &middot; "
        f"<strong>Urgency:</strong> {_esc(urgency)}"
    )
    if issuer:
        h.append(f" &middot; <strong>Issuer:</strong> {_esc(issuer)}")
    h.append("</p>\n<ul>\n")
    if places:
        h.append(f"<li><strong>Places:</strong> {_esc(', '.join(places))}</li>")
    h.append("\n")
    if threats:
        h.append(f"<li><strong>Threats:</strong> {_esc(', '.join(threats))}</li>")
    h.append("\n")
    if targets:
        h.append(f"<li><strong>Targets:</strong> {_esc(', '.join(targets))}</li>")
    h.append(f"\n</ul>\n<p>{_esc(text)}</p>\n")
    if advice:
        h.append(f"<p><strong>Advice:</strong> {_esc(advice)}</p>")
    h.append("\n")
    if evidence:
        h.append("<p><strong>Evidence:</strong></p><ul>")
        h.extend(f"<li><q>{_esc(e)}</q></li>" for e in evidence)
        h.append("</ul>")
    h.append("\n")
    if url:
        h.append(f'<p><a href="{_esc(url)}">Read the full alert</a></p>')
    h.append(f"\n<p><em>Why you got this: {_esc(reason)}</em></p>\n</div>\n")
    return "".join(h)


_HTTP_URL: Final = re.compile(r"^https?://", re.I)


def _safe_url(url: str | None) -> str | None:
    return url if url and _HTTP_URL.match(url) else None


def _label_types(labels: tuple[LabelScore, ...], evidence: list[str]) -> list[str]:
    """The type of each label, in order; their evidence texts appended to ``evidence`` while it
    holds fewer than five, each text once (the first five distinct texts are shown)."""
    types: list[str] = []
    for label in labels:
        f = fields_of(label)
        types.append(f["type"])
        if len(evidence) < 5:
            for ev in f["evidence"]:
                text: str = ev.text
                if text and text not in evidence:
                    evidence.append(text)
                    if len(evidence) == 5:
                        break
    return types


class _Base:
    """The alert's values of a payload (what :meth:`Renderer.render` puts there, but the
    subscription's) and of the templates' context (:meth:`Renderer.context`: ``threats`` is
    ``threat_types``), once per (alert, kind): a plain class with its own ``__init__`` (positional,
    in this order), made and read at less cost than a dict (or a NamedTuple, whose ``__new__`` is
    interpreted) when compiled; the context's dict is made from it only when a template needs it
    (:func:`_context_dict`)."""

    __slots__ = (
        "advice", "alert_id", "correlation_id", "countries", "evidence", "issuer", "kind", "kind_label", "places",
        "reason", "revision", "revision_of", "severity", "subscription_name", "targets", "text", "threat_types",
        "title", "urgency", "url",
    )  # fmt: skip

    def __init__(
        self,
        alert_id: str,
        revision: int,
        revision_of: str | None,
        title: str,
        severity: str,
        urgency: str,
        places: list[str],
        countries: list[str],
        threat_types: list[str],
        targets: list[str],
        advice: str | None,
        url: str | None,
        correlation_id: str,
        kind: str,
        kind_label: str,
        text: str,
        issuer: Any,
        evidence: list[str],
        reason: str,
        subscription_name: str,
    ) -> None:
        self.alert_id, self.revision, self.revision_of, self.title = alert_id, revision, revision_of, title
        self.severity, self.urgency, self.places, self.countries = severity, urgency, places, countries
        self.threat_types, self.targets, self.advice, self.url = threat_types, targets, advice, url
        self.correlation_id, self.kind, self.kind_label, self.text = correlation_id, kind, kind_label, text
        self.issuer, self.evidence, self.reason, self.subscription_name = issuer, evidence, reason, subscription_name


def _context_dict(b: _Base) -> dict[str, Any]:
    """:meth:`Renderer.context` of the values ``b`` (the same keys, in the same order)."""
    return {
        "kind": b.kind,
        "kind_label": b.kind_label,
        "title": b.title,
        "text": b.text,
        "issuer": b.issuer,
        "severity": b.severity,
        "urgency": b.urgency,
        "places": b.places,
        "threats": b.threat_types,
        "targets": b.targets,
        "advice": b.advice,
        "evidence": b.evidence,
        "url": b.url,
        "reason": b.reason,
        "revision": b.revision,
        "subscription_name": b.subscription_name,
    }


def _base_text_head(b: _Base) -> str:
    """:func:`text_head` of :func:`_context_dict` of ``b``, without the dict."""
    return _text_head_of(
        b.kind, b.revision, b.title, b.severity, b.urgency, b.issuer, b.places, b.threat_types, b.targets, b.text,
        b.advice, b.evidence, b.url,
    )  # fmt: skip


def _values(alert: AlertClassified, kind: DeliveryKind, reason: str, subscription_name: str) -> _Base:
    """The values of :meth:`Renderer.context` and the alert's values of a payload (what
    :meth:`Renderer.render` puts there, but the subscription's), each field of the alert read once
    (from the models' field dicts, :func:`~vigil_notify.matching.fields_of`)."""
    e = fields_of(alert)
    a, c = fields_of(e["alert"]), fields_of(e["classification"])
    cap: CapInfo | None = a["cap"]
    evidence: list[str] = []  # the first five distinct texts (only five are shown)
    threats = _label_types(c["threat_types"], evidence)
    targets = _label_types(c["targets"], evidence)
    text: str = a["text"]
    countries: tuple[str, ...] = c["countries"]
    severity, urgency, revision = c["severity"], c["urgency"], a["revision"]
    title = a["title"] or (cap.headline if cap and cap.headline else "") or text[:80]
    places: list[str] = []
    for loc in c["locations"]:
        f = fields_of(loc)
        places.append(f"{f['name']}, {f['country_code']}")
    if not places:
        places = list(countries)
    advice = cap.instruction if cap and cap.instruction else None
    url = _safe_url(a["url"])
    return _Base(
        a["alert_id"], revision, a["revision_of"], title, severity, urgency, places, list(countries), threats,
        targets, advice, url, e["correlation_id"], kind, KIND_LABEL[kind], text, a["issuer"] or a["source_name"],
        evidence, reason, subscription_name,
    )  # fmt: skip


@dataclass(frozen=True)
class DigestItem:
    alert_id: str
    revision: int
    title: str
    severity: str
    places: tuple[str, ...]
    url: str | None
    reason: str
    threat_types: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "revision": self.revision,
            "title": self.title,
            "severity": self.severity,
            "places": list(self.places),
            "url": self.url,
            "reason": self.reason,
            "threat_types": list(self.threat_types),
        }


@dataclass
class Renderer:
    templates: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        env = Environment(
            loader=DictLoader({**DEFAULT_TEMPLATES, **self.templates}),
            autoescape=lambda name: bool(name and name.endswith(".html")),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        env.filters["md"] = md_escape
        self.env = env

    def context(
        self, alert: AlertClassified, *, kind: DeliveryKind, reason: str, subscription_name: str
    ) -> dict[str, Any]:
        return _context_dict(_values(alert, kind, reason, subscription_name))

    def prepare(self, alert: AlertClassified, *, kind: DeliveryKind, sent_at: str | None = None) -> PreparedMessage:
        """Render the parts of (alert, kind) shared by every subscription once; fill in the
        per-subscription parts with :meth:`PreparedMessage.render` (same output as :meth:`render`).

        Falls back to a full render per call when custom templates are in use (they might
        transform the reason or the subscription name in ways stand-ins cannot follow) or when
        a stand-in does not come out of the templates exactly once per place it is used.

        ``sent_at``: the payloads' ``sent_at`` (ISO 8601, local time), e.g. one for a batch of
        alerts rendered together; default now."""
        return PreparedMessage(self, alert, kind, sent_at)

    def render(
        self,
        alert: AlertClassified,
        *,
        kind: DeliveryKind,
        reason: str,
        subscription_id: str,
        subscription_name: str,
        idempotency_key: str = "",
    ) -> Message:
        ctx = self.context(alert, kind=kind, reason=reason, subscription_name=subscription_name)
        a, c = alert.alert, alert.classification
        payload = {
            "alert_id": a.alert_id,
            "revision": a.revision,
            "revision_of": a.revision_of,
            "subscription_id": subscription_id,
            "kind": kind,
            "title": ctx["title"],
            "severity": c.severity,
            "urgency": c.urgency,
            "places": ctx["places"],
            "countries": list(c.countries),
            "threat_types": ctx["threats"],
            "targets": ctx["targets"],
            "advice": ctx["advice"],
            "url": ctx["url"],
            "reason": reason,
            "correlation_id": alert.correlation_id,
            "idempotency_key": idempotency_key,
            "sent_at": datetime.now().astimezone().isoformat(),
        }
        return self._message(ctx, "title.txt", "body", payload, idempotency_key)

    def render_digest(
        self,
        items: list[DigestItem],
        *,
        subscription_id: str,
        subscription_name: str,
        idempotency_key: str = "",
    ) -> Message:
        ctx = {"items": items, "subscription_name": subscription_name}
        payload = {
            "kind": "digest",
            "subscription_id": subscription_id,
            "alerts": [i.as_dict() for i in items],
            "idempotency_key": idempotency_key,
            "sent_at": datetime.now().astimezone().isoformat(),
        }
        msg = self._message(ctx, "digest_title.txt", "digest", payload, idempotency_key)
        payload["title"] = msg.title
        return msg

    def _message(self, ctx: dict[str, Any], title_tpl: str, body: str, payload: dict[str, Any], key: str) -> Message:
        title = " ".join(self.env.get_template(title_tpl).render(ctx).split())
        return Message(
            title=title,
            text=self.env.get_template(f"{body}.txt").render(ctx),
            markdown=self.env.get_template(f"{body}.md").render(ctx),
            html=self.env.get_template(f"{body}.html").render(ctx),
            payload=payload,
            idempotency_key=key,
        )


_UNSET: Final = object()


class _JsonParts(NamedTuple):
    """The JSONL line of a prepared message without its per-delivery values: the line is ``head``,
    the subscription id's JSON, ``middle``, the reason's JSON, ``tail``, the idempotency key's JSON,
    ``text_head``, the first stand-in's value, ``text_middle``, the second's, ``text_tail`` (the
    stand-ins' values JSON-escaped, without quotes; the reason first when ``reason_first``)."""

    head: str
    middle: str
    tail: str
    text_head: str
    text_middle: str
    text_tail: str
    reason_first: bool


_new_tuple: Final[Callable[[type, tuple[Any, ...]], Any]] = tuple.__new__
"""``tuple.__new__``: what a NamedTuple's ``__new__`` calls with its fields, without that interpreted
``__new__`` (the parts are made once per (alert, kind))."""


class _JsonBytesParts(NamedTuple):
    """:class:`_JsonParts` UTF-8 encoded, ``text_tail`` with the line's newline."""

    head: bytes
    middle: bytes
    tail: bytes
    text_head: bytes
    text_middle: bytes
    text_tail: bytes
    reason_first: bool


def sent_at_now() -> str:
    """A payload's ``sent_at``: now, local time with its offset, ISO 8601."""
    return datetime.now().astimezone().isoformat()


_new_object: Final[Callable[[type], Any]] = object.__new__
_FILLED: Final[type[FilledMessage]] = FilledMessage
"""(The module's constants are ``Final``: compiled, each is read from a C variable, not looked up in
the module's dict, several times per delivery.)"""


def _filled(
    prepared: PreparedMessage, reason: str, subscription_id: str, subscription_name: str, idempotency_key: str
) -> FilledMessage:
    """``FilledMessage(prepared, reason, subscription_id, subscription_name, idempotency_key)``: the
    same instance dict, filled here (compiled) instead of by its interpreted ``__init__`` (a Python
    call once per delivery; tested equal)."""
    msg: FilledMessage = _new_object(_FILLED)
    # (compiled, in a function: one C call of PyObject_GenericSetAttr, which the frozen dataclass's
    # __setattr__ is not asked; what FilledMessage.__init__ does)
    object.__setattr__(msg, "_fill", (prepared, reason, subscription_id, subscription_name, idempotency_key))
    return msg


class PreparedMessage:
    """The rendering of one (alert, kind) with stand-ins for the reason and subscription name.

    Each body (text, Markdown, HTML) is rendered on first use, once per (alert, kind), and checked
    then: a body where a stand-in does not come out exactly once per place it is used (an alert
    quoting one, say) takes the full render per delivery."""

    __slots__ = (
        "_alert", "_base", "_bodies", "_fast", "_jbparts", "_jparts", "_kind", "_renderer", "_sent_at", "_title",
    )  # fmt: skip

    # per body: how many NULs the default template leaves (two per stand-in) and whether the
    # subscription name appears (the reason appears once in every body)
    _EXPECTED: ClassVar[dict[str, tuple[int, bool]]] = {"text": (4, True), "markdown": (2, False), "html": (2, False)}

    def __init__(
        self, renderer: Renderer, alert: AlertClassified, kind: DeliveryKind, sent_at: str | None = None
    ) -> None:
        self._renderer, self._alert, self._kind = renderer, alert, kind
        self._fast = False
        self._bodies: dict[str, str | None] = {}
        self._jparts: object = _UNSET
        self._jbparts: object = _UNSET
        if renderer.templates:
            return
        base = _values(alert, kind, _REASON_MARK, _NAME_MARK)
        title = _title_of(base.title, base.severity, base.kind_label)
        if "\x00" in title:
            return
        self._title = title
        # the deliveries of one (alert, kind) are rendered together, within milliseconds: one
        # timestamp for all of them (a full render per delivery takes its own)
        self._sent_at = sent_at or sent_at_now()
        self._base = base
        self._fast = True

    @property
    def _ctx(self) -> dict[str, Any]:
        """The context of the prepared bodies (:meth:`Renderer.context` with the stand-ins), made
        when a body is (JSONL needs none)."""
        return _context_dict(self._base)

    def _prepared_body(self, part: str) -> str | None:
        """The body ``part`` with stand-ins, or None when it must take the full render."""
        if part in self._bodies:
            return self._bodies[part]
        made = _BODY_MAKERS[part](self._ctx)  # (text, Markdown, HTML: channels other than JSONL)
        nuls, named = self._EXPECTED[part]
        ok = made.count("\x00") == nuls and made.count(_REASON_MARK) == 1 and (not named or made.count(_NAME_MARK) == 1)
        body = made if ok else None
        self._bodies[part] = body
        return body

    def render(
        self, *, reason: str, subscription_id: str, subscription_name: str, idempotency_key: str = ""
    ) -> Message:
        if not self._fast or "\x00" in reason or "\x00" in subscription_name:
            return self._full(reason, subscription_id, subscription_name, idempotency_key)
        return _filled(self, reason, subscription_id, subscription_name, idempotency_key)

    def _payload(self, reason: str, subscription_id: str, idempotency_key: str) -> dict[str, Any]:
        """The payload of a filled-in message (what :meth:`Renderer.render` puts there)."""
        b = self._base
        return {
            "alert_id": b.alert_id,
            "revision": b.revision,
            "revision_of": b.revision_of,
            "subscription_id": subscription_id,
            "kind": self._kind,
            "title": b.title,
            "severity": b.severity,
            "urgency": b.urgency,
            "places": list(b.places),
            "countries": list(b.countries),
            "threat_types": list(b.threat_types),
            "targets": list(b.targets),
            "advice": b.advice,
            "url": b.url,
            "reason": reason,
            "correlation_id": b.correlation_id,
            "idempotency_key": idempotency_key,
            "sent_at": self._sent_at,
        }

    def _full(self, reason: str, subscription_id: str, subscription_name: str, idempotency_key: str) -> Message:
        return self._renderer.render(
            self._alert,
            kind=self._kind,
            reason=reason,
            subscription_id=subscription_id,
            subscription_name=subscription_name,
            idempotency_key=idempotency_key,
        )

    def _json_parts(self) -> _JsonParts | None:
        """What :meth:`Message.json_line` of every delivery shares, JSON-encoded once (see
        :class:`_JsonParts`); None when the text body takes the full render (then each delivery
        encodes its own line).

        The text body is cut at its two stand-ins (each there exactly once, checked by
        :meth:`_prepared_body`) before encoding, and each piece is encoded on its own: JSON escapes
        character by character, so the pieces' JSON around the JSON of the reason and the name is
        the JSON of the filled-in text."""
        if self._jparts is _UNSET:
            self._jparts = self._make_json_parts(as_bytes=False)
        return cast("_JsonParts | None", self._jparts)

    def _json_bparts(self) -> _JsonBytesParts | None:
        """:meth:`_json_parts` UTF-8 encoded, once per (alert, kind), the newline after the tail
        (the text's pieces as orjson writes them, never made into ``str``); None when there are
        none or they cannot be encoded (a lone surrogate in the alert: each delivery then encodes
        its own line, and fails as that does)."""
        if self._jbparts is _UNSET:
            self._jbparts = self._make_json_bparts_from_head() if self._fast else None
        return cast("_JsonBytesParts | None", self._jbparts)

    def _make_json_bparts_from_head(self) -> _JsonBytesParts | None:
        """:meth:`_make_json_parts` (``as_bytes``) without the text body's stand-ins: the default
        body is :func:`text_head`, the reason, :data:`_TEXT_MIDDLE`, the name and :data:`_TEXT_TAIL`,
        so its pieces around the two are known without searching it. A head with a NUL (where an
        alert's own text could hold a stand-in) takes the checked way."""
        head = _base_text_head(self._base)
        if "\x00" in head:
            parts = self._make_json_parts(as_bytes=True)
            return cast("_JsonBytesParts | None", parts)
        try:
            line_head, middle, tail = self._json_fields_bytes()
            d = _orjson_dumps
            text_head_json = b', "sent_at": ' + d(self._sent_at) + b', "rendered_text": ' + d(head)[:-1]
        except TypeError:  # orjson.JSONEncodeError: a lone surrogate
            return None
        fields = (line_head, middle, tail, text_head_json, _TEXT_MIDDLE_JSON, _TEXT_TAIL_JSON_LINE, True)
        return cast("_JsonBytesParts", _new_tuple(_JsonBytesParts, fields))

    def _make_json_parts(self, *, as_bytes: bool) -> _JsonParts | _JsonBytesParts | None:
        text = self._prepared_body("text")
        r = n = -1
        if text is not None:
            r, n = text.find(_REASON_MARK), text.find(_NAME_MARK)
        (i, li), (j, lj) = sorted(((r, len(_REASON_MARK)), (n, len(_NAME_MARK))))
        if text is None or i < 0 or i + li > j:  # both there, apart (never otherwise: belt and braces)
            return None
        b = self._base
        if as_bytes:
            try:
                return self._make_json_bparts(text, i, li, j, lj, r < n)
            except (TypeError, UnicodeEncodeError):  # orjson.JSONEncodeError or encode(): a lone surrogate
                return None
        pieces = (text[:i], text[i + li : j], text[j + lj :])
        head = _json_plain({"alert_id": b.alert_id, "revision": b.revision, "revision_of": b.revision_of})
        middle = _json_plain(
            {
                "kind": self._kind, "title": b.title, "severity": b.severity,
                "urgency": b.urgency, "places": b.places, "countries": b.countries,
                "threat_types": b.threat_types, "targets": b.targets, "advice": b.advice,
                "url": b.url,
            }
        )  # fmt: skip
        head = head[:-1] + ', "subscription_id": '
        middle = ", " + middle[1:-1] + ', "reason": '
        tail = ', "correlation_id": ' + _json(b.correlation_id) + ', "idempotency_key": '
        text_head = ', "sent_at": ' + _json_str(self._sent_at) + ', "rendered_text": "'
        s0, s1, s2 = (_json_text(x)[1:-1] for x in pieces)
        return _JsonParts(head, middle, tail, text_head + s0, s1, s2 + '"}', r < n)

    def _make_json_bparts(self, text: str, i: int, li: int, j: int, lj: int, reason_first: bool) -> _JsonBytesParts:
        """:class:`_JsonBytesParts` of the text body ``text`` whose stand-ins are at ``i`` and ``j``
        (lengths ``li``, ``lj``), each value written by orjson between the separators the json
        module puts there (``", "`` and ``": "``, in lists too), without building the line's dicts
        and their ``str`` JSON first: the values are ``str``, ``int`` or None and lists of ``str``
        (made by :meth:`Renderer.context` from the validated alert), which orjson writes as the json
        module does (the same string escapes, tested). Raises ``TypeError`` for a lone surrogate."""
        head, middle, tail = self._json_fields_bytes()
        d = _orjson_dumps
        text_head = b', "sent_at": ' + d(self._sent_at) + b', "rendered_text": "'
        t0, t1, t2 = d(text[:i])[1:-1], d(text[i + li : j])[1:-1], d(text[j + lj :])[1:-1]
        fields = (head, middle, tail, text_head + t0, t1, t2 + b'"}\n', reason_first)
        return cast("_JsonBytesParts", _new_tuple(_JsonBytesParts, fields))

    def _json_fields_bytes(self) -> tuple[bytes, bytes, bytes]:
        """The head, middle and tail of :class:`_JsonBytesParts` (the line's fields but the text,
        see :meth:`_make_json_bparts`). Raises ``TypeError`` for a lone surrogate."""
        b, d = self._base, _orjson_dumps
        head = b"".join(
            (
                b'{"alert_id": ', d(b.alert_id), b', "revision": ', d(b.revision),
                b', "revision_of": ', _json_optional(b.revision_of), b', "subscription_id": ',
            )
        )  # fmt: skip
        c = _json_cached  # (values from small vocabularies: severities, places, threat types...)
        out = [
            b', "kind": ', c(self._kind), b', "title": ', d(b.title), b', "severity": ', c(b.severity),
            b', "urgency": ', c(b.urgency), b', "places": [',
        ]  # fmt: skip
        _json_items(out, b.places)
        out.append(b'], "countries": [')
        _json_items(out, b.countries)
        out.append(b'], "threat_types": [')
        _json_items(out, b.threat_types)
        out.append(b'], "targets": [')
        _json_items(out, b.targets)
        out += (b'], "advice": ', _json_optional(b.advice), b', "url": ', _json_optional(b.url), b', "reason": ')
        tail = b', "correlation_id": ' + d(b.correlation_id) + b', "idempotency_key": '
        return head, b"".join(out), tail

    def _json_line(self, reason: str, subscription_id: str, subscription_name: str, idempotency_key: str) -> str:
        """:meth:`Message.json_line` of this delivery from the shared parts (the same string)."""
        parts = self._json_parts()
        if parts is None or not (type(reason) is type(subscription_id) is type(idempotency_key) is str):
            text = self._body(reason, subscription_id, subscription_name, idempotency_key, "text")
            payload = self._payload(reason, subscription_id, idempotency_key)
            return json.dumps({**payload, "rendered_text": text}, ensure_ascii=False)
        head, middle, tail, text_head, text_middle, text_tail, reason_first = parts
        reason_json = _json_text(reason)  # (a match explanation: long enough for orjson to be cheaper)
        name_json = _json_str(subscription_name)[1:-1]
        first, second = (reason_json[1:-1], name_json) if reason_first else (name_json, reason_json[1:-1])
        return "".join(
            (
                head, _json_str(subscription_id), middle, reason_json, tail, _json_token(idempotency_key),
                text_head, first, text_middle, second, text_tail,
            )
        )  # fmt: skip

    def _json_line_bytes(
        self, reason: str, subscription_id: str, subscription_name: str, idempotency_key: str
    ) -> bytes:
        """:meth:`Message.json_line_bytes` of this delivery from the shared encoded parts (the same
        bytes as ``(self._json_line(...) + "\\n").encode()``, tested)."""
        parts = self._json_bparts()
        if parts is None or not (type(reason) is type(subscription_id) is type(idempotency_key) is str):
            return (self._json_line(reason, subscription_id, subscription_name, idempotency_key) + "\n").encode()
        head, middle, tail, text_head, text_middle, text_tail, reason_first = parts
        d = _orjson_dumps  # (each value's JSON already UTF-8: no str to encode per value)
        try:
            reason_json, name_json = d(reason), _json_cached(subscription_name)[1:-1]
            sub_json, key_json = _json_cached(subscription_id), d(idempotency_key)
        except TypeError:  # orjson.JSONEncodeError: a lone surrogate; encode() raises for it here
            return (self._json_line(reason, subscription_id, subscription_name, idempotency_key) + "\n").encode()
        first, second = (reason_json[1:-1], name_json) if reason_first else (name_json, reason_json[1:-1])
        return b"".join(
            (head, sub_json, middle, reason_json, tail, key_json, text_head, first, text_middle, second, text_tail)
        )

    def _body(self, reason: str, subscription_id: str, subscription_name: str, idempotency_key: str, part: str) -> str:
        """One body of a filled-in message (called by :class:`LazyMessage` on first access)."""
        body = self._prepared_body(part)
        if body is None:
            full = self._full(reason, subscription_id, subscription_name, idempotency_key)
            return str(getattr(full, part))
        if part == "text":
            return body.replace(_REASON_MARK, reason).replace(_NAME_MARK, subscription_name)
        if part == "markdown":
            return body.replace(_REASON_MARK, md_escape(reason)).replace(_NAME_MARK, md_escape(subscription_name))
        return body.replace(_REASON_MARK, str(html_escape(reason))).replace(
            _NAME_MARK, str(html_escape(subscription_name))
        )


_json: Final[Callable[[Any], str]] = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(obj, ensure_ascii=False)`` with one encoder for every call (``dumps`` makes one per
call when given an option)."""
_json_str: Final[Callable[[str], str]] = json.encoder.encode_basestring
"""``json.dumps(s, ensure_ascii=False)`` of a str, without building an encoder per call."""
_orjson_dumps: Final[Callable[[Any], bytes]] = orjson.dumps
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode: Final[Callable[[Any, int], Any] | None] = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None, json.JSONEncoder(ensure_ascii=False).default, _json_str, None, ": ", ", ", False, False, True
    )
)


def json_lines_bytes(messages: Sequence[Message]) -> list[bytes]:
    """``[message.json_line_bytes() for message in messages]`` (the same bytes, the same errors):
    a :class:`FilledMessage` (exactly that class) whose payload was never handed out goes straight
    to its prepared message's :meth:`PreparedMessage._json_line_bytes`, without the interpreted
    :meth:`FilledMessage.json_line_bytes` call in between (once per delivery when compiled)."""
    out: list[bytes] = []
    for message in messages:
        if type(message) is _FILLED:
            fill: tuple[Any, ...] = message._fill
            if len(fill) == 5:  # (a sixth item: the payload was handed out)
                prepared: PreparedMessage = fill[0]
                out.append(prepared._json_line_bytes(fill[1], fill[2], fill[3], fill[4]))
                continue
        out.append(message.json_line_bytes())
    return out


def _json_plain(obj: Any) -> str:
    """``_json(obj)`` of plain data (no reference cycles), by the C encoder made once (what
    ``JSONEncoder.encode`` builds on every call, with ``check_circular=False``)."""
    if _c_encode is None:
        return _json(obj)
    return "".join(_c_encode(obj, 0))


def _json_token(value: str) -> str:
    """``_json_str(value)``; an ASCII letters-and-digits string (a hex key, say: nothing to escape)
    without running the escaper over it."""
    return f'"{value}"' if type(value) is str and value.isascii() and value.isalnum() else _json_str(value)


def _json_text(text: str) -> str:
    """``_json_str(text)`` of a long text by orjson, five times faster (the same escapes: ``"``,
    ``\\`` and control characters, everything else kept; tested), or by the json module when orjson
    refuses the text (a lone surrogate)."""
    try:
        return _orjson_dumps(text).decode()
    except TypeError:  # orjson.JSONEncodeError
        return _json_str(text)


def _json_items(out: list[bytes], items: list[str]) -> None:
    """The JSON of each of ``items`` (:func:`_json_cached`), ``", "`` between them (the json module's list
    separator), appended to ``out``."""
    first = True
    for item in items:
        if first:
            first = False
        else:
            out.append(b", ")
        out.append(_json_cached(item))


def _json_optional(value: Any) -> bytes:
    """``orjson.dumps(value)`` of an optional value, ``null`` without the encoder for None."""
    return b"null" if value is None else _orjson_dumps(value)


_JSON_CACHE: Final[dict[str, bytes]] = {}
_JSON_CACHE_MAX = 32768


def _json_cached(value: str) -> bytes:
    """``orjson.dumps(value)`` of a string met again and again (a subscription's id and name, a
    severity, a place, a threat type), kept: a dict lookup instead of an encoder call and its
    buffer. Up to :data:`_JSON_CACHE_MAX` strings, then emptied. Raises what orjson raises (a lone
    surrogate: ``TypeError``, nothing kept)."""
    got = _JSON_CACHE.get(value)
    if got is None:
        got = _orjson_dumps(value)
        if len(_JSON_CACHE) >= _JSON_CACHE_MAX:
            _JSON_CACHE.clear()
        _JSON_CACHE[value] = got
    return got


_TEXT_MIDDLE_JSON: Final = _orjson_dumps(_TEXT_MIDDLE)[1:-1]
_TEXT_TAIL_JSON_LINE: Final = _orjson_dumps(_TEXT_TAIL)[1:-1] + b'"}\n'
"""The text's JSON between the reason and the name, and after the name to the line's end."""


_BODY_MAKERS: Final[dict[str, Callable[[dict[str, Any]], str]]] = {
    "text": default_text,
    "markdown": default_markdown,
    "html": default_html,
}
