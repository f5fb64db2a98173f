"""Open311 API keys managed by an admin: created, listed and revoked on /admin/api-keys and by the command line,
kept hashed in the store, each change in the audit trail; per-key rate limits on POST (429 with Retry-After in the
spec's error format, nothing stored), counted in Redis when one is configured; CITYTWIN_OPEN311_KEYS still works."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import shapely
from sqlalchemy import select

from conftest import REPO_ROOT, work_order_snapshot
from dashboard import open311
from dashboard.auth.lockout import RateLimit
from dashboard.settings import Settings
from layers.accounts import API_KEYS, Accounts
from layers.store import Store
from sample_data.__main__ import build
from test_access_accounts import redis_url  # noqa: F401  (a fixture: a redis-server on a free port)

BOOTSTRAP_KEY = "bootstrap-key-from-the-environment"
PREFIX = "/open311/v2"
MINUTE_START = 1_800_000_000.0   # a frozen clock at the start of a minute: the window cannot roll over mid-test


@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def app(city_url):
    from app import create_app

    # The bootstrap key comes from the environment the settings are read from (once, at start).
    settings = Settings.from_environ({open311.KEYS_ENV: BOOTSTRAP_KEY}).but(open311_posts_per_minute=3)
    app = create_app(city_url, settings=settings)
    app.server.extensions["citytwin.open311"].rate_limit.clock = lambda: MINUTE_START + 1
    return app


@pytest.fixture(scope="module")
def inside(city_url) -> tuple[float, float]:
    units = Store(city_url).read_frame("units", ["code", "level", "geometry"])
    grids = units[units["level"] == "grid"]
    point = shapely.from_wkb(grids["geometry"].iloc[len(grids) // 3]).representative_point()
    return point.y, point.x


def post(client, key, lat_long, fmt="json"):
    lat, long = lat_long
    return client.post(f"{PREFIX}/requests.{fmt}", data={
        "api_key": key, "service_code": "garbage_overflow", "lat": f"{lat:.6f}", "long": f"{long:.6f}",
        "description": "Bins overflowing by the school gate"})


def create_key(admin, name, **form):
    page = admin.post("/admin/api-keys", data={"name": name, "channel": "wechat", **form})
    assert page.status_code == 200, page.get_data(as_text=True)[-500:]
    return re.search(r'id="new-api-key">([^<]+)<', page.get_data(as_text=True)).group(1)


def test_keys_are_kept_hashed_and_stop_when_revoked(tmp_path):
    accounts = Accounts(Store(f"sqlite:///{tmp_path / 'a.sqlite'}"))
    key_id, key = accounts.add_api_key("The i Shenzhen app", channel="ishenzhen_app", created_by="test",
                                       posts_per_minute=10)
    with accounts.engine.connect() as conn:
        row = conn.execute(select(API_KEYS)).mappings().one()
    assert key.split(".")[-1] not in repr(dict(row))      # only a hash of the secret is stored
    assert accounts.api_key(key)["channel"] == "ishenzhen_app"
    assert accounts.api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert accounts.api_key("o311." + key_id) is None and accounts.api_key("") is None
    accounts.revoke_api_key(key_id)
    assert accounts.api_key(key) is None
    with pytest.raises(ValueError, match="no active API key"):
        accounts.revoke_api_key(key_id)
    with pytest.raises(ValueError, match="channel"):
        accounts.add_api_key("x", channel="carrier_pigeon", created_by="test", channels={"website"})


def test_an_admin_makes_lists_and_revokes_keys_and_the_audit_trail_has_it(app, inside, city_url):
    admin = app.server.test_client()
    key = create_key(admin, "Futian residents' app <b>")
    key_id = key.split(".")[1]
    listed = admin.get("/admin/api-keys").get_data(as_text=True)
    assert key_id in listed and "Futian residents&#39; app &lt;b&gt;" in listed and key not in listed  # shown once
    filed = post(app.server.test_client(), key, inside)
    assert filed.status_code == 201, filed.get_data(as_text=True)
    order_id = filed.get_json()[0]["service_request_id"]
    from layers.workorders import WorkOrders
    assert WorkOrders(Store(city_url)).get(order_id).channel == "wechat"
    assert admin.post("/admin/api-keys", data={"revoke": key_id}).status_code == 200
    refused = post(app.server.test_client(), key, inside)
    assert refused.status_code == 403 and refused.get_json()[0]["code"] == 403
    bad = admin.post("/admin/api-keys", data={"name": "x", "channel": "website", "posts_per_minute": "lots"})
    assert bad.status_code == 400 and b"not a whole number" in bad.data
    entries = app.server.extensions["citytwin.auth"].accounts.audit(action="api_key")
    assert {(e["action"], e["outcome"]) for e in entries} >= {("api_key.create", "ok"), ("api_key.revoke", "ok"),
                                                              ("api_key.change", "refused")}
    assert all(e["actor"] == "test-admin" for e in entries)


def test_posts_past_a_keys_limit_are_429_with_retry_after_and_store_nothing(app, inside, city_url):
    admin = app.server.test_client()
    limited = create_key(admin, "two a minute", posts_per_minute="2")
    other = create_key(admin, "the server's default (3)")
    client = app.server.test_client()
    assert [post(client, limited, inside).status_code for _ in range(2)] == [201, 201]
    before = work_order_snapshot(Store(city_url))
    for fmt in ("json", "xml"):
        refused = post(client, limited, inside, fmt)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "59"     # the frozen clock is 1 s into its minute
        assert ("<code>429</code>" in refused.get_data(as_text=True) if fmt == "xml"
                else refused.get_json()[0]["code"] == 429)
    assert work_order_snapshot(Store(city_url)) == before
    # another key has its own count (the server's default, 3), and the bootstrap key from the environment too
    assert [post(client, other, inside).status_code for _ in range(4)] == [201, 201, 201, 429]
    assert post(client, BOOTSTRAP_KEY, inside).status_code == 201
    # the next minute, the limited key may post again
    app.server.extensions["citytwin.open311"].rate_limit.clock = lambda: MINUTE_START + 61
    try:
        assert post(client, limited, inside).status_code == 201
    finally:
        app.server.extensions["citytwin.open311"].rate_limit.clock = lambda: MINUTE_START + 1


def test_the_openapi_document_names_the_429(app):
    document = app.server.test_client().get(f"{PREFIX}/openapi.json").get_json()
    answer = document["paths"]["/requests.{format}"]["post"]["responses"]["429"]
    assert "Retry-After" in answer["headers"]


def test_the_rate_limit_is_shared_through_redis(redis_url):  # noqa: F811
    clock = lambda: MINUTE_START + 5  # noqa: E731
    one, two = RateLimit(redis_url, clock=clock), RateLimit(redis_url, clock=clock)
    assert one.backend == "redis"
    assert [one.use("open311:key:a", 3), two.use("open311:key:a", 3), one.use("open311:key:a", 3)] == [0, 0, 0]
    assert two.use("open311:key:a", 3) == 55    # two workers' posts add up
    assert one.use("open311:key:b", 3) == 0     # per key


def test_the_command_line_makes_lists_and_revokes_keys(city_url):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "dashboard.auth", "--database-url", city_url, *args],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    made = run("add-api-key", "Hotline bridge", "--channel", "hotline_12345", "--posts-per-minute", "30")
    assert made.returncode == 0, made.stderr
    key = made.stdout.split(": ")[1].split()[0]
    accounts = Accounts(Store(city_url))
    assert accounts.api_key(key)["posts_per_minute"] == 30
    key_id = key.split(".")[1]
    assert key_id in run("list-api-keys").stdout
    assert run("revoke-api-key", key_id).returncode == 0 and accounts.api_key(key) is None
    assert run("revoke-api-key", key_id).returncode == 2
    assert {e["action"] for e in accounts.audit(actor="command line")} >= {"api_key.create", "api_key.revoke"}
