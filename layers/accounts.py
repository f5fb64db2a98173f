"""Accounts, device tokens and the audit trail, in the city's own store (no web framework here).

An account is a named person with one or more roles of the request loop (:data:`ROLES`), bound to a unit of the
city (its scope: the city, a district, a street, …) and optionally to departments. Passwords are hashed with
argon2id (argon2-cffi); the hash carries its own parameters, so stronger parameters later re-hash on sign-in.

The audit trail is append-only: the only write is an insert, and the database refuses UPDATE and DELETE on it
(a trigger, on SQLite and PostgreSQL alike).

>>> accounts = Accounts(Store("sqlite://"))
>>> _ = accounts.add("ana", "a long enough password", roles={"dispatcher"}, scope="440304")
>>> accounts.verify("ana", "a long enough password").roles
frozenset({'dispatcher'})
>>> accounts.verify("ana", "wrong") is None
True
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import (BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text, DDL, event,
                        insert, select, update, and_, or_, func)

from sqlalchemy.exc import IntegrityError, OperationalError

from layers.store import Store

ROLES = ("viewer", "intake", "dispatcher", "handler", "supervisor", "admin")
"""The roles of the request loop, least powerful first (docs/access.md has the matrix)."""
DEVICE_ROLE = "device"
"""What an unattended wall screen signs in as: watch, nothing else."""
MIN_PASSWORD_CHARS = 12
MAX_NAME_CHARS = 64
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")

ACCESS_METADATA = MetaData()

ACCOUNTS = Table(
    "accounts", ACCESS_METADATA,
    Column("name", String(MAX_NAME_CHARS), primary_key=True),
    Column("password_hash", Text, nullable=True),       # empty for an account that signs in only through SSO
    Column("roles", Text, nullable=False),               # comma list of ROLES
    Column("scope", Text, nullable=True),                # a unit code; empty is the whole city
    Column("departments", Text, nullable=False, default=""),  # comma list; empty is every department
    Column("active", Boolean, nullable=False, default=True),
    Column("generation", Integer, nullable=False, default=1),  # bumped on every change: old sessions end
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
DEVICE_TOKENS = Table(
    "device_tokens", ACCESS_METADATA,
    Column("token_id", String(32), primary_key=True),    # public part, shown in lists
    Column("secret_hash", String(64), nullable=False),   # sha256 of the secret (a random 256-bit secret)
    Column("name", Text, nullable=False),
    Column("scope", Text, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)
API_KEYS = Table(
    "open311_api_keys", ACCESS_METADATA,
    Column("key_id", String(32), primary_key=True),      # public part, shown in lists and the audit trail
    Column("secret_hash", String(64), nullable=False),   # sha256 of the secret (a random 256-bit secret)
    Column("name", Text, nullable=False),                # whose application
    Column("channel", String(32), nullable=False),       # the intake channel its requests are filed under
    Column("posts_per_minute", Integer, nullable=True),  # empty: the server's default
    Column("created_by", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)
API_KEY_PREFIX = "o311"
"""Keys made here read ``o311.<key id>.<secret>``: a key from ``CITYTWIN_OPEN311_KEYS`` never looks like one."""
AUDIT = Table(
    "audit_trail", ACCESS_METADATA,
    Column("entry_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),            # UTC epoch milliseconds
    Column("actor", Text, nullable=False),               # an account, "device:<id>", or "anonymous"
    Column("address", Text, nullable=False),             # where from (the client's address)
    Column("action", String(64), nullable=False),        # sign_in, sign_in_failed, order.dispatch, export, refused…
    Column("target", Text, nullable=False),              # what: an order id, an account, a path
    Column("outcome", String(16), nullable=False),       # ok, refused, failed
    Column("detail", Text, nullable=False),
)
Index("ix_audit_trail_at", AUDIT.c.at)
Index("ix_audit_trail_actor", AUDIT.c.actor)
SECRETS = Table(
    "access_secrets", ACCESS_METADATA,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

for _dialect, _statements in {
    "sqlite": ["CREATE TRIGGER IF NOT EXISTS audit_trail_no_update BEFORE UPDATE ON audit_trail "
               "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
               "CREATE TRIGGER IF NOT EXISTS audit_trail_no_delete BEFORE DELETE ON audit_trail "
               "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"],
    "postgresql": ["CREATE OR REPLACE FUNCTION audit_trail_append_only() RETURNS trigger AS $$ BEGIN "
                   "RAISE EXCEPTION 'the audit trail is append-only'; END $$ LANGUAGE plpgsql",
                   "DROP TRIGGER IF EXISTS audit_trail_append_only ON audit_trail",
                   "CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail "
                   "FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only()"],
}.items():
    for _statement in _statements:
        event.listen(AUDIT, "after_create", DDL(_statement).execute_if(dialect=_dialect))


class AccountError(ValueError):
    """A request about accounts that names something wrong (the message says what)."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a person (an account) or a wall screen (a device token)."""

    name: str
    roles: frozenset
    scope: str | None = None             # a unit code; None is the whole city
    departments: frozenset = frozenset()  # empty: every department
    generation: int = 0
    device: bool = False

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    @property
    def actor(self) -> str:
        """The name written into an order's log and the audit trail."""
        return f"device:{self.name}" if self.device else self.name


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_CHARS or not set(name) <= NAME_CHARS:
        raise AccountError(f"account name {name[:80]!r}: use 1–{MAX_NAME_CHARS} letters, digits, '.', '_', '-' "
                           f"or '@'")
    return name


def check_roles(roles) -> frozenset:
    roles = frozenset(r.strip() for r in (roles or ()) if r and r.strip())
    unknown = roles - set(ROLES)
    if unknown:
        raise AccountError(f"unknown role {sorted(unknown)[0]!r}; roles: {', '.join(ROLES)}")
    if not roles:
        raise AccountError(f"an account needs at least one role ({', '.join(ROLES)})")
    return roles


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > 1024:
        raise AccountError("a password of more than 1,024 characters is refused")
    return password


def _now_ms() -> int:
    return int(time.time() * 1000)


class Accounts:
    """Accounts, device tokens and the audit trail of one store. Thread-safe; reads of an account are cached for
    :attr:`cache_seconds` (every request checks its session against the account's generation)."""

    cache_seconds = 2.0

    def __init__(self, store: Store):
        self.store = store
        self.engine = store.engine
        ACCESS_METADATA.create_all(self.engine)
        self.hasher = PasswordHasher()
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        # A fixed hash to verify against when the account does not exist: the same work, so the time taken does
        # not tell whether a name exists.
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))

    # --- accounts ---------------------------------------------------------------------------------------------

    def add(self, name: str, password: str | None, *, roles, scope: str | None = None,
            departments=(), units=None) -> Principal:
        name = check_name(name)
        roles = check_roles(roles)
        scope = self._check_scope(scope, units)
        hashed = self.hasher.hash(check_password(password)) if password is not None else None
        now = _now_ms() // 1000
        with self.engine.begin() as conn:
            if conn.execute(select(ACCOUNTS.c.name).where(ACCOUNTS.c.name == name)).first():
                raise AccountError(f"account {name!r} exists already")
            conn.execute(insert(ACCOUNTS).values(
                name=name, password_hash=hashed, roles=",".join(sorted(roles)), scope=scope,
                departments=",".join(sorted({d.strip() for d in departments if d.strip()})), active=True,
                generation=1, created_at=now, updated_at=now))
        self._forget(name)
        return self.get(name)

    def change(self, name: str, *, roles=None, scope: str | None | type(...) = ..., departments=None,
               password: str | None = None, active: bool | None = None, units=None) -> Principal:
        """Change an account; every change ends the account's sessions (its generation moves)."""
        name = check_name(name)
        values = {}
        if roles is not None:
            values["roles"] = ",".join(sorted(check_roles(roles)))
        if scope is not ...:
            values["scope"] = self._check_scope(scope, units)
        if departments is not None:
            values["departments"] = ",".join(sorted({d.strip() for d in departments if d.strip()}))
        if password is not None:
            values["password_hash"] = self.hasher.hash(check_password(password))
        if active is not None:
            values["active"] = bool(active)
        with self.engine.begin() as conn:
            done = conn.execute(update(ACCOUNTS).where(ACCOUNTS.c.name == name).values(
                **values, generation=ACCOUNTS.c.generation + 1, updated_at=_now_ms() // 1000))
            if not done.rowcount:
                raise AccountError(f"no account {name!r}")
        self._forget(name)
        return self.get(name, cached=False)

    @staticmethod
    def _check_scope(scope, units) -> str | None:
        scope = (scope or "").strip() or None
        if scope is not None and units is not None and scope not in units:
            raise AccountError(f"scope {scope!r}: no such unit in this city")
        return scope

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(ACCOUNTS)).scalar_one()

    def list(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ACCOUNTS).order_by(ACCOUNTS.c.name)).mappings().all()
        return [{k: v for k, v in row.items() if k != "password_hash"} | {"sso_only": row["password_hash"] is None}
                for row in rows]

    def get(self, name: str, cached: bool = True) -> Principal | None:
        """The active account ``name`` (None if there is none or it is disabled)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
            if cached and hit and now - hit[0] < self.cache_seconds:
                return hit[1]
        with self.engine.connect() as conn:
            row = conn.execute(select(ACCOUNTS).where(ACCOUNTS.c.name == name)).mappings().first()
        principal = None
        if row is not None and row["active"]:
            principal = Principal(name=row["name"], roles=frozenset(filter(None, row["roles"].split(","))),
                                  scope=row["scope"] or None,
                                  departments=frozenset(filter(None, (row["departments"] or "").split(","))),
                                  generation=row["generation"])
        with self._lock:
            self._cache[name] = (now, principal)
        return principal

    def _forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)

    def verify(self, name: str, password: str) -> Principal | None:
        """The account if ``password`` is its password (and it is active), else None, in about the same time."""
        with self.engine.connect() as conn:
            row = conn.execute(select(ACCOUNTS.c.password_hash, ACCOUNTS.c.active)
                               .where(ACCOUNTS.c.name == (name or "")[:MAX_NAME_CHARS])).first()
        stored = row.password_hash if row is not None and row.password_hash else None
        try:
            self.hasher.verify(stored or self._dummy_hash, (password or "")[:1024])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if stored is None or not row.active:
            return None
        if self.hasher.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(update(ACCOUNTS).where(ACCOUNTS.c.name == name)
                             .values(password_hash=self.hasher.hash(password)))
        return self.get(name, cached=False)

    # --- device tokens ----------------------------------------------------------------------------------------

    def add_device(self, name: str, *, scope: str | None, created_by: str, units=None) -> tuple[str, str]:
        """A new device token: (token id, the token to give the screen, shown once)."""
        name = (name or "").strip()[:200] or "wall"
        scope = self._check_scope(scope, units)
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(insert(DEVICE_TOKENS).values(
                token_id=token_id, secret_hash=hashlib.sha256(secret.encode()).hexdigest(), name=name,
                scope=scope, created_by=created_by, created_at=_now_ms() // 1000, revoked_at=None))
        return token_id, f"{token_id}.{secret}"

    def device(self, token: str) -> Principal | None:
        """The wall screen a token signs in, or None for an unknown or revoked one."""
        token_id, _, secret = (token or "").partition(".")
        if not token_id or not secret or len(token) > 200:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(DEVICE_TOKENS).where(DEVICE_TOKENS.c.token_id == token_id)).mappings().first()
        if row is None or row["revoked_at"] is not None:
            return None
        if not secrets.compare_digest(row["secret_hash"], hashlib.sha256(secret.encode()).hexdigest()):
            return None
        return Principal(name=token_id, roles=frozenset({DEVICE_ROLE}), scope=row["scope"] or None, device=True)

    def device_active(self, token_id: str) -> bool:
        now = time.monotonic()
        key = "device:" + token_id
        with self._lock:
            hit = self._cache.get(key)
            if hit and now - hit[0] < self.cache_seconds:
                return hit[1] is not None
        with self.engine.connect() as conn:
            row = conn.execute(select(DEVICE_TOKENS.c.revoked_at)
                               .where(DEVICE_TOKENS.c.token_id == token_id)).first()
        active = row is not None and row.revoked_at is None
        with self._lock:
            self._cache[key] = (now, True if active else None)
        return active

    def revoke_device(self, token_id: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(DEVICE_TOKENS).where(and_(DEVICE_TOKENS.c.token_id == token_id,
                                                                 DEVICE_TOKENS.c.revoked_at.is_(None)))
                                .values(revoked_at=_now_ms() // 1000))
        self._forget("device:" + token_id)
        if not done.rowcount:
            raise AccountError(f"no active device token {token_id!r}")

    def devices(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(DEVICE_TOKENS).order_by(DEVICE_TOKENS.c.created_at)).mappings().all()
        return [{k: v for k, v in row.items() if k != "secret_hash"} for row in rows]

    # --- Open311 API keys ------------------------------------------------------------------------------------

    def add_api_key(self, name: str, *, channel: str, created_by: str, posts_per_minute: int | None = None,
                    channels=None) -> tuple[str, str]:
        """A new Open311 API key: (key id, the key to give the application, shown once; only its hash is kept)."""
        name = (name or "").strip()[:200]
        if not name:
            raise AccountError("an API key needs a name (whose application it is)")
        if channels is not None and channel not in channels:
            raise AccountError(f"channel {channel!r}: no such intake channel; channels: {', '.join(sorted(channels))}")
        if posts_per_minute is not None and not 1 <= int(posts_per_minute) <= 100_000:
            raise AccountError("posts per minute: a whole number from 1 to 100,000 (empty: the server's default)")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(insert(API_KEYS).values(
                key_id=key_id, secret_hash=hashlib.sha256(secret.encode()).hexdigest(), name=name, channel=channel,
                posts_per_minute=None if posts_per_minute is None else int(posts_per_minute),
                created_by=created_by, created_at=_now_ms() // 1000, revoked_at=None))
        return key_id, f"{API_KEY_PREFIX}.{key_id}.{secret}"

    def api_key(self, key: str) -> dict | None:
        """The stored key ``key`` is (its id, name, channel and limit), or None for an unknown or revoked one."""
        prefix, _, rest = (key or "").partition(".")
        key_id, _, secret = rest.partition(".")
        if prefix != API_KEY_PREFIX or not key_id or not secret or len(key) > 200:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(API_KEYS).where(API_KEYS.c.key_id == key_id)).mappings().first()
        if row is None or row["revoked_at"] is not None:
            return None
        if not secrets.compare_digest(row["secret_hash"], hashlib.sha256(secret.encode()).hexdigest()):
            return None
        return {k: v for k, v in row.items() if k != "secret_hash"}

    def revoke_api_key(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(API_KEYS).where(and_(API_KEYS.c.key_id == key_id,
                                                            API_KEYS.c.revoked_at.is_(None)))
                                .values(revoked_at=_now_ms() // 1000))
        if not done.rowcount:
            raise AccountError(f"no active API key {key_id[:40]!r}")

    def api_keys(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(API_KEYS).order_by(API_KEYS.c.created_at)).mappings().all()
        return [{k: v for k, v in row.items() if k != "secret_hash"} for row in rows]

    # --- the audit trail --------------------------------------------------------------------------------------

    audit_attempts = 3

    def record(self, actor: str, action: str, target: str = "", *, outcome: str = "ok", detail: str = "",
               address: str = "") -> None:
        """Append one entry to the audit trail. On SQLite, a write lock not had within the store's wait is tried
        again (up to :attr:`audit_attempts` in all): the entry records something already done (a sign-in), so it
        is worth a longer wait than a write someone can send again; nothing was written when SQLite said it was
        locked. With 50 people signing in at once beside the stream's writer, 5 entries of 50 were lost so."""
        for attempt in range(1, self.audit_attempts + 1):
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(AUDIT).values(at=_now_ms(), actor=str(actor)[:200],
                                                      address=str(address)[:64], action=str(action)[:64],
                                                      target=str(target)[:500], outcome=str(outcome)[:16],
                                                      detail=str(detail)[:2000]))
                return
            except OperationalError as error:
                if attempt == self.audit_attempts or not _sqlite_locked(error):
                    raise

    def audit(self, *, actor: str | None = None, action: str | None = None, text: str | None = None,
              since_ms: int | None = None, limit: int = 500) -> list[dict]:
        """The newest entries first, filtered."""
        query = select(AUDIT).order_by(AUDIT.c.entry_id.desc()).limit(max(1, min(int(limit), 100_000)))
        if actor:
            query = query.where(AUDIT.c.actor == actor)
        if action:
            query = query.where(AUDIT.c.action.like(action.replace("%", "").replace("_", r"\_") + "%", escape="\\"))
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
            query = query.where(or_(AUDIT.c.target.like(pattern, escape="\\"),
                                    AUDIT.c.detail.like(pattern, escape="\\")))
        if since_ms is not None:
            query = query.where(AUDIT.c.at >= since_ms)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings().all()]

    # --- secrets ----------------------------------------------------------------------------------------------

    def secret(self, name: str) -> str:
        """A random secret kept in the store (the session-signing key), made on first use: every worker of one
        deployment shares it, and a restart keeps people signed in."""
        with self.engine.connect() as conn:
            row = conn.execute(select(SECRETS.c.value).where(SECRETS.c.name == name)).first()
        if row is not None:
            return row.value
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(SECRETS).values(name=name, value=secrets.token_urlsafe(48)))
        except IntegrityError:  # another worker made it first
            pass
        with self.engine.connect() as conn:
            return conn.execute(select(SECRETS.c.value).where(SECRETS.c.name == name)).scalar_one()


def _sqlite_locked(error: OperationalError) -> bool:
    """SQLite's "database is locked": another writer held the file past the store's wait (nothing was written)."""
    return type(error.orig).__module__.startswith("sqlite3") and "locked" in str(error.orig).lower()
