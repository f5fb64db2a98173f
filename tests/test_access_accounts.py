"""Accounts, sessions, lockout (in process and in a Redis the test starts), the command line, the first admin and the
append-only audit trail."""
from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest
from sqlalchemy import text

from conftest import REPO_ROOT
from dashboard.auth import first_admin
from dashboard.auth.lockout import Lockout
from layers.accounts import AccountError, Accounts
from layers.store import Store

PASSWORD = "correct horse battery staple"


@pytest.fixture
def accounts(tmp_path):
    return Accounts(Store(f"sqlite:///{tmp_path}/access.sqlite"))


def test_passwords_are_argon2_hashes_and_checked(accounts):
    accounts.add("li.wei", PASSWORD, roles={"dispatcher", "supervisor"}, scope="440304",
                 departments=["Water Affairs Bureau"])
    with accounts.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM accounts WHERE name = 'li.wei'")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    who = accounts.verify("li.wei", PASSWORD)
    assert who.roles == {"dispatcher", "supervisor"} and who.scope == "440304"
    assert who.departments == {"Water Affairs Bureau"}
    assert accounts.verify("li.wei", PASSWORD + "x") is None
    assert accounts.verify("nobody", PASSWORD) is None
    accounts.change("li.wei", active=False)
    assert accounts.verify("li.wei", PASSWORD) is None and accounts.get("li.wei", cached=False) is None


@pytest.mark.parametrize("name, roles, password, problem", [
    ("a b", {"viewer"}, PASSWORD, "account name"),
    ("supervision sweep", {"viewer"}, PASSWORD, "account name"),   # never the server's own actor names
    ("device:x", {"viewer"}, PASSWORD, "account name"),
    ("ok", {"king"}, PASSWORD, "unknown role"),
    ("ok", set(), PASSWORD, "at least one role"),
    ("ok", {"viewer"}, "short", "at least 12"),
])
def test_bad_accounts_are_refused_with_the_reason(accounts, name, roles, password, problem):
    with pytest.raises(AccountError, match=problem):
        accounts.add(name, password, roles=roles)


def test_a_change_moves_the_generation_so_old_sessions_end(accounts):
    first = accounts.add("ana", PASSWORD, roles={"viewer"})
    changed = accounts.change("ana", roles={"viewer", "intake"})
    assert changed.generation == first.generation + 1 and changed.roles == {"viewer", "intake"}


def test_the_audit_trail_is_append_only(accounts):
    accounts.record("ana", "sign_in", "ana", address="127.0.0.1")
    accounts.record("ana", "order.dispatch", "SZ1", detail="now dispatched")
    assert [e["action"] for e in accounts.audit()] == ["order.dispatch", "sign_in"]
    assert [e["target"] for e in accounts.audit(action="order.")] == ["SZ1"]
    for statement in ("UPDATE audit_trail SET actor = 'someone else'", "DELETE FROM audit_trail"):
        with pytest.raises(Exception, match="append-only"):
            with accounts.engine.begin() as conn:
                conn.execute(text(statement))
    assert len(accounts.audit()) == 2


def test_the_audit_trail_is_append_only_on_postgresql(postgis_db_url):
    accounts = Accounts(Store(postgis_db_url))
    accounts.record("ana", "sign_in", "ana")
    with pytest.raises(Exception, match="append-only"):
        with accounts.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_trail"))
    assert len(accounts.audit()) == 1
    accounts.engine.dispose()


def test_an_audit_entry_waits_out_a_locked_sqlite_and_is_written(tmp_path):
    """A sign-in's audit entry is not lost to another writer holding SQLite past the store's wait: it is tried
    again (the first attempt wrote nothing), a bounded number of times."""
    import sqlite3
    import threading

    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    from layers.store_health import StoreTimeouts

    path = tmp_path / "access.sqlite"
    accounts = Accounts(Store(f"sqlite:///{path}", timeouts=StoreTimeouts(pool=0.2)))
    failed = threading.Event()
    event.listen(accounts.engine, "handle_error", lambda context: failed.set())

    def hold_the_lock_until(condition: threading.Event, holding: threading.Event):
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another process's writer, holding the file
        holding.set()
        condition.wait(60)
        writer.execute("COMMIT")
        writer.close()

    def entries():
        return len(accounts.audit(action="sign_in"))

    # Held until the first attempt failed: the next one writes the entry.
    holding = threading.Event()
    holder = threading.Thread(target=hold_the_lock_until, args=(failed, holding))
    holder.start()
    holding.wait(10)
    accounts.record("ana", "sign_in", "ana")
    holder.join()
    assert failed.is_set() and entries() == 1

    # Held for good: given up after the attempts (nothing written), and said.
    done = threading.Event()
    holding = threading.Event()
    holder = threading.Thread(target=hold_the_lock_until, args=(done, holding))
    holder.start()
    holding.wait(10)
    try:
        with pytest.raises(OperationalError, match="locked"):
            accounts.record("ana", "sign_in", "ana")
    finally:
        done.set()
        holder.join()
    assert entries() == 1


def test_device_tokens_sign_in_until_revoked(accounts):
    token_id, token = accounts.add_device("lobby wall", scope="440304", created_by="admin")
    device = accounts.device(token)
    assert device.device and device.roles == {"device"} and device.scope == "440304"
    assert accounts.device(token_id + ".wrong") is None and accounts.device("garbage") is None
    accounts.revoke_device(token_id)
    assert accounts.device(token) is None and not accounts.device_active(token_id)


def test_the_first_start_makes_an_admin_with_a_password_shown_once(accounts):
    out = io.StringIO()
    first_admin(accounts, out)
    password = out.getvalue().split("password ")[1].split()[0]
    assert accounts.verify("admin", password).roles == {"admin"}
    again = io.StringIO()
    first_admin(accounts, again)
    assert again.getvalue() == ""  # once


def _lockout_checks(lockout: Lockout):
    keys = ["name:ana", "addr:10.0.0.1"]
    for _ in range(2):
        assert lockout.locked(keys) == 0
        lockout.failed(keys)
    assert 0 < lockout.locked(keys) <= lockout.seconds
    assert lockout.locked(["name:bob", "addr:10.0.0.2"]) == 0
    lockout.clear(keys)
    assert lockout.locked(keys) == 0


def test_lockout_in_process():
    _lockout_checks(Lockout(attempts=2, seconds=60, redis_url=""))


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url


def test_lockout_in_redis_is_shared_between_processes(redis_url):
    _lockout_checks(Lockout(attempts=2, seconds=60, redis_url=redis_url))
    one, other = Lockout(attempts=2, seconds=60, redis_url=redis_url), Lockout(attempts=2, seconds=60,
                                                                               redis_url=redis_url)
    one.failed(["name:eve"])
    other.failed(["name:eve"])
    assert one.locked(["name:eve"]) > 0  # two workers' failures add up


def test_the_command_line_manages_accounts_and_devices(tmp_path):
    from sample_data.__main__ import build

    url = f"sqlite:///{tmp_path}/city.sqlite"
    build("test", url, progress=False)

    def run(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "dashboard.auth", "--database-url", url, *args], cwd=REPO_ROOT,
                              input=stdin, capture_output=True, text=True, timeout=120)

    made = run("add-user", "futian.lead", "--role", "viewer", "--role", "supervisor", "--scope", "440304")
    assert made.returncode == 0, made.stderr
    password = made.stdout.split("password: ")[1].strip()
    accounts = Accounts(Store(url))
    assert accounts.verify("futian.lead", password).scope == "440304"
    assert run("add-user", "x", "--role", "viewer", "--scope", "999999").returncode == 2
    assert "no such unit" in run("add-user", "x", "--role", "viewer", "--scope", "999999").stderr
    assert run("set-password", "futian.lead", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert accounts.verify("futian.lead", PASSWORD) is not None
    assert "futian.lead" in run("list").stdout
    device = run("add-device", "lobby", "--scope", "440304")
    token = device.stdout.split("/device/")[1].split()[0]
    assert accounts.device(token).scope == "440304"
    assert run("revoke-device", token.split(".")[0]).returncode == 0 and accounts.device(token) is None
    assert {e["action"] for e in accounts.audit()} >= {"account.create", "account.change", "device.create",
                                                       "device.revoke"}
