"""The ``vigil`` command. Core commands live here; each service adds its own through the
``vigil.commands`` entry-point group (a ``register(app: typer.Typer)`` function)."""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer

from vigil_shared import streams
from vigil_shared.settings import VigilSettings

app = typer.Typer(
    name="vigil",
    help="Vigil: security warnings in, targeted notifications out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(help="Inspect, replay and purge dead-lettered entries.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
groups_app = typer.Typer(
    help="Add, list and remove consumer groups (downstream consumers).", no_args_is_help=True
)
app.add_typer(groups_app, name="groups")


@app.command()
def run(
    services: Annotated[list[str], typer.Argument(help="ingest, classify, notify, ... or all")],
) -> None:
    """Run one or more services in this process until SIGTERM/SIGINT."""
    from vigil_shared.runtime import run as run_services

    run_services(services)


@app.command()
def demo(
    examples: Annotated[
        str, typer.Option(help="Folder with alerts/*.json and subscriptions.yaml.")
    ] = "examples",
) -> None:
    """Run the whole pipeline locally on the sample alerts and print who was notified and why."""
    from pathlib import Path

    from vigil_shared.demo import DemoError, run_demo

    try:
        code = run_demo(Path(examples))
    except DemoError as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    stuck_after: Annotated[float, typer.Option(help="Pending older than this (s) counts as stuck.")] = 300.0,
    max_lag: Annotated[int, typer.Option(help="A group this many entries behind counts as stuck.")] = 10_000,
) -> None:
    """Streams, consumer groups, lag, pending and dead letters; exit 1 when something is stuck."""
    from vigil_shared.runtime import redis_client
    from vigil_shared.status import as_dict, pipeline_status, problems

    async def go() -> tuple[list[Any], list[str], dict[str, Any]]:
        redis = redis_client(VigilSettings().redis_url)
        try:
            sts = await pipeline_status(redis)
            extra: dict[str, Any] = {}
            for name, fn in _status_extensions().items():
                try:
                    extra[name] = await fn(redis)
                except Exception as exc:
                    extra[name] = {"error": str(exc)}
            return sts, problems(sts, stuck_after_s=stuck_after, max_lag=max_lag), extra
        finally:
            await redis.aclose()

    try:
        sts, found, extra = asyncio.run(go())
    except Exception as exc:
        typer.echo(f"cannot read Redis at REDIS_URL: {exc} (is Redis running? set REDIS_URL)", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps({"streams": as_dict(sts), "problems": found, **extra}, indent=2, default=str))
    else:
        typer.echo(
            f"{'stream':28} {'length':>8}  {'group':12} {'lag':>6} {'pending':>8} {'oldest':>8} "
            f"{'consumers':>9} {'dead':>6}"
        )
        for st in sts:
            if not st.groups:
                typer.echo(f"{st.stream:28} {st.length:>8}  {'-':12}")
            for g in st.groups:
                oldest = f"{g.oldest_pending_age_s:.0f}s" if g.oldest_pending_age_s is not None else "-"
                lag = g.lag if g.lag is not None else "?"
                typer.echo(
                    f"{st.stream:28} {st.length:>8}  {g.name:12} {lag:>6} "
                    f"{g.pending:>8} {oldest:>8} {g.consumers:>9} {g.dead_letters:>6}"
                )
        dead = next((s.length for s in sts if s.stream == streams.DEADLETTER), 0)
        typer.echo(f"dead letters: {dead}")
        for name, data in extra.items():
            typer.echo(f"{name}: {json.dumps(data, default=str)}")
        for p in found:
            typer.echo(f"PROBLEM: {p}", err=True)
    raise typer.Exit(1 if found else 0)


def _status_extensions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ep in entry_points(group="vigil.status"):
        out[ep.name] = ep.load()
    return out


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per line.")] = False,
) -> None:
    """List dead-lettered entries with their cause."""
    from vigil_shared import deadletters

    for rec in asyncio.run(deadletters.list_entries(VigilSettings().redis_url, limit)):
        if as_json:
            typer.echo(json.dumps(rec, default=str))
            continue
        typer.echo(
            f"{rec['id']}  {rec['service']:8} {rec['stream']:26} attempts={rec['attempts']}  "
            f"{rec['error'][:120]}"
        )


@dlq_app.command("show")
def dlq_show(entry_id: str) -> None:
    """Show one dead-letter record in full."""
    from vigil_shared import deadletters

    rec = asyncio.run(deadletters.get_entry(VigilSettings().redis_url, entry_id))
    if rec is None:
        typer.echo(f"no dead letter {entry_id}; `vigil dlq list` shows the ids", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(rec, indent=2, default=str))


@dlq_app.command("replay")
def dlq_replay(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids; none = all.")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the dead-letter records after replaying.")] = False,
) -> None:
    """Re-inject dead-lettered entries into their original stream (after fixing the cause)."""
    from vigil_shared import deadletters

    n = asyncio.run(deadletters.replay(VigilSettings().redis_url, entry_ids or None, keep=keep))
    typer.echo(f"replayed {n} entr{'y' if n == 1 else 'ies'}")


@dlq_app.command("purge")
def dlq_purge(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids; none = all.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete dead-letter records."""
    from vigil_shared import deadletters

    if not entry_ids and not yes and sys.stdin.isatty():
        typer.confirm("Delete ALL dead letters?", abort=True)
    n = asyncio.run(deadletters.purge(VigilSettings().redis_url, entry_ids or None))
    typer.echo(f"purged {n}")


@groups_app.command("add")
def groups_add(
    name: Annotated[str, typer.Argument(help="Group name (the new consumer's name).")],
    stream: Annotated[str, typer.Option(help="Stream to consume.")] = streams.ALERTS_CLASSIFIED,
    start: Annotated[
        str, typer.Option("--from", help="start = every retained entry; now = only new entries.")
    ] = "now",
) -> None:
    """Add a consumer group; other groups (notify, ...) are not affected."""
    from vigil_shared.groups import GroupExists, add_group
    from vigil_shared.runtime import redis_client

    if start not in ("start", "now"):
        typer.echo("--from must be 'start' or 'now'", err=True)
        raise typer.Exit(2)

    async def go() -> str:
        redis = redis_client(VigilSettings().redis_url)
        try:
            return await add_group(redis, stream, name, start)  # type: ignore[arg-type]
        finally:
            await redis.aclose()

    try:
        first = asyncio.run(go())
    except GroupExists as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    where = "the beginning of the retained stream" if start == "start" else f"now (after {first})"
    typer.echo(f"group {name} added to {stream}, reading from {where}")


@groups_app.command("list")
def groups_list(
    stream: Annotated[str | None, typer.Option(help="One stream; default: every Vigil stream.")] = None,
) -> None:
    """Consumer groups per stream with consumers, pending, lag."""
    from vigil_shared.groups import list_groups
    from vigil_shared.runtime import redis_client

    async def go() -> dict[str, list[dict[str, Any]]]:
        redis = redis_client(VigilSettings().redis_url)
        try:
            return {s: await list_groups(redis, s) for s in ([stream] if stream else streams.ALL_STREAMS)}
        finally:
            await redis.aclose()

    for s, groups in asyncio.run(go()).items():
        for g in groups:
            typer.echo(
                f"{s:28} {g['name']:12} consumers={g['consumers']} pending={g['pending']} "
                f"lag={g['lag'] if g['lag'] is not None else '?'} last={g['last_delivered_id']}"
            )


@groups_app.command("remove")
def groups_remove(
    name: str,
    stream: Annotated[str, typer.Option(help="Stream of the group.")] = streams.ALERTS_CLASSIFIED,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Remove a consumer group (its pending entries are forgotten; the stream is untouched)."""
    from vigil_shared.groups import remove_group
    from vigil_shared.runtime import redis_client

    if name in (streams.GROUP_CLASSIFY, streams.GROUP_NOTIFY) and not yes:
        typer.echo(f"{name} is a Vigil service's group; pass --yes if you really mean it", err=True)
        raise typer.Exit(2)

    async def go() -> bool:
        redis = redis_client(VigilSettings().redis_url)
        try:
            return await remove_group(redis, stream, name)
        finally:
            await redis.aclose()

    if not asyncio.run(go()):
        typer.echo(f"no group {name} on {stream}", err=True)
        raise typer.Exit(1)
    typer.echo(f"group {name} removed from {stream}")


@app.command("docs")
def docs_command(
    out: Annotated[str, typer.Option(help="Directory to write into.")] = "docs",
    check: Annotated[bool, typer.Option("--check", help="Only check; exit 1 when the files are stale.")] = False,
) -> None:
    """Write docs/asyncapi.json (every stream and event) and docs/openapi-<service>.json from the code."""
    from pathlib import Path

    from vigil_shared.docs import main as docs_main

    raise typer.Exit(docs_main(Path(out), check=check))


keys_app = typer.Typer(help="API keys for the HTTP APIs (stored hashed; see SECURITY.md).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(
    name: Annotated[str, typer.Option(help="Key name = the source name stamped on what it posts.")],
    role: Annotated[str, typer.Option(help="ingest (post alerts) or admin (subscriptions, and alerts).")] = "ingest",
) -> None:
    """Create an API key: prints the key ONCE (give it to the client) and the line to configure."""
    from vigil_shared.auth import ApiKey, KeyConfigError, Role, hash_key, new_key, parse_entry

    try:
        parse_entry(f"{name}:{role}:{'0' * 64}")
    except KeyConfigError as exc:
        typer.echo(f"cannot create key: {exc}", err=True)
        raise typer.Exit(2) from exc
    key = new_key()
    entry = ApiKey(name, Role(role), hash_key(key)).line()
    typer.echo(f"key (shown once, store it in the client's secret store): {key}", err=True)
    typer.echo(key)
    typer.echo("add this line to VIGIL_API_KEYS or the VIGIL_API_KEYS_FILE file:", err=True)
    typer.echo(entry)


@keys_app.command("hash")
def keys_hash(
    name: Annotated[str, typer.Option(help="Key name.")],
    role: Annotated[str, typer.Option(help="ingest or admin.")] = "ingest",
) -> None:
    """Print the configuration line for an existing key read from standard input."""
    from vigil_shared.auth import KeyConfigError, hash_key, parse_entry

    key = sys.stdin.readline().strip()
    try:
        entry = parse_entry(f"{name}:{role}:{hash_key(key).hex()}")
    except KeyConfigError as exc:
        typer.echo(f"cannot hash key: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(entry.line())


def _register_bench() -> None:
    from vigil_shared.bench import bench_command

    app.command("bench")(bench_command)


_register_bench()


def _load_service_commands() -> None:
    for ep in entry_points(group="vigil.commands"):
        try:
            ep.load()(app)
        except Exception as exc:  # one broken plugin must not take the whole CLI down
            typer.echo(f"warning: commands of {ep.name} not loaded: {exc}", err=True)


def main() -> None:
    if sys.argv[1:2] != ["run"]:  # ``vigil run`` is built in: no other service's commands in a service process
        _load_service_commands()
    app()


if __name__ == "__main__":
    main()
