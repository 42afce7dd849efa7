"""The idempotency keys and content fingerprints hashed from a copy of an empty SHA-256 object are
the ones ``hashlib.sha256(data)`` gives (keys and fingerprints are stored in Redis: they must not
change between releases), and the copies share no state."""

from __future__ import annotations

import hashlib

from vigil_notify.delivery import (
    _normalise_regex,
    _slot_setter,
    content_fingerprint,
    idempotency_key,
)
from vigil_shared.events import NotificationDelivered


def _reference_key(alert_id: str, revision: int, subscription_id: str, channel_url: str) -> str:
    raw = "\x1f".join((alert_id, str(revision), subscription_id, channel_url))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def test_idempotency_key_is_the_sha256_of_the_joined_fields() -> None:
    cases = [
        ("alert-1", 1, "sub-1", "jsonl:///tmp/out.jsonl"),
        ("a" * 300, 12345678901234567890, "s", "webhook+https://user:pw@example.org/h?token=x"),
        ("", 0, "", ""),
        ("ünïcödé-€", -3, "sub-ß", "console://"),
        ("digest:abc", 1, "sub-2", "telegram://bot123:tok/chat"),
    ]
    for case in cases:
        assert idempotency_key(*case) == _reference_key(*case)
    # interleaved calls: each key from a fresh object (no state carried from one call to the next)
    keys = [idempotency_key(*case) for case in cases for _ in range(3)]
    assert keys == [_reference_key(*case) for case in cases for _ in range(3)]


def test_content_fingerprint_is_the_sha256_of_the_normalised_text() -> None:
    texts = [
        ("Title", "Body. With, punctuation;  and   runs\t\nof whitespace!"),
        ("", ""),
        ("  ...  ", "---"),
        ("Ünïcödé ÉVACUATION", "Straße — «quotes» 東京 ٣"),
        ("x" * 5000, "y. " * 2000),
    ]
    for title, text in texts:
        expected = hashlib.sha256(_normalise_regex(f"{title}\n{text}").encode()).hexdigest()[:24]
        assert content_fingerprint(title, text) == expected
        assert content_fingerprint(title, text) == expected  # again: no state kept between calls


def test_slot_setters_are_the_descriptors_object_setattr_uses() -> None:
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        a = object.__new__(NotificationDelivered)
        b = object.__new__(NotificationDelivered)
        value = {"x": 1} if name == "__dict__" else ({"x"} if name == "__pydantic_fields_set__" else None)
        object.__setattr__(a, name, value)
        _slot_setter(NotificationDelivered, name)(b, value)
        assert object.__getattribute__(a, name) == object.__getattribute__(b, name)
