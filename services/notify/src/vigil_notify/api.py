"""HTTP API for subscriptions: ``/v1/subscriptions`` CRUD and ``POST /v1/subscriptions:preview``.

Mount with ``app.include_router(build_router(store))`` (or ``app.include_router(router)`` and set
``app.state.subscription_store``). Responses never contain channel secrets: channel URLs come back
masked (``****``). A ``PUT`` may send a masked URL back unchanged; it is matched against the stored
subscription's channels and keeps the stored secret. Validation errors are 422 with
``{"detail": [{"field": "filter.countries.0", "loc": [...], "msg": "..."}]}`` (input values are
never echoed, since they may hold secrets).
"""


from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response, status
from pydantic import ValidationError
from vigil_shared.auth import AUTH_RESPONSES, ApiAuth, Role
from vigil_shared.events import AlertClassified, utcnow
from vigil_shared.settings import VigilSettings

from vigil_notify.matching import match
from vigil_notify.subscriptions import (
    MASK,
    Subscription,
    SubscriptionExists,
    SubscriptionStore,
    mask_url,
    validation_problems,
)

JsonBody = Annotated[Any, Body()]


def _validate(data: Any, *, prefix: str = "body") -> Subscription:
    if not isinstance(data, dict):
        problem = {"field": "<root>", "loc": [prefix], "msg": "expected a JSON object"}
        raise HTTPException(422, detail=[problem])
    try:
        return Subscription.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc)
        for p in problems:
            p["loc"] = [prefix, *p["loc"]]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problems) from None


def _unmask_channels(data: dict[str, Any], existing: Subscription | None) -> dict[str, Any]:
    channels = data.get("channels")
    if existing is None or not isinstance(channels, list):
        return data
    by_mask = {mask_url(c): c for c in existing.channels}
    data = dict(data)
    data["channels"] = [by_mask.get(c, c) if isinstance(c, str) and MASK in c else c for c in channels]
    return data


def build_router(store: SubscriptionStore | None = None) -> APIRouter:
    """A router bound to ``store`` (or to ``request.app.state.subscription_store`` when None)."""

    def get_store(request: Request) -> SubscriptionStore:
        if store is not None:
            return store
        found: SubscriptionStore | None = getattr(request.app.state, "subscription_store", None)
        if found is None:
            raise HTTPException(503, detail="subscription store not configured")
        return found

    StoreDep = Annotated[SubscriptionStore, Depends(get_store)]
    # every subscription route needs an admin API key, rate-limited per key (SECURITY.md)
    auth = ApiAuth.from_settings(VigilSettings(), getattr(store, "redis", None), component="notify")
    r = APIRouter(
        prefix="/v1",
        tags=["subscriptions"],
        dependencies=[Depends(auth.require(Role.ADMIN))],
        responses=AUTH_RESPONSES,
    )

    @r.get("/subscriptions")
    async def list_subscriptions(s: StoreDep) -> list[dict[str, Any]]:
        return [sub.masked() for sub in await s.list()]

    @r.post("/subscriptions", status_code=201)
    async def create_subscription(response: Response, payload: JsonBody, s: StoreDep) -> dict[str, Any]:
        sub = _validate(payload)
        try:
            await s.create(sub)
        except SubscriptionExists:
            raise HTTPException(409, detail=f"subscription {sub.id!r} already exists") from None
        response.headers["Location"] = f"/v1/subscriptions/{sub.id}"
        return sub.masked()

    @r.post("/subscriptions:preview")
    async def preview(payload: JsonBody, s: StoreDep) -> dict[str, Any]:
        """Who would get this alert (an ``AlertClassified`` JSON) right now, and why."""
        try:
            alert = AlertClassified.model_validate(payload)
        except ValidationError as exc:
            problems = validation_problems(exc)
            for p in problems:
                p["loc"] = ["body", *p["loc"]]
            raise HTTPException(422, detail=problems) from None
        index = await s.index(force=True)
        matches = match(alert, index, utcnow())
        return {
            "alert_id": alert.alert.alert_id,
            "subscriptions_checked": len(index),
            "matches": [
                {
                    "subscription_id": m.subscription.id,
                    "name": m.subscription.name,
                    "channels": [mask_url(c) for c in m.subscription.channels],
                    "explanation": m.explanation,
                }
                for m in matches
            ],
        }

    @r.get("/subscriptions/{sub_id}")
    async def get_subscription(sub_id: str, s: StoreDep) -> dict[str, Any]:
        sub = await s.get(sub_id)
        if sub is None:
            raise HTTPException(404, detail=f"no subscription {sub_id!r}")
        return sub.masked()

    @r.put("/subscriptions/{sub_id}")
    async def replace_subscription(
        sub_id: str, response: Response, payload: JsonBody, s: StoreDep
    ) -> dict[str, Any]:
        if isinstance(payload, dict):
            if payload.get("id", sub_id) != sub_id:
                raise HTTPException(422, detail=[{"field": "id", "loc": ["body", "id"],
                                                  "msg": "must equal the id in the path"}])  # fmt: skip
            payload = _unmask_channels({**payload, "id": sub_id}, await s.get(sub_id))
        sub = _validate(payload)
        created = await s.put(sub)
        response.status_code = 201 if created else 200
        return sub.masked()

    @r.delete("/subscriptions/{sub_id}", status_code=204)
    async def delete_subscription(sub_id: str, s: StoreDep) -> Response:
        if not await s.delete(sub_id):
            raise HTTPException(404, detail=f"no subscription {sub_id!r}")
        return Response(status_code=204)

    return r


router = build_router()
"""Router that finds its store on ``app.state.subscription_store``."""
