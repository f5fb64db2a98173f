"""Failed sign-ins counted per account name and per client address; too many in a window locks sign-in for a
while. Redis-backed when ``CITYTWIN_REDIS_URL`` is set (every worker and server of a deployment sees the same
counts), in this process otherwise.

``CITYTWIN_SIGNIN_ATTEMPTS`` (default 5) failures within ``CITYTWIN_LOCKOUT_SECONDS`` (default 900) lock the
name (and, at four times as many, the address) until that many seconds after the last failure.

Redis is shared state, not a dependency: while it does not answer, each process counts on its own (a lockout then
needs the failures to reach one process, which is weaker, not open) and goes back to Redis when it answers again.
"""
from __future__ import annotations

import sys
import threading
import time

REDIS_RETRY_SECONDS = 5.0  # after Redis failed, how long the process counts on its own before asking Redis again


class _SharedCounts:
    """Counts kept in Redis when ``redis_url`` is given (every worker and server shares them), in this process
    otherwise, and in this process too while Redis does not answer (see the module docstring)."""

    what = "counts"

    def __init__(self, redis_url: str | None):
        self._redis = None
        if redis_url:
            import redis
            self._redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._lock = threading.Lock()
        self._redis_failed_at: float | None = None

    @property
    def backend(self) -> str:
        return "redis" if self._redis_now() is not None else "process"

    def _redis_now(self):
        """The Redis client, unless Redis failed less than :data:`REDIS_RETRY_SECONDS` ago."""
        if self._redis is None:
            return None
        failed_at = self._redis_failed_at
        if failed_at is not None and time.monotonic() - failed_at < REDIS_RETRY_SECONDS:
            return None
        return self._redis

    def _shared(self, work, fallback):
        """``work(redis)`` when Redis answers, else ``fallback()`` (the process's own counts)."""
        import redis

        client = self._redis_now()
        if client is None:
            return fallback()
        try:
            answer = work(client)
        except redis.RedisError as error:
            if self._redis_failed_at is None:
                print(f"citytwin: Redis does not answer ({error}); {self.what} are counted in this process "
                      "until it does", file=sys.stderr, flush=True)
            self._redis_failed_at = time.monotonic()
            return fallback()
        if self._redis_failed_at is not None:
            print(f"citytwin: Redis answers again; {self.what} are counted there", file=sys.stderr, flush=True)
            self._redis_failed_at = None
        return answer


class Lockout(_SharedCounts):
    """``failed(keys)`` counts a failure for each key; ``locked(keys)`` says how many seconds are left (0: not
    locked); ``clear(keys)`` forgets them (after a good sign-in)."""

    what = "sign-in failures"

    def __init__(self, attempts: int = 5, seconds: int = 900, redis_url: str | None = None):
        """``attempts`` failures lock a name for ``seconds`` (dashboard.settings: ``CITYTWIN_SIGNIN_ATTEMPTS``,
        ``CITYTWIN_LOCKOUT_SECONDS``); the counts are shared through Redis at ``redis_url``, else kept here."""
        self.attempts = attempts
        self.seconds = seconds
        super().__init__(redis_url or "")
        self._counts: dict[str, tuple[int, float]] = {}

    def limit(self, key: str) -> int:
        return self.attempts * (4 if key.startswith("addr:") else 1)

    def failed(self, keys) -> None:
        keys = list(keys)

        def in_redis(client):
            pipe = client.pipeline()
            for key in keys:
                pipe.incr("citytwin:signin:" + key)
                pipe.expire("citytwin:signin:" + key, self.seconds)
            pipe.execute()

        self._shared(in_redis, lambda: self._failed_here(keys))

    def _failed_here(self, keys) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                count, last = self._counts.get(key, (0, now))
                if now - last > self.seconds:
                    count = 0
                self._counts[key] = (count + 1, now)
            if len(self._counts) > 100_000:  # a flood of made-up names: forget the oldest half
                for key, _ in sorted(self._counts.items(), key=lambda kv: kv[1][1])[:50_000]:
                    del self._counts[key]

    def locked(self, keys) -> int:
        keys = list(keys)

        def in_redis(client):
            pipe = client.pipeline()
            for key in keys:
                pipe.get("citytwin:signin:" + key)
                pipe.ttl("citytwin:signin:" + key)
            answers = pipe.execute()
            left = 0
            for key, count, ttl in zip(keys, answers[::2], answers[1::2]):
                if count is not None and int(count) >= self.limit(key):
                    left = max(left, int(ttl) if ttl and ttl > 0 else self.seconds)
            return left

        # While Redis is down, a lockout counted here still holds (and one counted in Redis before holds again
        # when it is back).
        return self._shared(in_redis, lambda: self._locked_here(keys))

    def _locked_here(self, keys) -> int:
        now = time.monotonic()
        left = 0
        with self._lock:
            for key in keys:
                count, last = self._counts.get(key, (0, now))
                if count >= self.limit(key) and now - last < self.seconds:
                    left = max(left, int(self.seconds - (now - last)) + 1)
        return left

    def clear(self, keys) -> None:
        keys = list(keys)
        self._shared(lambda client: client.delete(*["citytwin:signin:" + key for key in keys]), lambda: None)
        with self._lock:
            for key in keys:
                self._counts.pop(key, None)


class RateLimit(_SharedCounts):
    """At most ``limit`` uses of a name in each minute (a fixed window on the clock's minutes), counted in Redis when
    ``redis_url`` is given (every worker and server of a deployment shares the counts), in this process otherwise.

    ``use(name, limit)`` counts one use and answers 0 when it is allowed, else the seconds until the next minute
    starts (for ``Retry-After``); a refused use is counted too, so a client that keeps knocking stays refused.

    >>> limit = RateLimit(redis_url="", clock=lambda: 120.5)
    >>> [limit.use("key", 2) for _ in range(3)]
    [0, 0, 60]
    """

    WINDOW_SECONDS = 60

    what = "Open311 rate limits"

    def __init__(self, redis_url: str | None = None, clock=time.time):
        super().__init__(redis_url)
        self.clock = clock
        self._counts: dict[str, tuple[int, int]] = {}

    def use(self, name: str, limit: int) -> int:
        now = self.clock()
        window = int(now // self.WINDOW_SECONDS)
        retry_after = max(1, int(self.WINDOW_SECONDS * (window + 1) - now + 0.999))

        def in_redis(client) -> int:
            key = f"citytwin:rate:{name}:{window}"
            pipe = client.pipeline()
            pipe.incr(key)
            pipe.expire(key, 2 * self.WINDOW_SECONDS)
            return int(pipe.execute()[0])

        def here() -> int:
            with self._lock:
                seen_window, count = self._counts.get(name, (window, 0))
                count = count + 1 if seen_window == window else 1
                self._counts[name] = (window, count)
                if len(self._counts) > 100_000:  # keys of past minutes: forget them
                    self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            return count

        count = self._shared(in_redis, here)
        return 0 if count <= limit else retry_after
