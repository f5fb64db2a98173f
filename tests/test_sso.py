"""Single sign-on through OpenID Connect, against a real provider: the certified npm package oidc-provider
(tests/oidc_provider, installed by `make test`), started by the test on a free loopback port.

The dashboard runs in process (Flask's test client, as the browser); every step at the provider is a real HTTP
request, and the dashboard's own calls to the provider (discovery, keys, the code for tokens) are real HTTP too.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests

from conftest import _free_port, _missing, _stop
from dashboard.settings import Settings
from sample_data.__main__ import build

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "citytwin-dashboard", "a-client-secret-for-the-tests-only"
CALLBACK = "http://localhost/login/sso/callback"   # Flask's test client serves http://localhost


@pytest.fixture(scope="module")
def provider():
    node = shutil.which("node")
    if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        _missing("the single sign-on tests need Node.js and tests/oidc_provider/node_modules (`make oidc-provider`)")
    port = _free_port()
    proc = subprocess.Popen([node, "provider.mjs", str(port), CLIENT_ID, CLIENT_SECRET, CALLBACK],
                            cwd=PROVIDER_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # the provider prints "ready" once it listens
            line = proc.stdout.readline()
            if "ready" in line:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the OpenID Connect provider did not start: {line}{proc.stdout.read()}")
        yield issuer
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("sso") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False)
    return f"sqlite:///{path}"


def make_app(city_url, provider, **settings):
    from app import create_app

    settings = Settings.from_environ({}).but(oidc_issuer=provider, oidc_client_id=CLIENT_ID,
                                             oidc_client_secret=CLIENT_SECRET, **settings)
    app = create_app(city_url, settings=settings)
    return app


@pytest.fixture(scope="module")
def app(city_url, provider):
    app = make_app(city_url, provider)
    accounts = app.server.extensions["citytwin.auth"].accounts
    accounts.add("li.wei", None, roles={"dispatcher"}, scope="440304")
    return app


def browser(app):
    client = app.server.test_client()
    client.delete_cookie("citytwin_session")
    return client


def form_of(page: str, base: str) -> tuple[str, dict]:
    """The first form of a provider's page: (absolute action URL, its hidden fields)."""
    action = html.unescape(re.search(r'<form[^>]*action="([^"]+)"', page).group(1))
    fields = {html.unescape(m.group(1)): html.unescape(m.group(2)) for m in
              re.finditer(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page)}
    return urljoin(base, action), fields


def sign_in_at_provider(authorize_url: str, login: str) -> str:
    """Play the person at the provider (its development sign-in form, then its consent form); return the URL the
    provider sends the browser back to (the dashboard's callback with a code and the state)."""
    agent = requests.Session()
    agent.trust_env = False
    url = authorize_url
    for _ in range(12):
        answer = agent.get(url, allow_redirects=False, timeout=30)
        while answer.status_code in (302, 303):
            location = urljoin(url, answer.headers["Location"])
            if location.startswith(CALLBACK):
                return location
            url = location
            answer = agent.get(url, allow_redirects=False, timeout=30)
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:500])
        action, fields = form_of(answer.text, url)
        if 'name="login"' in answer.text:
            fields |= {"login": login, "password": "any password: the test provider takes any"}
        answer = agent.post(action, data=fields, allow_redirects=False, timeout=30)
        assert answer.status_code in (302, 303), (action, answer.status_code, answer.text[:500])
        url = urljoin(action, answer.headers["Location"])
        if url.startswith(CALLBACK):
            return url
    raise AssertionError("the provider never sent the browser back")


def test_sign_in_through_the_provider_then_sign_out(app):
    person = browser(app)
    assert b'id="sso-button"' in person.get("/login").data
    started = person.get("/login/sso?next=/catalogue")
    assert started.status_code == 302
    authorize = started.headers["Location"]
    query = parse_qs(urlparse(authorize).query)
    assert authorize.startswith(app.server.extensions["citytwin.auth"].sso.settings.oidc_issuer)
    assert query["client_id"] == [CLIENT_ID] and query["code_challenge_method"] == ["S256"]
    assert query["nonce"] and query["state"]
    back = sign_in_at_provider(authorize, "li.wei")
    answer = person.get(back.removeprefix("http://localhost"))
    assert answer.status_code == 302 and answer.headers["Location"] == "/catalogue"
    # signed in as the local account, with its scope: Futian's map, not Luohu's
    assert person.get("/", headers={"Accept": "text/html"}).headers["Location"].endswith("unit=440304")
    assert person.get("/?unit=440303", headers={"Accept": "text/html"}).status_code == 403
    accounts = app.server.extensions["citytwin.auth"].accounts
    entry = accounts.audit(actor="li.wei", action="sign_in", limit=1)[0]
    assert entry["detail"] == "single sign-on"
    # the same code again (a replayed answer) is refused: its state was used up
    replay = browser(app)
    replayed = replay.get(back.removeprefix("http://localhost"))
    assert replayed.status_code == 403 and replay.get("/", headers={"Accept": "text/html"}).status_code == 302
    # sign out: the session ends
    assert person.post("/logout").status_code == 302
    assert person.get("/catalogue", headers={"Accept": "text/html"}).headers["Location"].startswith("/login")
    assert accounts.audit(actor="li.wei", action="sign_out", limit=1)


def test_a_forged_state_is_refused(app):
    person = browser(app)
    authorize = person.get("/login/sso").headers["Location"]
    back = sign_in_at_provider(authorize, "li.wei")
    forged = re.sub(r"state=[^&]+", "state=forged-by-someone", back)
    answer = person.get(forged.removeprefix("http://localhost"))
    assert answer.status_code == 403 and b"refused" in answer.data
    assert person.get("/", headers={"Accept": "text/html"}).status_code == 302  # still not signed in
    # a callback that was never started (another browser's answer, a link sent to someone) is refused as well
    stranger = browser(app)
    assert stranger.get(back.removeprefix("http://localhost")).status_code == 403
    assert stranger.get("/", headers={"Accept": "text/html"}).status_code == 302
    entries = app.server.extensions["citytwin.auth"].accounts.audit(action="sign_in_failed", text="sso", limit=50)
    assert any("state" in e["detail"] or "mismatching" in e["detail"] for e in entries), entries[:3]


def test_an_unknown_person_is_refused_by_default(app):
    person = browser(app)
    back = sign_in_at_provider(person.get("/login/sso").headers["Location"], "nobody.here")
    answer = person.get(back.removeprefix("http://localhost"))
    assert answer.status_code == 403 and b"nobody.here" in answer.data
    assert app.server.extensions["citytwin.auth"].accounts.get("nobody.here") is None
    assert person.get("/", headers={"Accept": "text/html"}).status_code == 302


def test_an_unknown_person_becomes_a_viewer_when_the_setting_says_so(city_url, provider):
    app = make_app(city_url, provider, oidc_unknown="viewer", oidc_name_claim="citytwin_login")
    person = browser(app)
    back = sign_in_at_provider(person.get("/login/sso").headers["Location"], "new.person")
    assert person.get(back.removeprefix("http://localhost")).status_code == 302
    made = app.server.extensions["citytwin.auth"].accounts.get("NEW.PERSON")   # the configured claim names it
    assert made is not None and made.roles == {"viewer"} and made.scope is None
    assert person.get("/catalogue", headers={"Accept": "text/html"}).status_code == 200
    assert person.get("/orders", headers={"Accept": "text/html"}).status_code == 403   # a viewer, nothing more
    assert app.server.extensions["citytwin.auth"].accounts.verify("NEW.PERSON", "") is None  # no password


def test_without_an_issuer_there_is_no_single_sign_on(city_url):
    from app import create_app

    app = create_app(city_url, settings=Settings.from_environ({}))
    person = browser(app)
    assert b"sso-button" not in person.get("/login").data
    assert person.get("/login/sso").status_code == 404


def test_settings_name_what_single_sign_on_lacks():
    with pytest.raises(SystemExit, match="CITYTWIN_OIDC_CLIENT_ID"):
        Settings.from_environ({"CITYTWIN_OIDC_ISSUER": "https://sso.example.gov"})
    with pytest.raises(SystemExit, match="CITYTWIN_OIDC_ISSUER"):
        Settings.from_environ({"CITYTWIN_OIDC_ISSUER": "sso.example.gov"})
    with pytest.raises(SystemExit, match="CITYTWIN_OIDC_UNKNOWN"):
        Settings.from_environ({"CITYTWIN_OIDC_UNKNOWN": "admin"})
    on = Settings.from_environ({"CITYTWIN_OIDC_ISSUER": "https://sso.example.gov/", "CITYTWIN_OIDC_CLIENT_ID": "c",
                                "CITYTWIN_OIDC_CLIENT_SECRET": "s"})
    assert on.single_sign_on and on.oidc_issuer == "https://sso.example.gov" and "s'" not in on.describe()
