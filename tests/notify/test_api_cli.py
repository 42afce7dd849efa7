from __future__ import annotations

import json

import httpx
from fastapi import FastAPI
from typer import Typer
from typer.testing import CliRunner
from vigil_notify.api import build_router
from vigil_notify.cli import register
from vigil_notify.subscriptions import SubscriptionStore

from .helpers import MOSCOW_ID, make_alert

SECRET_URL = "webhook+https://hooks.example/vigil?secret=VERY-SECRET-KEY"
SUB = {
    "id": "anna",
    "name": "Anna in Moscow",
    "owner": "anna@example.com",
    "channels": [SECRET_URL, "console://"],
    "filter": {"places": ["Moscow, RU"], "min_severity": "Moderate"},
}


def client_for(store: SubscriptionStore) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(build_router(store))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_crud_with_masked_secrets(redis) -> None:
    store = SubscriptionStore(redis, refresh_interval_s=0)
    async with client_for(store) as c:
        r = await c.post("/v1/subscriptions", json=SUB)
        assert r.status_code == 201
        assert "VERY-SECRET-KEY" not in r.text
        assert r.json()["channels"][0] == "webhook+https://hooks.example/vigil?secret=****"
        assert (await c.post("/v1/subscriptions", json=SUB)).status_code == 409
        listed = await c.get("/v1/subscriptions")
        assert [s["id"] for s in listed.json()] == ["anna"]
        assert "VERY-SECRET-KEY" not in listed.text
        got = (await c.get("/v1/subscriptions/anna")).json()
        # replace, sending the masked channel back unchanged: the stored secret is kept
        got["name"] = "Anna (renamed)"
        r = await c.put("/v1/subscriptions/anna", json=got)
        assert r.status_code == 200
        stored = await store.get("anna")
        assert stored.name == "Anna (renamed)"
        assert stored.channels[0] == SECRET_URL
        assert (await c.delete("/v1/subscriptions/anna")).status_code == 204
        assert (await c.get("/v1/subscriptions/anna")).status_code == 404
        assert (await c.delete("/v1/subscriptions/anna")).status_code == 404


async def test_422_names_the_field_without_echoing_input(redis) -> None:
    async with client_for(SubscriptionStore(redis)) as c:
        bad = {**SUB, "filter": {"countries": ["Russia"]}, "channels": [SECRET_URL, "nosuch://x"]}
        r = await c.post("/v1/subscriptions", json=bad)
        assert r.status_code == 422
        fields = [d["field"] for d in r.json()["detail"]]
        assert "filter.countries" in fields
        assert "channels" in fields
        assert "VERY-SECRET-KEY" not in r.text
        r = await c.put("/v1/subscriptions/other", json=SUB)
        assert r.status_code == 422
        assert r.json()["detail"][0]["field"] == "id"


async def test_preview_explains_who_would_get_it(redis) -> None:
    store = SubscriptionStore(redis)
    async with client_for(store) as c:
        await c.post("/v1/subscriptions", json=SUB)
        r = await c.post(
            "/v1/subscriptions:preview",
            content=make_alert().model_dump_json(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 200
        (m,) = r.json()["matches"]
        assert m["subscription_id"] == "anna"
        assert m["explanation"].startswith("matched: place Moscow, RU")
        assert "VERY-SECRET-KEY" not in r.text
        r = await c.post(
            "/v1/subscriptions:preview",
            content=make_alert(locations=(MOSCOW_ID,)).model_dump_json(),
            headers={"content-type": "application/json"},
        )
        assert r.json()["matches"] == []
        r = await c.post("/v1/subscriptions:preview", json={"alert": {}})
        assert r.status_code == 422


def test_cli_add_list_show_remove(redis_url) -> None:
    app = Typer()
    register(app)
    runner = CliRunner()
    env = {"REDIS_URL": redis_url}
    r = runner.invoke(
        app,
        [
            "subscriptions",
            "add",
            "--id",
            "cli-1",
            "--name",
            "CLI trip",
            "--channel",
            SECRET_URL,
            "--place",
            "Moscow, RU",
            "--near",
            "55.75,37.62,100",
            "--from",
            "2026-01-01",
            "--until",
            "2027-12-31",
            "--quiet",
            "22:00-07:00@Europe/Moscow",
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert "VERY-SECRET-KEY" not in r.output
    shown = runner.invoke(app, ["subscriptions", "show", "cli-1"], env=env)
    data = json.loads(shown.output)
    assert data["filter"]["near"]["radius_km"] == 100
    assert data["filter"]["quiet_hours"]["tz"] == "Europe/Moscow"
    listed = runner.invoke(app, ["subscriptions", "list"], env=env)
    assert "cli-1\tCLI trip" in listed.output
    assert "VERY-SECRET-KEY" not in listed.output
    bad = runner.invoke(
        app,
        ["subscriptions", "add", "--name", "x", "--channel", "console://", "--country", "Russia"],
        env=env,
    )
    assert bad.exit_code == 2
    assert "filter.countries" in bad.output
    assert runner.invoke(app, ["subscriptions", "remove", "cli-1"], env=env).exit_code == 0
    assert runner.invoke(app, ["subscriptions", "show", "cli-1"], env=env).exit_code == 1


def test_cli_sync_examples(redis_url, examples_dir) -> None:
    app = Typer()
    register(app)
    r = CliRunner().invoke(
        app, ["subscriptions", "sync", str(examples_dir / "subscriptions.yaml")], env={"REDIS_URL": redis_url}
    )
    assert r.exit_code == 0, r.output
    assert "created: anna-moscow-trip" in r.output
