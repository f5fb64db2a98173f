"""Redis is shared state between processes (sign-in lockouts), not a dependency: with CITYTWIN_REDIS_URL set and
Redis killed, pages, sign-in and lockout go on (counted in the process), /health says Redis is down, and when Redis
is back the counts go there again."""
from __future__ import annotations

import pytest

from conftest import add_account
from sample_data.__main__ import build
from tests.mqtt_harness import wait_for


@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('redis-down') / 'city.sqlite'}"
    build("test", url, progress=False)
    return url


def health(base) -> dict:
    answer = base.http.get(base + "/health", timeout=30)
    return answer.json()


def sign_in_answer(base, name: str, password: str) -> int:
    import requests

    with requests.Session() as http:
        http.trust_env = False
        http.headers["Origin"] = base
        return http.post(base + "/login", data={"name": name, "password": password}, allow_redirects=False,
                         timeout=30).status_code


def test_redis_down_everything_still_works(serve_app, city_url, redis_server, monkeypatch):
    import redis

    monkeypatch.setenv("CITYTWIN_REDIS_URL", redis_server.url)
    monkeypatch.setenv("CITYTWIN_SIGNIN_ATTEMPTS", "3")
    base = serve_app(city_url)
    assert health(base)["parts"]["redis"]["up"] is True
    password = add_account(city_url, "operator.wang", roles=("viewer",))

    # With Redis up, a failed sign-in is counted there (every worker and server sees it).
    assert sign_in_answer(base, "operator.wang", "wrong") == 401  # the form again, with the error
    assert redis.Redis.from_url(redis_server.url).get("citytwin:signin:name:operator.wang") == b"1"

    redis_server.stop()
    assert health(base)["parts"]["redis"]["up"] is False
    assert base.http.get(base + "/", timeout=30).status_code == 200
    assert base.http.get(base + "/orders", timeout=30).status_code == 200
    assert sign_in_answer(base, "operator.wang", password) == 302  # signing in needs no Redis
    for _ in range(3):
        assert sign_in_answer(base, "mallory", "guess") == 401
    # Locked out all the same, counted in the process while Redis is down.
    assert sign_in_answer(base, "mallory", "guess") == 429
    assert health(base)["status"] == "degraded"

    redis_server.start()
    wait_for(lambda: health(base)["parts"]["redis"]["up"], 60, "/health to see Redis back")
    client = redis.Redis.from_url(redis_server.url)

    def counted_in_redis():
        sign_in_answer(base, "operator.li", "wrong")
        return client.get("citytwin:signin:name:operator.li") is not None

    wait_for(counted_in_redis, 60, "failed sign-ins counted in Redis again")


def test_open311_rate_limits_hold_while_redis_is_down_and_go_back_to_it(redis_server):
    import redis

    from dashboard.auth.lockout import REDIS_RETRY_SECONDS, RateLimit

    clock = [120.5]
    limit = RateLimit(redis_url=redis_server.url, clock=lambda: clock[0])
    assert [limit.use("key-a", 2) for _ in range(3)] == [0, 0, 60]  # counted in Redis
    redis_server.stop()
    clock[0] = 181.0  # the next minute
    assert [limit.use("key-a", 2) for _ in range(3)] == [0, 0, 59]  # counted here meanwhile, still limited
    assert limit.backend == "process"
    redis_server.start()
    wait_for(lambda: limit.use("key-b", 100) == 0 and limit.backend == "redis", REDIS_RETRY_SECONDS * 10,
             "the limits to go back to Redis")
    assert redis.Redis.from_url(redis_server.url).get("citytwin:rate:key-b:3") is not None
