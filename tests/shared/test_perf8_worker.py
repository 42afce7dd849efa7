"""The stream worker's short batch path (perf8): :meth:`StreamWorker._process` with every entry valid
and every outcome a list or tuple of publications gathers the outputs straight into the commit, and
the commit packs its commands itself (:func:`vigil_shared.worker._command`). Compared here with what
they replace: the per-entry path (:meth:`StreamWorker._settle_entries` then ``_commit_settled``,
which commits through ``commit_encoded``) on the same random batches against a real Redis, both
commit ways, and redis-py's own packer on real and random arguments."""

from __future__ import annotations

import gc
import random
import time
import weakref
from collections.abc import Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from test_worker import alert
from vigil_shared import worker
from vigil_shared.envelope import DATA_FIELD, encode_data
from vigil_shared.events import AlertReceived
from vigil_shared.settings import VigilSettings
from vigil_shared.streams import read_entries
from vigil_shared.worker import PermanentError, Publication, StreamWorker, publish_events

IN = "perf8.in"

Outcome = Sequence[Publication] | BaseException


@pytest.fixture(params=["script", "multi"])
def commit_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both commit ways: the size from which a batch is committed by a transaction set to never or always."""
    monkeypatch.setattr(worker, "_MULTI_FROM", 10**9 if request.param == "script" else 0)
    monkeypatch.setattr(worker, "_MULTI_MIN_BYTES", 0)
    return str(request.param)


def python_packed(*args: Any) -> bytes:
    """redis-py's own (pure Python) packing of a command."""
    return b"".join(Connection().pack_command(*args))


def test_command_packs_like_redis_py_on_random_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(8)
    # a small cache of headers, so lengths beyond it take the uncached branch too
    monkeypatch.setattr(worker, "_HEADERS_KEPT", 50)

    def arg() -> bytes:
        size = rng.choice((0, 1, 2, 9, 10, 99, 100, 6000, 6001, rng.randrange(20_000)))
        return bytes(rng.getrandbits(8) for _ in range(size))

    for _ in range(300):
        # the first argument is a command's name (redis-py splits a name of several words)
        parts = [[rng.choice((b"EVALSHA", b"EVAL", b"XADD"))] + [arg() for _ in range(rng.randrange(0, 6))]]
        parts += [[arg() for _ in range(rng.randrange(0, 6))] for _ in range(rng.randrange(0, 3))]
        flat = [a for p in parts for a in p]
        assert b"".join(worker._command(*parts)) == python_packed(*flat)


async def test_the_commit_sends_what_redis_py_would_send(redis: Redis, commit_way: str) -> None:
    """The commit's packed commands (EVALSHA of the script, or MULTI, the XADDs, EVAL and EXEC) are
    byte for byte redis-py's packing of the same commands."""
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(4)])
    await redis.xgroup_create(IN, "g", id="0")
    ids = [eid for eid, _ in read_entries(await redis.xreadgroup("g", "c", {IN: ">"}, count=10))]
    sent: list[bytes] = []
    real_round_trip = worker._round_trip

    async def recording(client: Redis, packed: list[bytes], skip: int) -> Any:
        sent.append(b"".join(packed))
        return await real_round_trip(client, packed, skip)

    nine = alert(9)
    outcomes = [
        [Publication("perf8.o1", None, b"x" * 1500)],
        [],
        [Publication("perf8.o2", nine), Publication("perf8.o1", None, b"\x00\r\n$5\r\n")],
        [Publication("perf8.o1", None, b"")],
    ]
    outputs = worker._gather(IN, outcomes)
    keys, layout, datas = outputs
    assert keys == [IN, "perf8.o1", "perf8.o2"]
    assert datas == [b"x" * 1500, encode_data(nine), b"\x00\r\n$5\r\n", b""]
    argv = ["g", "c", 7, layout, ids[0], ids[-1], len(ids), *ids]
    worker._round_trip = recording  # type: ignore[assignment]
    try:
        fenced, published = await worker._commit(redis, IN, "g", "c", ids, outputs, 7)
    finally:
        worker._round_trip = real_round_trip  # type: ignore[assignment]
    assert (fenced, published) == (set(), 4)
    if commit_way == "script":
        # (sent again after loading the script if the server did not know it yet)
        assert sent[0] == python_packed("EVALSHA", worker._COMMIT_SHA, len(keys), *keys, *argv, *datas)
        assert sent[1:] in ([], sent[:1])
    else:
        names = ["perf8.o1", "perf8.o2", "perf8.o1", "perf8.o1"]
        expected = python_packed("MULTI") + b"".join(
            python_packed("XADD", name, "*", DATA_FIELD, data) for name, data in zip(names, datas, strict=True)
        )
        expected += python_packed("EVAL", worker._COMMIT_MULTI_LUA, len(keys), *keys, *argv) + python_packed("EXEC")
        assert sent == [expected]
    assert [f[DATA_FIELD] for _, f in await redis.xrange("perf8.o1")] == [datas[0], datas[2], datas[3]]
    assert [f[DATA_FIELD] for _, f in await redis.xrange("perf8.o2")] == [datas[1]]


def reference_layout(stream: str, outcomes: Sequence[Sequence[Publication]]) -> tuple[list[str], bytes]:
    """The layout as the commit scripts read it, written out plainly."""
    keys = [stream]
    out = b""
    for pubs in outcomes:
        out += len(pubs).to_bytes(2)
        for p in pubs:
            if p.stream not in keys:
                keys.append(p.stream)
            out += (keys.index(p.stream) + 1).to_bytes(2)
    return keys, out


def test_gather_matches_the_plain_layout_on_random_outcomes() -> None:
    rng = random.Random(88)
    for _ in range(200):
        outcomes = [
            [
                Publication(f"s{rng.randrange(4)}", None, b"d%d" % rng.randrange(99))
                for _ in range(rng.choice((0, 1, 1, 3, 300)))
            ]
            for _ in range(rng.randrange(1, 30))
        ]
        keys, layout, datas = worker._gather("in", outcomes)
        assert (keys, layout) == reference_layout("in", outcomes)
        assert datas == [p.data for pubs in outcomes for p in pubs]
        assert worker._entry_keys(layout) == [[keys.index(p.stream) + 1 for p in pubs] for pubs in outcomes]


class Batch:
    """One random batch, handled the same way by two workers (groups) of the same input stream."""

    def __init__(self, seed: int, kind: str) -> None:
        self.rng = random.Random(seed)
        self.kind = kind
        self.calls = 0

    def handler(self, prefix: str, redis: Redis, group: str, fence: list[bytes]) -> Any:
        async def handle(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
            self.calls += 1
            if fence:  # claimed by another consumer while the handler runs: fenced
                await redis.xclaim(IN, group, "rescuer", min_idle_time=0, message_ids=fence)
            out: list[Outcome] = []
            for e in events:
                rng = random.Random(e.alert_id)  # the same choices for both workers
                n = rng.choice((0, 1, 1, 1, 2, 3, 4))
                pubs = []
                for k in range(n):
                    stream = f"{prefix}.out" if rng.random() < 0.8 else f"{prefix}.out2"
                    made = e.model_copy(update={"title": f"{e.title}-{k}"})
                    data = encode_data(made) if rng.random() < 0.5 else None
                    if self.kind == "unencodable" and rng.random() < 0.1:
                        made = e.model_copy(update={"title": object()})  # cannot be serialised
                        data = None
                    pubs.append(Publication(stream, made, data))
                if self.kind == "failed" and rng.random() < 0.15:
                    out.append(PermanentError("no") if rng.random() < 0.5 else RuntimeError("again"))
                else:
                    out.append(pubs if rng.random() < 0.5 else tuple(pubs))
            return out

        return handle


async def run_both(redis: Redis, redis_url: str, seed: int, kind: str) -> None:
    rng = random.Random(seed)
    n = rng.randrange(1, 60)
    await publish_events(redis, [Publication(IN, alert(seed * 1000 + i, "x" * rng.randrange(3000))) for i in range(n)])
    if kind == "invalid":
        await redis.xadd(IN, {"not_data": "x"})
        await publish_events(redis, [Publication(IN, alert(seed * 1000 + n + 1))])
    batch = Batch(seed, kind)
    results = []
    for group, prefix in (("short", "perf8.a"), ("entries", "perf8.b")):
        client = Redis.from_url(redis_url)
        settings = VigilSettings(redis_url=redis_url, consumer_name="c1", retention_interval_s=0, max_deliveries=2)
        await client.xgroup_create(IN, group, id="0", mkstream=True)
        entries = read_entries(await client.xreadgroup(group, "c1", {IN: ">"}, count=1000))
        fence = [eid for i, (eid, _) in enumerate(entries) if random.Random(seed + i).random() < 0.1]
        w = StreamWorker(
            service="t",
            stream=IN,
            group=group,
            model=AlertReceived,
            batch_handler=batch.handler(prefix, client, group, fence),
            settings=settings,
        )
        w.redis = client
        ids, fields = [e for e, _ in entries], [f for _, f in entries]
        if group == "short":
            await w.process(entries)
        else:  # the per-entry path the short one replaces
            settled = await w._settle_entries(ids, fields, None)
            await w._commit_settled(ids, settled, time.perf_counter())
        rows = await client.xpending_range(IN, group, min="-", max="+", count=10_000)
        outs = [[f[DATA_FIELD] for _, f in await client.xrange(f"{prefix}.{s}")] for s in ("out", "out2")]
        results.append((outs, sorted((r["message_id"], r["consumer"]) for r in rows), w.stats))
        await client.aclose()
    (outs_a, pending_a, stats_a), (outs_b, pending_b, stats_b) = results
    assert outs_a == outs_b
    assert pending_a == pending_b
    for name in ("consumed", "published", "failed", "deadlettered", "fenced"):
        assert getattr(stats_a, name) == getattr(stats_b, name), name
    assert batch.calls == 2  # the handler ran once per worker, whatever path the batch took


@pytest.mark.parametrize("kind", ["ok", "invalid", "failed", "unencodable"])
async def test_the_short_path_commits_what_the_per_entry_path_commits(
    redis: Redis, redis_url: str, commit_way: str, kind: str
) -> None:
    for seed in range(1, 7):
        await redis.flushdb()
        await run_both(redis, redis_url, seed, kind)


async def test_the_short_path_releases_the_batch_before_the_commit(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[weakref.ref[Any]] = []

    async def fan_out(events: Sequence[AlertReceived]) -> Sequence[Outcome]:
        out: list[Outcome] = []
        for e in events:
            made.append(weakref.ref(e))
            pubs = [Publication("perf8.out", e.model_copy(), None), Publication("perf8.out", None, b"x")]
            made.append(weakref.ref(pubs[0].event))  # (a publication keeps its event alive)
            out.append(pubs)
        return out

    alive_at_commit: list[int] = []
    real_commit = worker._commit

    async def watching(*args: Any, **kwargs: Any) -> tuple[set[bytes], int]:
        gc.collect()
        alive_at_commit.append(sum(r() is not None for r in made))
        return await real_commit(*args, **kwargs)

    monkeypatch.setattr(worker, "_commit", watching)
    await publish_events(redis, [Publication(IN, alert(i)) for i in range(5)])
    settings = VigilSettings(redis_url=redis_url, consumer_name="c1", retention_interval_s=0)
    w = StreamWorker(service="t", stream=IN, group="g", model=AlertReceived, batch_handler=fan_out, settings=settings)
    await w.prepare(redis)
    await w.process(read_entries(await redis.xreadgroup("g", "c1", {IN: ">"}, count=10)))
    assert alive_at_commit == [0]
    assert len(made) == 10
    assert (w.stats.consumed, w.stats.published) == (5, 10)
    assert await redis.xlen("perf8.out") == 10
