from __future__ import annotations

from collections.abc import Callable

from vigil_ingest.cap import parse_cap
from vigil_ingest.drafts import AlertDraft, to_alert_received
from vigil_ingest.feeds import parse_feed
from vigil_ingest.identity import (
    alert_id,
    fingerprint,
    identity_key,
    is_globally_unique,
    normalize_url,
    title_key,
    update_base_title,
)

ReadFeed = Callable[[str], bytes]


def _draft(**fields: object) -> AlertDraft:
    base: dict[str, object] = {"source_kind": "rss", "source_name": "feed-a", "title": "T", "text": "Body"}
    base.update(fields)
    return AlertDraft.model_validate(base)


def test_alert_id_shape_and_stability(feed_bytes: ReadFeed) -> None:
    first = parse_feed(feed_bytes("embassy-alerts.rss.xml")).drafts
    again = parse_feed(feed_bytes("embassy-alerts.rss.xml")).drafts
    ids = [alert_id(d) for d in first]
    assert ids == [alert_id(d) for d in again]
    assert len(set(ids)) == 3
    assert all(i.startswith("al_") and len(i) == 23 for i in ids)


def test_same_item_through_two_feeds_gets_the_same_id(feed_bytes: ReadFeed) -> None:
    main = parse_feed(feed_bytes("embassy-alerts.rss.xml"), source_name="embassy-all").drafts[0]
    category = parse_feed(feed_bytes("embassy-alerts.rss.xml"), source_name="embassy-alerts-category").drafts[
        0
    ]
    assert main.source_name != category.source_name
    assert alert_id(main) == alert_id(category)


def test_utm_params_fragment_case_and_slash_do_not_change_identity() -> None:
    a = _draft(url="https://Example.TEST/alerts/rally/?utm_source=rss&utm_medium=feed#top")
    b = _draft(url="https://example.test/alerts/rally", source_name="feed-b")
    assert identity_key(a) == identity_key(b) == "url:https://example.test/alerts/rally"
    assert normalize_url("HTTP://A.test:80/x/?b=2&a=1&utm_campaign=z") == "http://a.test/x?a=1&b=2"


def test_feed_local_guid_falls_back_to_link_and_global_guid_wins() -> None:
    assert not is_globally_unique("12345")
    assert is_globally_unique("tag:example.test,2024:alert-1")
    assert is_globally_unique("urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e")
    local_a = _draft(source_key="12345", url="https://e.test/a")
    local_b = _draft(source_key="12345", url="https://e.test/b", source_name="feed-b")
    assert alert_id(local_a) != alert_id(local_b)  # same local guid, different items
    no_link_a = _draft(source_key="12345")
    no_link_b = _draft(source_key="12345", source_name="feed-b")
    assert alert_id(no_link_a) != alert_id(no_link_b)  # a local guid is scoped to its feed
    tagged_a = _draft(source_key="tag:example.test,2024:1", url="https://e.test/a")
    tagged_b = _draft(source_key="tag:example.test,2024:1", url="https://mirror.test/a", source_name="feed-b")
    assert alert_id(tagged_a) == alert_id(tagged_b)


def test_api_post_without_url_is_identified_by_normalised_content() -> None:
    a = _draft(
        source_kind="api", source_name="api", issuer="Police", title="Bomb  threat", text="Evacuate\nnow"
    )
    b = _draft(
        source_kind="api", source_name="cli", issuer="police", title="bomb threat", text="Evacuate now"
    )
    c = _draft(source_kind="api", source_name="api", issuer="Police", title="Bomb threat", text="All clear")
    assert alert_id(a) == alert_id(b)
    assert alert_id(a) != alert_id(c)


def test_fingerprint_changes_with_the_body_only() -> None:
    a = _draft(source_key="https://e.test/?p=1", text="Avoid the area.")
    same = _draft(source_key="https://e.test/?p=1", text="  avoid   the area. ", source_name="other")
    edited = _draft(source_key="https://e.test/?p=1", text="Avoid the area. Curfew from 8 pm.")
    assert fingerprint(a) == fingerprint(same)
    assert fingerprint(a) != fingerprint(edited)
    assert identity_key(a) == identity_key(edited)


def test_cap_update_takes_the_identity_of_the_original(feed_bytes: ReadFeed) -> None:
    original = parse_cap(feed_bytes("cap-earthquake.xml"))
    update = parse_cap(feed_bytes("cap-earthquake-update.xml"))
    assert identity_key(original) == "cap:alerts@civil-protection.example.test,example.test-2024-0206-0417"
    assert identity_key(update) == identity_key(original)
    assert fingerprint(update) != fingerprint(original)


def test_update_titles() -> None:
    assert update_base_title("Update: Rally Planned Near City Center") == "Rally Planned Near City Center"
    assert update_base_title("UPDATE 2 - Rally") == "Rally"
    assert update_base_title("[Updated] Rally") == "Rally"
    assert update_base_title("Updated guidance for travellers") is None
    original = _draft(title="Rally Planned Near City Center", issuer="Embassy")
    update = _draft(title="Update: Rally planned near city center", issuer="Embassy", source_name="x")
    base = update_base_title(update.title)
    assert base is not None
    assert title_key(update, base) == title_key(original)


def test_to_alert_received_builds_a_valid_event(feed_bytes: ReadFeed) -> None:
    draft = parse_cap(feed_bytes("cap-earthquake.xml"))
    event = to_alert_received(draft, alert_id=alert_id(draft), correlation_id="c1")
    assert event.alert_id == alert_id(draft)
    assert event.cap == draft.cap
    assert event.extra["source_key"] == draft.source_key
    assert event.revision == 1
    assert event.revision_of is None
