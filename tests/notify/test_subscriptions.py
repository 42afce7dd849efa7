from __future__ import annotations

import pytest
from vigil_notify.matching import match
from vigil_notify.subscriptions import (
    Subscription,
    SubscriptionError,
    SubscriptionStore,
    parse_subscription,
)

from .helpers import ISTANBUL, MOSCOW, NOW, SPB, make_alert, make_sub


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x", "channels": ["console://"], "filter": {"countries": ["Russia"]}}, "filter.countries"),
        (
            {"name": "x", "channels": ["console://"], "filter": {"threat_types": ["aliens"]}},
            "filter.threat_types.0",
        ),
        (
            {"name": "x", "channels": ["console://"], "filter": {"target_types": ["malls"]}},
            "filter.target_types.0",
        ),
        (
            {"name": "x", "channels": ["console://"], "filter": {"min_severity": "Huge"}},
            "filter.min_severity",
        ),
        (
            {
                "name": "x",
                "channels": ["console://"],
                "filter": {"near": {"lat": 95, "lon": 0, "radius_km": 5}},
            },
            "filter.near.lat",
        ),
        ({"name": "x", "channels": ["nosuch://x"]}, "channels"),
        ({"name": "x", "channels": []}, "channels"),
        (
            {
                "name": "x",
                "channels": ["console://"],
                "filter": {"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Mars/Olympus"}},
            },
            "filter.quiet_hours.tz",
        ),
        (
            {
                "name": "x",
                "channels": ["console://"],
                "filter": {"active": {"from": "2027-01-01", "until": "2026-01-01"}},
            },
            "filter.active",
        ),
        ({"name": "x", "channels": ["console://"], "colour": "red"}, "colour"),
    ],
)
def test_validation_errors_name_the_field(data, field) -> None:
    with pytest.raises(SubscriptionError) as info:
        parse_subscription(data)
    assert field in [p["field"] for p in info.value.problems]


def test_validation_error_does_not_echo_secrets() -> None:
    with pytest.raises(SubscriptionError) as info:
        parse_subscription(
            {
                "name": "x",
                "channels": ["webhook+https://h.example/p?secret=TOPSECRET", "nosuch://"],
                "filter": {"countries": ["xx1"]},
            }
        )
    assert "TOPSECRET" not in str(info.value)
    assert "TOPSECRET" not in repr(info.value.problems)


async def test_store_crud_and_version(redis) -> None:
    store = SubscriptionStore(redis, refresh_interval_s=0)
    v0 = await store.version()
    sub = make_sub("a", places=["Moscow"])
    assert await store.put(sub) is True
    assert await store.get("a") == sub
    assert await store.version() == v0 + 1
    with pytest.raises(KeyError):
        await store.create(sub)
    assert [s.id for s in await store.list()] == ["a"]
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.get("a") is None


async def test_cached_index_rebuilt_once_per_version(redis) -> None:
    reader = SubscriptionStore(redis, refresh_interval_s=0)
    writer = SubscriptionStore(redis)
    first = await reader.index()
    assert len(first) == 0
    assert await reader.index() is first  # nothing changed: same index object
    await writer.put(make_sub("desk"))
    second = await reader.index()
    assert second is not first
    assert [m.subscription.id for m in match(make_alert(), second, NOW)] == ["desk"]


async def test_refresh_interval_bounds_version_checks(redis) -> None:
    reader = SubscriptionStore(redis, refresh_interval_s=3600)
    await reader.index()
    await SubscriptionStore(redis).put(make_sub("desk"))
    assert len(await reader.index()) == 0  # cached within the interval
    assert len(await reader.index(force=True)) == 1


async def test_load_yaml_upserts_and_prunes_only_its_own(redis, tmp_path) -> None:
    store = SubscriptionStore(redis)
    await store.put(make_sub("api-made"))
    f = tmp_path / "subs.yaml"
    f.write_text(
        "subscriptions:\n"
        "  - {id: one, name: One, channels: ['console://'], filter: {countries: [RU]}}\n"
        "  - {id: two, name: Two, channels: ['console://']}\n"
    )
    r1 = await store.load_yaml(f)
    assert (r1.created, r1.updated) == (("one", "two"), ())
    assert (await store.get("one")).managed_by == "file:subs.yaml"
    f.write_text(
        "subscriptions:\n"
        "  - {id: one, name: One renamed, channels: ['console://'], filter: {countries: [RU]}}\n"
    )
    r2 = await store.load_yaml(f, prune=True)
    assert (r2.updated, r2.pruned) == (("one",), ("two",))
    assert {s.id for s in await store.list()} == {"api-made", "one"}
    r3 = await store.load_yaml(f, prune=True)
    assert r3.unchanged == ("one",)


async def test_load_yaml_invalid_entry_names_it_and_writes_nothing(redis, tmp_path) -> None:
    store = SubscriptionStore(redis)
    f = tmp_path / "bad.yaml"
    f.write_text(
        "subscriptions:\n"
        "  - {id: ok, name: OK, channels: ['console://']}\n"
        "  - {id: bad, name: Bad, channels: ['console://'], filter: {min_severity: Huge}}\n"
    )
    with pytest.raises(SubscriptionError, match=r"subscriptions\.1.*filter\.min_severity"):
        await store.load_yaml(f)
    assert await store.list() == []


async def test_examples_file_who_gets_what(redis, examples_dir) -> None:
    store = SubscriptionStore(redis)
    result = await store.load_yaml(examples_dir / "subscriptions.yaml")
    assert len(result.created) == 6
    index = await store.index(force=True)

    def who(alert) -> set[str]:
        return {m.subscription.id for m in match(alert, index, NOW)}

    assert who(make_alert(locations=(MOSCOW,))) == {
        "anna-moscow-trip",
        "moscow-region-100km",
        "security-desk",
    }
    assert who(make_alert(locations=(SPB,))) == {"spb-office", "security-desk"}
    assert who(make_alert(locations=(ISTANBUL,), targets=("hotels",))) == {
        "istanbul-business",
        "security-desk",
    }
    quake = make_alert(locations=(ISTANBUL,), threats=("natural_disaster",), targets=())
    assert who(quake) == {"natural-disasters", "security-desk"}
    notice = make_alert(locations=(MOSCOW,), is_threat=False, threats=(), targets=(), severity="Minor")
    assert who(notice) == {"security-desk"}


def test_subscription_json_roundtrip() -> None:
    sub = make_sub(
        "r",
        places=["Moscow, RU", 524901],
        near={"lat": 1, "lon": 2, "radius_km": 3},
        active={"from": "2026-01-01"},
        quiet_hours={"start": "22:00", "end": "06:00", "tz": "UTC"},
    )
    assert Subscription.model_validate_json(sub.model_dump_json()) == sub
