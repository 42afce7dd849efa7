"""Dedup against a real Redis: first sight, duplicates, revisions, and atomicity across replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis
from vigil_ingest.cap import parse_cap
from vigil_ingest.dedup import dedup_key, register, register_draft
from vigil_ingest.drafts import AlertDraft
from vigil_ingest.feeds import parse_feed
from vigil_ingest.identity import alert_id_for

ReadFeed = Callable[[str], bytes]


async def test_first_duplicate_and_revision(dedup_redis: Redis) -> None:
    first = await register(dedup_redis, "url:https://e.test/a", "fp1", ttl_s=60)
    assert (first.revision, first.is_new, first.is_duplicate, first.revision_of) == (1, True, False, None)
    assert first.alert_id == alert_id_for("url:https://e.test/a")
    again = await register(dedup_redis, "url:https://e.test/a", "fp1", ttl_s=60)
    assert (again.revision, again.is_new, again.is_duplicate) == (1, False, True)
    assert not again.should_publish
    changed = await register(dedup_redis, "url:https://e.test/a", "fp2", ttl_s=60)
    assert (changed.revision, changed.is_new, changed.is_duplicate) == (2, False, False)
    assert changed.revision_of == first.alert_id
    assert changed.alert_id == first.alert_id
    # flipping back to an earlier body is not a new revision
    flip = await register(dedup_redis, "url:https://e.test/a", "fp1", ttl_s=60)
    assert flip.is_duplicate
    assert flip.revision == 1


async def test_state_is_namespaced_and_expires(dedup_redis: Redis) -> None:
    reg = await register(dedup_redis, "content:abc", "fp", ttl_s=1)
    name = dedup_key(reg.alert_id)
    assert name == f"vigil:dedup:{reg.alert_id}"
    ttl = await dedup_redis.ttl(name)
    assert 0 < ttl <= 1
    await asyncio.sleep(1.2)
    assert await dedup_redis.exists(name) == 0
    fresh = await register(dedup_redis, "content:abc", "fp", ttl_s=60)
    assert fresh.is_new


async def test_concurrent_registrations_agree(dedup_redis: Redis, ingest_redis_url: str) -> None:
    # 20 "replicas", each with its own connection, see the same item at the same time
    clients = [Redis.from_url(ingest_redis_url) for _ in range(20)]
    try:
        results = await asyncio.gather(
            *(register(c, "url:https://e.test/same", "fp", ttl_s=60) for c in clients)
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert sum(r.is_new for r in results) == 1
    assert sum(r.is_duplicate for r in results) == 19
    assert {r.alert_id for r in results} == {alert_id_for("url:https://e.test/same")}
    # and 20 different edits at once get 20 distinct revision numbers
    edits = await asyncio.gather(
        *(register(dedup_redis, "url:https://e.test/same", f"edit{i}") for i in range(20))
    )
    assert sorted(r.revision for r in edits) == list(range(2, 22))


async def test_repolled_feed_is_all_duplicates_and_edit_is_a_linked_revision(
    dedup_redis: Redis, feed_bytes: ReadFeed
) -> None:
    raw = feed_bytes("embassy-alerts.rss.xml")
    first = [await register_draft(dedup_redis, d) for d in parse_feed(raw).drafts]
    assert all(r.is_new for r in first)
    second = [await register_draft(dedup_redis, d) for d in parse_feed(raw).drafts]
    assert all(r.is_duplicate for r in second)
    edited = raw.replace(b"Routine services resume on Tuesday.", b"Routine services resume on Wednesday.")
    third = [await register_draft(dedup_redis, d) for d in parse_feed(edited).drafts]
    assert [r.is_duplicate for r in third] == [True, False, True]
    assert third[1].revision == 2
    assert third[1].revision_of == first[1].alert_id


async def test_cap_update_is_a_revision_of_the_original(dedup_redis: Redis, feed_bytes: ReadFeed) -> None:
    original = await register_draft(dedup_redis, parse_cap(feed_bytes("cap-earthquake.xml")))
    update = await register_draft(dedup_redis, parse_cap(feed_bytes("cap-earthquake-update.xml")))
    again = await register_draft(dedup_redis, parse_cap(feed_bytes("cap-earthquake-update.xml")))
    assert original.is_new
    assert (update.revision, update.revision_of, update.alert_id) == (2, original.alert_id, original.alert_id)
    assert again.is_duplicate


async def test_update_title_links_to_the_original_item(dedup_redis: Redis) -> None:
    def item(title: str, url: str, text: str) -> AlertDraft:
        return AlertDraft(
            source_kind="rss", source_name="embassy", issuer="Embassy", title=title, text=text, url=url
        )

    original = await register_draft(
        dedup_redis, item("Rally Planned Near City Center", "https://e.test/rally", "A rally is planned.")
    )
    update = await register_draft(
        dedup_redis,
        item("Update: Rally Planned Near City Center", "https://e.test/rally-update", "The rally was moved."),
    )
    assert update.revision == 2
    assert update.revision_of == original.alert_id
    unrelated = await register_draft(
        dedup_redis, item("Update: Something Else", "https://e.test/other", "Another matter.")
    )
    assert unrelated.is_new
