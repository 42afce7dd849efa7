"""Reliable stream consumption on top of FastStream: the part every consuming service shares.

Guarantees (see README, "Delivery guarantees"):

* **At-least-once with atomic hand-over.** FastStream reads a batch with ``XREADGROUP``; Vigil then
  validates every entry on its own, runs the handler, and writes the handler's output events, any
  dead letters and the ``XACK`` of the consumed entries in **one** ``MULTI``/``EXEC`` transaction.
  Either the results are in the next stream and the input is acknowledged, or neither happened and
  the entry is still pending.
* **No poison pill.** An entry that is not a valid event goes to ``vigil.deadletter`` at once with the
  reason; an entry whose handler raises stays pending and is retried through the claim loop until it
  has been delivered ``max_deliveries`` times, then it is dead-lettered with the last error. One bad
  entry never sinks the rest of its batch.
* **Claiming.** FastStream 0.7 never re-delivers a pending entry, so each replica runs a claim loop
  (``XAUTOCLAIM``) that takes over entries idle longer than ``claim_idle_ms`` — those of a crashed
  replica, or its own failed ones — and removes consumers that are long idle and own nothing.
* **Self-healing.** When the group disappears (``NOGROUP``: Redis restarted without persistence, or
  the stream was deleted) FastStream stops the subscriber; a watchdog recreates the group and
  restarts it, with a back-off, without operator action.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

import structlog
from faststream import Context
from faststream.middlewares import AckPolicy
from faststream.params.no_cast import NoCastField
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.message import RedisBatchStreamMessage
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from vigil_shared import metrics, streams
from vigil_shared.envelope import MalformedEntry, decode_entry, encode_event, fields_to_text
from vigil_shared.events import DeadLetter, Event, InvalidEvent, parse_event
from vigil_shared.settings import VigilSettings

log = structlog.get_logger("vigil.worker")

E = TypeVar("E", bound=Event)
Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Publication:
    """An event a handler wants published, and the stream it goes to."""

    stream: str
    event: Event


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help: the entry is dead-lettered at once."""


Handler = Callable[[E], Awaitable[Sequence[Publication]]]


@dataclass
class WorkerStats:
    consumed: int = 0
    published: int = 0
    failed: int = 0
    deadlettered: int = 0
    claimed: int = 0
    restarts: int = 0
    last_batch_at: float = field(default_factory=time.monotonic)


async def publish_events(
    redis: Redis, publications: Sequence[Publication], maxlen: int, *, ack: tuple[str, str, list[bytes]] | None = None
) -> list[bytes]:
    """Write events (and optionally the XACK of their inputs) in one MULTI/EXEC transaction."""
    encoded = [(p.stream, await encode_event(p.event)) for p in publications]
    async with redis.pipeline(transaction=True) as pipe:
        for stream, fields in encoded:
            pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        if ack is not None and ack[2]:
            pipe.xack(ack[0], ack[1], *ack[2])
        results = await pipe.execute()
    for p in publications:
        metrics.EVENTS_PUBLISHED.labels(stream=p.stream).inc()
    return [r for r in results[: len(encoded)]]


class StreamWorker(Generic[E]):
    """Consumes one stream as one consumer group and hands each valid event to ``handler``."""

    def __init__(
        self,
        *,
        service: str,
        stream: str,
        group: str,
        model: type[E],
        handler: Handler[E],
        settings: VigilSettings,
        concurrency: int = 1,
        description: str | None = None,
    ) -> None:
        self.service = service
        self.stream = stream
        self.group = group
        self.model = model
        self.handler = handler
        self.settings = settings
        self.consumer = settings.consumer_name
        self.concurrency = concurrency
        self.description = description
        self.stats = WorkerStats()
        self.redis: Redis | None = None
        self._subscriber: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._semaphore = asyncio.Semaphore(concurrency)

    # ------------------------------------------------------------------ wiring

    def attach(self, broker: RedisBroker) -> None:
        """Register the FastStream subscriber (reads batches; Vigil acks itself)."""
        model = self.model

        async def _raw_batch_parser(raw: Any, _original: Any) -> RedisBatchStreamMessage:
            # Keep the raw entries: each is validated on its own, so one bad entry cannot fail the batch.
            return RedisBatchStreamMessage(
                raw_message=raw, body=b"", content_type="application/json", consumer=self.redis, group=self.group
            )

        async def _no_decode(_msg: Any, _original: Any) -> list[Any]:
            return []

        async def on_batch(
            body: Annotated[list[model], NoCastField()],  # type: ignore[valid-type]
            message: Annotated[RedisBatchStreamMessage, Context("message")],
        ) -> None:
            raw = message.raw_message
            entries = list(zip(raw["message_ids"], raw["data"], strict=True))
            await self.process(entries)

        # real objects, not strings: FastStream resolves them at registration (and documents the model)
        on_batch.__annotations__ = {
            "body": Annotated[list[model], NoCastField()],  # type: ignore[valid-type]
            "message": Annotated[RedisBatchStreamMessage, Context("message")],
            "return": None,
        }
        on_batch.__doc__ = self.description or f"{self.service} consumes {model.__name__} events."
        self._subscriber = broker.subscriber(
            stream=StreamSub(
                self.stream,
                group=self.group,
                consumer=self.consumer,
                batch=True,
                max_records=self.settings.batch_size,
                polling_interval=self.settings.block_ms,
            ),
            parser=_raw_batch_parser,
            decoder=_no_decode,
            ack_policy=AckPolicy.MANUAL,
            title=f"{self.stream}:{self.group}",
        )
        self._subscriber(on_batch)

    async def prepare(self, redis: Redis) -> None:
        """Before the broker starts: create the group at the start of the stream (FastStream would
        create it at ``$`` and miss entries written before the first replica started)."""
        self.redis = redis
        await self.ensure_group()

    async def start_background(self, redis: Redis) -> None:
        self.redis = redis
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name=f"claim:{self.stream}:{self.group}"),
            asyncio.create_task(self._watchdog(), name=f"watchdog:{self.stream}:{self.group}"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def healthy(self) -> tuple[bool, str]:
        """Liveness: the consume loop and the helper loops are alive (a stopped loop is restarted)."""
        for t in self._tasks:
            if t.done():
                return False, f"{t.get_name()} died"
        return True, "ok"

    @property
    def subscriber_running(self) -> bool:
        return bool(self._subscriber is not None and getattr(self._subscriber, "running", False))

    # ------------------------------------------------------------------ the core

    async def process(self, entries: Sequence[Entry], delivery_counts: dict[bytes, int] | None = None) -> None:
        """Validate, handle and hand over a batch of raw entries (see module docstring)."""
        assert self.redis is not None, "start_background() first"
        started = time.perf_counter()
        to_ack: list[bytes] = []
        outputs: list[Publication] = []
        dead: list[Publication] = []
        jobs: list[tuple[bytes, dict[bytes, bytes], E]] = []

        for entry_id, fields in entries:
            if fields is None:  # deleted (trimmed) while pending
                to_ack.append(entry_id)
                continue
            try:
                body, headers = decode_entry(fields)
                event = parse_event(self.model, body)
            except (MalformedEntry, InvalidEvent) as exc:
                dead.append(self._dead_letter(entry_id, fields, str(exc), 1, correlation_id=None))
                to_ack.append(entry_id)
                continue
            jobs.append((entry_id, fields, event))

        async def run(entry_id: bytes, fields: dict[bytes, bytes], event: E) -> None:
            bound = {"correlation_id": event.correlation_id}
            alert_id = getattr(event, "alert_id", None) or getattr(getattr(event, "alert", None), "alert_id", None)
            if alert_id:
                bound["alert_id"] = alert_id
            with structlog.contextvars.bound_contextvars(**bound):
                try:
                    async with self._semaphore:
                        produced = await self.handler(event)
                except PermanentError as exc:
                    log.warning("entry dead-lettered", stream=self.stream, entry_id=entry_id.decode(), error=str(exc))
                    dead.append(self._dead_letter(entry_id, fields, str(exc), 1, event.correlation_id))
                    to_ack.append(entry_id)
                    return
                except Exception as exc:
                    self.stats.failed += 1
                    metrics.EVENTS_FAILED.labels(stream=self.stream, group=self.group).inc()
                    attempts = (delivery_counts or {}).get(entry_id, 1)
                    if attempts >= self.settings.max_deliveries:
                        error = f"handler failed {attempts} times, last: {type(exc).__name__}: {exc}"
                        log.error("entry dead-lettered", stream=self.stream, entry_id=entry_id.decode(), error=error)
                        dead.append(self._dead_letter(entry_id, fields, error, attempts, event.correlation_id))
                        to_ack.append(entry_id)
                    else:
                        log.warning(
                            "handler failed; entry stays pending and will be retried",
                            stream=self.stream, entry_id=entry_id.decode(), attempt=attempts,
                            error=f"{type(exc).__name__}: {exc}",
                        )
                    return
            outputs.extend(produced)
            to_ack.append(entry_id)

        if self.concurrency == 1:
            for job in jobs:
                await run(*job)
        else:
            await asyncio.gather(*(run(*job) for job in jobs))

        await publish_events(
            self.redis, [*outputs, *dead], self.settings.stream_maxlen, ack=(self.stream, self.group, to_ack)
        )
        self.stats.consumed += len(entries)
        self.stats.published += len(outputs)
        self.stats.deadlettered += len(dead)
        self.stats.last_batch_at = time.monotonic()
        metrics.EVENTS_CONSUMED.labels(stream=self.stream, group=self.group).inc(len(entries))
        if dead:
            metrics.EVENTS_DEADLETTERED.labels(stream=self.stream, group=self.group).inc(len(dead))
        metrics.BATCH_SECONDS.labels(stream=self.stream, group=self.group).observe(time.perf_counter() - started)

    def _dead_letter(
        self, entry_id: bytes, fields: dict[bytes, bytes], error: str, attempts: int, correlation_id: str | None
    ) -> Publication:
        return Publication(
            streams.DEADLETTER,
            DeadLetter(
                correlation_id=correlation_id or f"deadletter-{entry_id.decode()}",
                producer=self.service,
                stream=self.stream,
                group=self.group,
                service=self.service,
                entry_id=entry_id.decode(),
                fields=fields_to_text(fields),
                error=error[:4000],
                attempts=attempts,
            ),
        )

    # ------------------------------------------------------------------ claiming

    async def claim_once(self) -> int:
        """Take over entries idle longer than ``claim_idle_ms`` and process them; returns how many."""
        assert self.redis is not None
        start: bytes | str = "0-0"
        total = 0
        while True:
            reply = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer,
                min_idle_time=self.settings.claim_idle_ms, start_id=start, count=self.settings.batch_size,
            )
            next_id, claimed = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:
                log.warning("pending entries were trimmed before processing", stream=self.stream, count=len(deleted))
            claimed = [(eid, f) for eid, f in claimed if eid is not None]
            if claimed:
                counts = await self._delivery_counts([eid for eid, _ in claimed])
                self.stats.claimed += len(claimed)
                metrics.EVENTS_CLAIMED.labels(stream=self.stream, group=self.group).inc(len(claimed))
                log.info("claimed pending entries", stream=self.stream, count=len(claimed))
                await self.process(claimed, counts)
                total += len(claimed)
            if next_id in (b"0-0", "0-0"):
                return total
            start = next_id

    async def _delivery_counts(self, ids: list[bytes]) -> dict[bytes, int]:
        assert self.redis is not None
        rows = await self.redis.xpending_range(
            self.stream, self.group, min=ids[0], max=ids[-1], count=len(ids) * 4 + 10, consumername=self.consumer
        )
        return {r["message_id"]: int(r["times_delivered"]) for r in rows}

    async def remove_idle_consumers(self) -> list[str]:
        """Drop consumers of this group that own no pending entry and were idle for a long time."""
        assert self.redis is not None
        removed: list[str] = []
        limit_ms = self.settings.consumer_idle_remove_s * 1000
        for c in await self.redis.xinfo_consumers(self.stream, self.group):
            name = c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
            if name != self.consumer and int(c["pending"]) == 0 and int(c["idle"]) > limit_ms:
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)
                removed.append(name)
        if removed:
            log.info("removed idle consumers", stream=self.stream, group=self.group, consumers=removed)
        return removed

    async def _claim_loop(self) -> None:
        backoff = self.settings.claim_interval_s
        while not self._stopping:
            await asyncio.sleep(backoff)
            try:
                await self.claim_once()
                await self.remove_idle_consumers()
                backoff = self.settings.claim_interval_s
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    log.error("claim loop error", stream=self.stream, error=str(exc))
                backoff = min(backoff * 2, 30.0)
            except (RedisError, OSError) as exc:
                log.warning("claim loop cannot reach Redis; retrying", stream=self.stream, error=str(exc))
                backoff = min(backoff * 2, 30.0)
            except Exception:
                log.exception("claim loop error", stream=self.stream)
                backoff = min(backoff * 2, 30.0)

    # ------------------------------------------------------------------ self-healing

    async def ensure_group(self) -> None:
        assert self.redis is not None
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("consumer group created", stream=self.stream, group=self.group)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _watchdog(self) -> None:
        delay = 1.0
        while not self._stopping:
            await asyncio.sleep(delay)
            if self._stopping or self.subscriber_running:
                delay = 1.0
                continue
            try:
                await self.ensure_group()
                await self._subscriber.start()
                self.stats.restarts += 1
                log.warning("consume loop restarted", stream=self.stream, group=self.group)
                delay = 1.0
            except Exception as exc:
                delay = min(delay * 2, 30.0)
                log.warning("consume loop restart failed; will retry", stream=self.stream, error=str(exc), retry_in_s=delay)
