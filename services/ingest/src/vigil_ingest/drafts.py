"""An alert as parsed from a source, before it has an identity.

:class:`AlertDraft` carries everything of an :class:`~vigil_shared.events.AlertReceived` except the
event envelope and the identity fields (``alert_id``, ``revision``, ``revision_of``), plus the
``source_key`` the source itself uses for the item (RSS GUID, Atom id, CAP identifier) that
:mod:`vigil_ingest.identity` turns into a stable id. Parsers return drafts; the service registers
each draft with :mod:`vigil_ingest.dedup` and publishes :func:`to_alert_received` of the new ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from vigil_shared.events import AlertReceived, CapInfo, SourceKind


class AlertDraft(BaseModel):
    """A cleaned alert without identity; frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_kind: SourceKind
    source_name: str
    issuer: str | None = None
    title: str = ""
    text: str
    url: str | None = None
    published: datetime | None = None
    language: str | None = None
    cap: CapInfo | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    source_key: str | None = None
    """The source's own id of the item: RSS ``guid``, Atom ``id``, CAP ``identifier``."""

    @field_validator("url")
    @classmethod
    def _web_url_only(cls, value: str | None) -> str | None:
        """Only ``http(s)`` links travel on (SECURITY.md, hostile feeds): a ``javascript:``/``data:``
        link in a feed, CAP ``<web>`` or posted alert is dropped, not handed to every consumer."""
        if value is None:
            return None
        value = value.strip()
        return value if value.lower().startswith(("http://", "https://")) else None


def to_alert_received(
    draft: AlertDraft,
    *,
    alert_id: str,
    revision: int = 1,
    revision_of: str | None = None,
    correlation_id: str,
    producer: str = "ingest",
) -> AlertReceived:
    """The event to publish for ``draft`` once :mod:`vigil_ingest.dedup` gave it an identity."""
    data = draft.model_dump(exclude={"source_key"})
    if draft.source_key is not None and "source_key" not in draft.extra:
        data["extra"] = {**draft.extra, "source_key": draft.source_key}
    return AlertReceived(
        alert_id=alert_id,
        revision=revision,
        revision_of=revision_of if revision > 1 else None,
        correlation_id=correlation_id,
        producer=producer,
        **data,
    )
