"""The operator console in a real headless Chromium against a running pipeline.

Loads the page, signs in, sends alerts through ingest's API and watches them arrive live in the list
and on the map, opens one (highlighted evidence, CAP values, journey, preview), creates a subscription
through the form (field errors first), looks at pipeline health and replays a dead letter, on a desktop
and a phone-sized screen. Screenshots of the main views go to docs/screenshots/.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import redis as redis_sync
from vigil_shared import streams

from .conftest import ADMIN_KEY, ROOT, SCREENSHOTS, Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# entities survive ingest's cleaning as literal markup-looking text: the page must show it, not run it
HOSTILE_TITLE = '&lt;img src=x onerror="window.__pwned=1"&gt; Protest near the embassy in Istanbul'


def example(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "examples" / "alerts" / f"{name}.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def page(browser: Any, pipeline: Pipeline) -> Any:
    # bypass_csp: the page's CSP forbids eval, which Playwright's wait_for_function needs; it also
    # proves the escaping on its own (the CSP is a second line of defence, checked separately)
    context = browser.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda m: print("CONSOLE", m.type, m.text))
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(pg: Any, console: str) -> None:
    pg.goto(f"{console}/console/")
    pg.get_by_label("Admin key").fill(ADMIN_KEY)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_selector("#view-alerts:not([hidden])")


def test_sign_in_refuses_a_wrong_key(page: Any, pipeline: Pipeline) -> None:
    page.goto(f"{pipeline.console}/console/")
    assert page.locator("#view-login").is_visible()
    page.get_by_label("Admin key").fill("not-the-key")
    page.keyboard.press("Enter")  # keyboard only
    page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
    assert page.locator("#nav").is_hidden()
    # the data routes refuse requests without the key; the page is served with a strict CSP
    r = page.request.get(f"{pipeline.console}/console/api/alerts")
    assert r.status == 401
    csp = page.request.get(f"{pipeline.console}/console/").headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


def test_live_list_map_and_filters(page: Any, pipeline: Pipeline) -> None:
    sign_in(page, pipeline.console)
    page.wait_for_selector("#map[data-outline]")  # the outline is loaded (or known missing)
    assert page.locator("#map").get_attribute("data-outline") == "ok", "world outline not installed"
    page.wait_for_selector("#live-state.on")

    moscow = pipeline.send(example("01-moscow"))
    quake = pipeline.send(example("03-hatay-quake"))
    hostile_text = "Demonstrators gathered near the US embassy in Istanbul, Turkey; police used tear gas."
    hostile = pipeline.send({"title": HOSTILE_TITLE, "text": hostile_text, "source": "hostile"})
    # they arrive through the live feed, without a reload, newest first
    for sent in (moscow, quake, hostile):
        page.locator(".alert-item", has_text=str(sent["title"])[:30]).first.wait_for()
    titles = page.locator(".alert-item .t").all_inner_texts()
    assert "Hatay" in " ".join(titles[:2]) or "Protest" in titles[0]
    # hostile text is shown as text, never run
    hostile_item = page.locator(".alert-item", has_text="onerror")
    assert hostile_item.count() == 1
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".alert-item img").count() == 0

    # on the map: one dot per located place, coloured by severity
    page.wait_for_function("Number(document.querySelector('#map').dataset.points) >= 2")
    dots = page.locator("#map a.pt")
    labels = [dots.nth(i).get_attribute("aria-label") or "" for i in range(dots.count())]
    assert any("Moscow" in x for x in labels), labels
    moscow_dot = page.locator("#map a.pt", has_text="Moscow").first
    assert "sev-" in (moscow_dot.get_attribute("class") or "")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-alerts.png"), full_page=True)

    # filters: country, threat type, severity (labelled controls)
    total = page.locator(".alert-item").count()
    page.get_by_label("Country (ISO code)").fill("TR")
    page.wait_for_function(f"document.querySelectorAll('.alert-item').length < {total}")
    assert all("Moscow" not in t for t in page.locator(".alert-item .t").all_inner_texts())
    page.get_by_role("button", name="Clear filters").click()
    page.wait_for_function(f"document.querySelectorAll('.alert-item').length == {total}")
    page.get_by_label("Threat type").select_option("natural_disaster")
    page.wait_for_function("document.querySelectorAll('.alert-item').length >= 1")
    assert all("Hatay" in t or "earthquake" in t.lower() for t in page.locator(".alert-item .t").all_inner_texts())
    page.get_by_role("button", name="Clear filters").click()
    # a map dot is a link: keyboard focus + Enter opens the alert
    page.locator("#map a.pt", has_text="Moscow").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#view-alert:not([hidden]) #evidence-text")
    assert "Moscow" in page.locator("#alert-h").inner_text()


def test_alert_detail_evidence_journey_and_preview(page: Any, pipeline: Pipeline) -> None:
    page.goto(f"{pipeline.console}/console/#/alerts")
    page.wait_for_selector(".alert-item")
    item = page.locator(".alert-item", has_text="Moscow").first
    item.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#view-alert:not([hidden]) #evidence-text")
    text = page.locator("#evidence-text")
    threat = text.locator("mark.ev-threat")
    place = text.locator("mark.ev-place")
    assert threat.count() >= 1
    assert place.count() >= 1
    assert "Moscow" in place.all_inner_texts()
    assert page.locator("#evidence-text img").count() == 0
    # journey: received -> classified -> notified (the demo subscriptions that match Moscow)
    page.wait_for_selector("#journey li[data-subscription='moscow-traveller']", timeout=30_000)
    step = page.locator("#journey li[data-subscription='moscow-traveller']")
    assert "delivered" in step.inner_text()
    page.get_by_role("button", name="Who would get this alert?").click()
    page.wait_for_selector("#preview-result li")
    preview = page.locator("#preview-result").inner_text()
    assert "moscow-traveller" in preview
    assert "spb-only" not in preview
    page.screenshot(path=str(SCREENSHOTS / "console-alert-detail.png"), full_page=True)


def test_create_edit_delete_subscription_through_the_form(page: Any, pipeline: Pipeline) -> None:
    page.goto(f"{pipeline.console}/console/#/subscriptions")
    page.wait_for_selector("#sub-list li[data-id='moscow-traveller']")
    form = page.locator("#sub-form")
    form.get_by_label(re.compile(r"^Id\b")).fill("console-made")
    form.get_by_label(re.compile(r"^Name$")).fill("Made in the console")
    form.get_by_label(re.compile(r"^Channels")).fill("jsonl://console-made.jsonl")
    form.get_by_label(re.compile(r"^Countries")).fill("TR, XYZ")
    form.get_by_label(re.compile(r"^civil unrest$")).check()
    form.get_by_label(re.compile(r"^Minimum severity$")).select_option("Moderate")
    form.get_by_role("button", name="Create subscription").click()
    # the API's field error, shown next to the field and in the summary
    page.wait_for_selector("#sub-errors:not([hidden])")
    assert "filter.countries" in page.locator("#sub-errors").inner_text()
    countries = form.get_by_label(re.compile(r"^Countries"))
    assert countries.get_attribute("aria-invalid") == "true"
    assert "ISO 3166" in page.locator("[data-field='filter.countries'] .field-error").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "console-subscription-errors.png"), full_page=True)
    countries.fill("TR")
    form.get_by_role("button", name="Create subscription").click()
    page.wait_for_selector("#sub-list li[data-id='console-made']")
    assert page.locator("#sub-errors").is_hidden()
    created = json.loads(page.request.get(f"{pipeline.console}/console/api/subscriptions/console-made",
                                          headers={"Authorization": f"Bearer {ADMIN_KEY}"}).text())  # fmt: skip
    assert created["filter"]["countries"] == ["TR"]
    assert created["filter"]["threat_types"] == ["civil_unrest"]
    assert created["filter"]["min_severity"] == "Moderate"
    page.screenshot(path=str(SCREENSHOTS / "console-subscriptions.png"), full_page=True)

    # the new subscription is in the "who would get this alert?" preview of the Istanbul protest
    page.goto(f"{pipeline.console}/console/#/alerts")
    page.locator(".alert-item", has_text="onerror").first.click()
    page.get_by_role("button", name="Who would get this alert?").click()
    page.wait_for_selector("#preview-result p")
    assert "console-made" in page.locator("#preview-result").inner_text()

    # edit, then delete (confirm dialog accepted)
    page.goto(f"{pipeline.console}/console/#/subscriptions")
    page.get_by_role("button", name="Edit Made in the console").click()
    form.get_by_label(re.compile(r"^Name$")).fill("Made in the console, edited")
    form.get_by_role("button", name="Save changes").click()
    page.wait_for_selector("#sub-list li[data-id='console-made']:has-text('edited')")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete Made in the console, edited").click()
    page.wait_for_selector("#sub-list li[data-id='console-made']", state="detached")


def test_pipeline_health_and_dead_letter_replay(page: Any, pipeline: Pipeline) -> None:
    # a poison entry: classify cannot read it and dead-letters it
    client = redis_sync.Redis.from_url(pipeline.redis_url)
    client.xadd(streams.ALERTS_RECEIVED, {"garbage": "not a vigil event"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not client.exists(streams.DEADLETTER):
        time.sleep(0.2)
    assert client.exists(streams.DEADLETTER), "classify did not dead-letter the poison entry"
    page.goto(f"{pipeline.console}/console/#/health")
    page.wait_for_selector("#streams-table tbody tr")
    table = page.locator("#streams-table").inner_text()
    assert streams.ALERTS_CLASSIFIED in table
    assert "notify" in table
    page.wait_for_selector("#dlq-list li")
    first = page.locator("#dlq-list li").first
    assert "classify" in first.inner_text()
    first.locator("summary").click()
    assert "garbage" in first.locator("pre").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "console-health.png"), full_page=True)
    before = int(client.xlen(streams.ALERTS_RECEIVED))
    page.once("dialog", lambda d: d.accept())
    first.get_by_role("button", name="Replay").click()
    page.wait_for_function("document.querySelector('#dlq-status').textContent.includes('replayed')")
    assert int(client.xlen(streams.ALERTS_RECEIVED)) == before + 1
    # the outcome survives the refreshes that follow (the replay's own and the 5-second one)
    updated = page.locator("#health-updated").inner_text()
    page.wait_for_function(f"document.querySelector('#health-updated').textContent !== {updated!r}", timeout=15000)
    assert "replayed" in page.locator("#dlq-status").inner_text()
    client.close()


def test_phone_sized_screen(browser: Any, pipeline: Pipeline) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True, bypass_csp=True)  # fmt: skip
    pg = context.new_page()
    try:
        sign_in(pg, pipeline.console)
        pg.wait_for_selector(".alert-item")
        pg.wait_for_selector("#map[data-outline='ok']")
        # one column, nothing wider than the screen
        overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page is {overflow}px wider than a phone screen"
        pg.screenshot(path=str(SCREENSHOTS / "console-phone.png"))
        pg.locator(".alert-item").first.click()
        pg.wait_for_selector("#evidence-text")
        assert pg.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    finally:
        context.close()
