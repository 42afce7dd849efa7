"""``vigil subscriptions add|list|show|remove|sync`` — talks to Redis directly.

The commands use ``REDIS_URL`` (``--redis-url``; default ``redis://localhost:6379/0``), the same
store the notify replicas read, so a change is live on every replica within
``VIGIL_NOTIFY_SUBSCRIPTIONS_REFRESH_S``; no notify HTTP endpoint is needed. Output never shows
channel secrets.

Examples::

    vigil subscriptions add --id moscow-trip --name "Moscow trip" --owner ann@example.com \\
        --channel 'mailtos://ann:PASSWORD@mail.example.com?to=ann@example.com' \\
        --place "Moscow, RU" --from 2026-12-01 --until 2027-01-15 --min-severity Moderate
    vigil subscriptions add --name "Near Moscow" --channel console:// --near 55.75,37.62,100
    vigil subscriptions sync services/notify/examples/subscriptions.yaml --prune
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from vigil_notify.subscriptions import SubscriptionError, SubscriptionStore, parse_subscription

T = TypeVar("T")

RedisUrl = Annotated[str | None, typer.Option("--redis-url", help="Redis URL (default: $REDIS_URL)")]


def _redis_url(value: str | None) -> str:
    return value or os.environ.get("REDIS_URL", "redis://localhost:6379/0")


def _run(url: str | None, fn: Callable[[SubscriptionStore], Awaitable[T]]) -> T:
    async def main() -> T:
        from redis.asyncio import Redis

        client = Redis.from_url(_redis_url(url))
        try:
            return await fn(SubscriptionStore(client))
        finally:
            await client.aclose()

    return asyncio.run(main())


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def build_app() -> typer.Typer:
    app = typer.Typer(help="Manage notification subscriptions (stored in Redis).", no_args_is_help=True)

    @app.command("add")
    def add(
        name: Annotated[str, typer.Option(help="Human name of the subscription")],
        channel: Annotated[list[str], typer.Option(help="Channel URL (repeatable)")],
        sub_id: Annotated[str | None, typer.Option("--id", help="Id (default: random)")] = None,
        owner: Annotated[str, typer.Option(help="Owner contact")] = "",
        country: Annotated[list[str] | None, typer.Option(help="ISO2 country (repeatable)")] = None,
        place: Annotated[list[str] | None, typer.Option(help="'Name', 'Name, CC' or geonameid")] = None,
        near: Annotated[str | None, typer.Option(help="LAT,LON,RADIUS_KM")] = None,
        from_: Annotated[str | None, typer.Option("--from", help="Active from (YYYY-MM-DD)")] = None,
        until: Annotated[str | None, typer.Option(help="Active until (YYYY-MM-DD)")] = None,
        threat: Annotated[list[str] | None, typer.Option(help="Threat type (repeatable)")] = None,
        target: Annotated[list[str] | None, typer.Option(help="Target type (repeatable)")] = None,
        min_severity: Annotated[str, typer.Option(help="Minimum CAP severity")] = "Unknown",
        min_urgency: Annotated[str, typer.Option(help="Minimum CAP urgency")] = "Unknown",
        include_non_threats: Annotated[bool, typer.Option(help="Also routine consular messages")] = False,
        quiet: Annotated[str | None, typer.Option(help="Quiet hours 'HH:MM-HH:MM@Area/City'")] = None,
        replace: Annotated[bool, typer.Option(help="Overwrite an existing id")] = False,
        redis_url: RedisUrl = None,
    ) -> None:
        """Create a subscription."""
        filt: dict[str, Any] = {
            "countries": country or [],
            "places": place or [],
            "threat_types": threat or [],
            "target_types": target or [],
            "min_severity": min_severity,
            "min_urgency": min_urgency,
            "include_non_threats": include_non_threats,
        }
        if near:
            try:
                lat, lon, radius = (float(x) for x in near.split(","))
            except ValueError:
                raise typer.BadParameter("expected LAT,LON,RADIUS_KM", param_hint="--near") from None
            filt["near"] = {"lat": lat, "lon": lon, "radius_km": radius}
        if from_ or until:
            filt["active"] = {"from": from_, "until": until}
        if quiet:
            hours, _, tz = quiet.partition("@")
            start, _, end = hours.partition("-")
            filt["quiet_hours"] = {"start": start, "end": end, "tz": tz or "UTC"}
        data: dict[str, Any] = {"name": name, "owner": owner, "channels": channel, "filter": filt}
        if sub_id:
            data["id"] = sub_id
        try:
            sub = parse_subscription(data)
        except SubscriptionError as exc:
            for p in exc.problems:
                typer.echo(f"error: {p['field']}: {p['msg']}", err=True)
            raise typer.Exit(2) from None

        async def save(store: SubscriptionStore) -> bool:
            if replace:
                await store.put(sub)
                return True
            try:
                await store.create(sub)
            except KeyError:
                return False
            return True

        if not _run(redis_url, save):
            typer.echo(f"error: subscription {sub.id!r} exists (use --replace)", err=True)
            raise typer.Exit(1)
        _echo(sub.masked())

    @app.command("list")
    def list_(redis_url: RedisUrl = None) -> None:
        """List subscriptions (id, name, channels masked)."""
        subs = _run(redis_url, lambda s: s.list())
        for sub in subs:
            data = sub.masked()
            state = "" if sub.enabled else " (disabled)"
            typer.echo(f"{sub.id}\t{sub.name}{state}\t{', '.join(data['channels'])}")
        if not subs:
            typer.echo("no subscriptions")

    @app.command("show")
    def show(sub_id: str, redis_url: RedisUrl = None) -> None:
        """Show one subscription as JSON (channels masked)."""
        sub = _run(redis_url, lambda s: s.get(sub_id))
        if sub is None:
            typer.echo(f"error: no subscription {sub_id!r}", err=True)
            raise typer.Exit(1)
        _echo(sub.masked())

    @app.command("remove")
    def remove(sub_id: str, redis_url: RedisUrl = None) -> None:
        """Delete a subscription."""
        if not _run(redis_url, lambda s: s.delete(sub_id)):
            typer.echo(f"error: no subscription {sub_id!r}", err=True)
            raise typer.Exit(1)
        typer.echo(f"removed {sub_id}")

    @app.command("sync")
    def sync(
        path: str,
        prune: Annotated[
            bool, typer.Option(help="Delete subscriptions this file managed but no longer lists")
        ] = False,
        redis_url: RedisUrl = None,
    ) -> None:
        """Upsert the subscriptions of a YAML file (GitOps)."""
        try:
            result = _run(redis_url, lambda s: s.load_yaml(path, prune=prune))
        except SubscriptionError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for label, ids in (("created", result.created), ("updated", result.updated),
                           ("unchanged", result.unchanged), ("pruned", result.pruned)):  # fmt: skip
            typer.echo(f"{label}: {', '.join(ids) if ids else '-'}")

    return app


def compile_command() -> None:
    """Compile notify's hot modules (matching, rendering) with mypyc (needs mypy and a C compiler):
    later processes use the build while the source is unchanged (VIGIL_NOTIFY_NATIVE=0: never)."""
    from vigil_notify import native

    target = native.build()
    typer.echo(str(target))


def register(app: typer.Typer) -> None:
    """Entry point ``vigil.commands``: adds ``vigil subscriptions ...`` and ``vigil notify-compile``
    to the ``vigil`` CLI."""
    app.add_typer(build_app(), name="subscriptions")
    app.command("notify-compile")(compile_command)
