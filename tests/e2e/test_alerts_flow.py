"""An incident end to end in a real browser against a real server: a water gauge's reading crosses the shipped rule →
the alert is on the wall (its cue flashing, its ticker item) and on the alerts page → acknowledged (the cue goes) →
assigned to a department, which files a work order that links back → the gauge falls → the alert resolves by itself.
Then a fire alarm that clears before anyone acknowledges it: the cue appears and disappears with the alert.

Readings are written into the store as the ingest writes them (one row of the ``readings`` layer)."""
from __future__ import annotations

import re
import shutil

import pandas as pd
from playwright.sync_api import expect
from sqlalchemy import insert

from layers.alerts import AlertBook
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from metrics.alert_runner import save_rule, seed_rules

WAIT_MS = 45_000


def write_reading(store: Store, sensor_id: str, value: float) -> None:
    now = pd.Timestamp.now(tz=CITY_TIMEZONE)
    with store.engine.begin() as conn:
        conn.execute(insert(store.table("readings")), [{"sensor_id": sensor_id, "ts": int(now.timestamp()),
                                                        "value": value}])


def quick_to_resolve(book: AlertBook, rule_id: str) -> None:
    """An administrator's change (a new version of the shipped rule): resolve 3 seconds after the condition clears,
    so that the test need not wait the shipped 30 minutes."""
    body = next(b for b in book.rule_bodies() if b["id"] == rule_id)
    fields = {k: v for k, v in body.items() if k not in ("version", "changed_at", "changed_by", "note")}
    save_rule(book, {**fields, "keep_firing_minutes": 0.05}, changed_by="test admin", note="drill: resolve fast")


def test_an_incident_from_reading_to_resolution(city_db, tmp_path, monkeypatch, serve_app, page):
    path = tmp_path / "city.sqlite"
    shutil.copy(city_db.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    store = Store(url)
    book = AlertBook(store)
    seed_rules(book)
    quick_to_resolve(book, "water_level_rising")
    quick_to_resolve(book, "high_rise_fire")
    sensors = store.read_frame("sensors", ["sensor_id", "kind"])
    gauge = sensors.loc[sensors["kind"] == "water_level", "sensor_id"].iloc[0]
    smoke = sensors.loc[sensors["kind"] == "smoke", "sensor_id"].iloc[0]
    monkeypatch.setenv("CITYTWIN_ALERT_SECONDS", "1")
    base = serve_app(url)

    # The wall before: no cue.
    page.goto(base + "/wall?rotate=0", wait_until="networkidle")
    page.wait_for_selector("#wall-alert-cue", state="attached", timeout=WAIT_MS)
    cue = page.locator("#wall-alert-cue")
    expect(cue).not_to_have_class(re.compile(r"\bon\b"))

    # The gauge crosses 2.5 m: a critical alert, at once (the rule has no pending period).
    write_reading(store, gauge, 3.3)
    expect(cue).to_have_class(re.compile(r"\bon\b"), timeout=WAIT_MS)
    expect(cue).to_contain_text("Water level above 2.5 m")
    expect(page.locator("#wall-ticker")).to_contain_text("Water level above 2.5 m", timeout=WAIT_MS)
    firing = book.frame({"firing"})
    alert_id = firing.loc[firing["place"] == f"sensor:{gauge}", "alert_id"].iloc[0]
    expect(cue).to_contain_text(alert_id)
    # Only the cue moves: the wall's other critical marks are drawn still.
    assert cue.evaluate("e => getComputedStyle(e).animationName") == "wall-cue"
    assert page.evaluate("""() => [...document.querySelectorAll('.wall-screen *')]
        .filter(e => !e.closest('#wall-alert-cue') && !e.closest('.wall-tick-track') && !e.closest('.wall-strip'))
        .map(e => getComputedStyle(e).animationName).filter(n => n && n !== 'none')""") == []

    # The alerts page lists it; an operator acknowledges it.
    alerts_page = page.context.new_page()
    alerts_page.goto(base + "/alerts", wait_until="networkidle")
    row = alerts_page.locator(f"tr.alert-row[data-alert='{alert_id}']")
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_have_class(re.compile("unacknowledged-critical"))
    row.locator("a.alert-link").click()
    expect(alerts_page.locator("#alert-detail-id")).to_have_text(alert_id, timeout=WAIT_MS)
    # the actor is the signed-in account, shown and not typed
    expect(alerts_page.locator("#alert-actor")).to_have_value(base.account)
    expect(alerts_page.locator("#alert-actor")).not_to_be_editable()
    alerts_page.fill("#alert-note", "crew on the way")
    alerts_page.locator("button.alert-acknowledge").click()
    expect(alerts_page.locator("#alert-detail-status")).to_have_attribute("data-status", "acknowledged",
                                                                          timeout=WAIT_MS)
    assert book.get(alert_id).acknowledged_by == base.account
    # Acknowledged: the wall's cue goes (the alert stays in the ticker). The wall in front, as on the wall's PC
    # (a browser slows the timers of a tab in the background).
    page.bring_to_front()
    expect(cue).not_to_have_class(re.compile(r"\bon\b"), timeout=WAIT_MS)

    # Assigned to the department the list gives waterlogging: a work order is filed, linked both ways.
    alerts_page.bring_to_front()
    alerts_page.locator("button.alert-assign").click()
    expect(alerts_page.locator("#alert-detail-status")).to_have_attribute("data-status", "assigned", timeout=WAIT_MS)
    order_link = alerts_page.locator("#alert-detail-order")
    expect(order_link).to_be_visible()
    order_id = book.get(alert_id).order_id
    assert order_id and order_id in order_link.inner_text()
    order_link.click()
    alerts_page.wait_for_url(re.compile(f"/orders/{order_id}"), timeout=WAIT_MS)
    expect(alerts_page.locator("#order-alert-link")).to_contain_text(alert_id, timeout=WAIT_MS)
    expect(alerts_page.locator(".order-screen")).to_contain_text(re.compile("dispatched", re.IGNORECASE))
    # … and the order is in the list of orders.
    alerts_page.goto(base + f"/orders?q={order_id}", wait_until="networkidle")
    expect(alerts_page.locator(".order-grid")).to_contain_text(order_id, timeout=WAIT_MS)

    # The water falls: clear for the keep-firing time, the alert resolves by itself.
    alerts_page.goto(base + f"/alerts?status=all&alert={alert_id}", wait_until="networkidle")
    write_reading(store, gauge, 1.1)
    expect(alerts_page.locator("#alert-detail-status")).to_have_attribute("data-status", "resolved", timeout=WAIT_MS)
    expect(alerts_page.locator(".alert-history")).to_contain_text("rule")
    assert book.get(alert_id).resolved_by == "rule"

    # A fire alarm that nobody acknowledges: the cue comes with it and goes with it.
    page.bring_to_front()
    write_reading(store, smoke, 1.0)
    expect(cue).to_have_class(re.compile(r"\bon\b"), timeout=WAIT_MS)
    expect(cue).to_contain_text("Fire alarm")
    write_reading(store, smoke, 0.0)
    expect(cue).not_to_have_class(re.compile(r"\bon\b"), timeout=WAIT_MS)
    assert page.external_requests == [] and alerts_page.url.startswith(base)
    assert page.console_errors == []


def test_the_building_cards_alerts_follow_the_live_city(own_city_db, monkeypatch, serve_app, page):
    """Issue 13: the building card's alerts were drawn with the page only; they follow a new generation in place
    like the rest of the map page (live.follower), without a reload."""
    store = Store(own_city_db)
    seed_rules(AlertBook(store))
    sensors = store.read_frame("sensors", ["sensor_id", "kind", "building_id"])
    smoke = sensors[(sensors["kind"] == "smoke") & sensors["building_id"].notna()].iloc[0]
    monkeypatch.setenv("CITYTWIN_ALERT_SECONDS", "1")
    monkeypatch.setenv("CITYTWIN_VERSION_CHECK_SECONDS", "1")  # a new generation within a second of the alert
    base = serve_app(own_city_db)
    page.goto(base + f"/?building={smoke.building_id}", wait_until="networkidle")
    card = page.locator("#building-card")
    expect(card).to_have_attribute("data-building", smoke.building_id, timeout=WAIT_MS)
    section = card.locator(".card-alerts")
    expect(section).not_to_contain_text("Fire alarm")
    page.evaluate("window.__same_document = true")

    write_reading(store, smoke.sensor_id, 1.0)  # the detector reports a fire: the rule fires a critical alert
    expect(section).to_contain_text("Fire alarm", timeout=WAIT_MS)
    fired = AlertBook(store).frame({"firing"})
    alert_id = fired.loc[fired["building_id"] == smoke.building_id, "alert_id"].iloc[0]
    row = section.locator(f".card-alert[data-alert='{alert_id}']")
    expect(row).to_have_class(re.compile(r"state-critical"))
    expect(row).to_contain_text("firing")
    assert page.evaluate("window.__same_document === true")  # redrawn in place, not reloaded
    assert page.external_requests == []
    assert page.console_errors == []
