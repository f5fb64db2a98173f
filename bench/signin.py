"""The benches sign in as the dashboard's people do: an admin account of the bench's own in the city's store, a POST
to /login, and the session cookie on every request after it (the access layer, dashboard/auth, answers nothing but
the sign-in page without one)."""
from __future__ import annotations

import secrets

BENCH_ACCOUNT = "bench.admin"


def bench_account(store) -> tuple[str, str]:
    """Make (or make again, with a new password) the benches' admin account over the whole city in ``store``."""
    from layers.accounts import ACCOUNTS, Accounts

    password = secrets.token_urlsafe(18)
    accounts = Accounts(store)  # makes the accounts' tables in a store that has none yet
    with store.engine.begin() as conn:
        conn.execute(ACCOUNTS.delete().where(ACCOUNTS.c.name == BENCH_ACCOUNT))
    accounts.add(BENCH_ACCOUNT, password, roles={"admin"})
    return BENCH_ACCOUNT, password


def _refused(status: int, where: str) -> RuntimeError:
    return RuntimeError(f"the bench could not sign in to {where}: HTTP {status} (expected a 302 to the page)")


def signed_in_client(app, account: tuple[str, str] | None = None):
    """A Flask test client of ``app`` (a Dash app), signed in as ``account`` (default: the bench's own, made in the
    app's store); its POSTs carry the Origin the CSRF check wants."""
    if account is None:
        from dashboard import services
        account = bench_account(services.get().store)
    client = app.server.test_client()
    client.environ_base["HTTP_ORIGIN"] = "http://localhost"
    answer = client.post("/login", data={"name": account[0], "password": account[1]})
    if answer.status_code != 302:
        raise _refused(answer.status_code, "the app in process")
    return client


def signed_in_session(base_url: str, account: tuple[str, str], session=None):
    """A ``requests.Session`` (``session``, or a new one) signed in to the server at ``base_url``."""
    import requests

    session = session or requests.Session()
    session.trust_env = False
    answer = session.post(base_url + "/login", data={"name": account[0], "password": account[1]},
                          headers={"Origin": base_url}, allow_redirects=False, timeout=60)
    if answer.status_code != 302:
        raise _refused(answer.status_code, base_url)
    return session


def sign_in_browser(context, base_url: str, account: tuple[str, str]) -> None:
    """Sign a Playwright browser context in (its request API shares the context's cookies)."""
    answer = context.request.post(base_url + "/login", form={"name": account[0], "password": account[1]},
                                  headers={"Origin": base_url}, max_redirects=0, timeout=120_000)
    if answer.status != 302:
        raise _refused(answer.status, base_url)
