"""Single sign-on through OpenID Connect (Authlib's Flask client), when ``CITYTWIN_OIDC_ISSUER`` is set.

``GET /login/sso`` sends the browser to the provider (authorization code flow with PKCE, a state and a nonce kept in
the signed session cookie); ``GET /login/sso/callback`` takes the provider's answer: Authlib checks the state, trades
the code for tokens at the provider (server to server) and checks the ID token (signature from the provider's keys,
issuer, audience, expiry, nonce). The claim ``CITYTWIN_OIDC_NAME_CLAIM`` (default ``preferred_username``) names the
local account, whose roles, scope and departments apply as for a password sign-in. A person the provider vouches for
without a local account is refused, or, with ``CITYTWIN_OIDC_UNKNOWN=viewer``, given a new viewer account (what
Grafana does by default: ``allow_sign_up`` with ``auto_assign_org_role = Viewer``). Sign-out ends the dashboard's
session; the provider's own session is the provider's (as in Grafana without ``signout_redirect_url``).
"""
from __future__ import annotations

import logging

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from joserfc.errors import JoseError

from dashboard.settings import Settings
from layers.accounts import AccountError, Accounts, Principal, check_name

log = logging.getLogger("citytwin.access")

CLIENT_NAME = "sso"
SCOPES = "openid profile email"


class SsoRefused(Exception):
    """A single sign-on that did not give a signed-in person (the message says why, for the person and the audit
    trail)."""


class SingleSignOn:
    """The provider's client (made once per app) and the mapping of its claims to a local account."""

    def __init__(self, server, settings: Settings, accounts: Accounts):
        self.settings = settings
        self.accounts = accounts
        self.oauth = OAuth(server)
        self.client = self.oauth.register(
            CLIENT_NAME, client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret,
            server_metadata_url=settings.oidc_issuer + "/.well-known/openid-configuration",
            client_kwargs={"scope": SCOPES, "code_challenge_method": "S256", "timeout": 10})

    def redirect(self, callback_url: str):
        """The answer that sends the browser to the provider's sign-in."""
        try:
            return self.client.authorize_redirect(callback_url)
        except (requests.RequestException, OAuthError, ValueError) as error:
            raise SsoRefused(f"the sign-in provider did not answer ({type(error).__name__})") from None

    def finish(self) -> Principal:
        """The local account of the person the provider's answer (this request) vouches for."""
        try:
            token = self.client.authorize_access_token()
        except OAuthError as error:  # a forged or replayed state, the provider's refusal, a bad code
            raise SsoRefused(f"the sign-in provider's answer was refused: {error.error or 'error'}") from None
        except JoseError as error:  # the ID token's signature, issuer, audience, expiry or nonce is wrong
            raise SsoRefused(f"the ID token was refused: {error.error}") from None
        except requests.RequestException as error:
            raise SsoRefused(f"the sign-in provider did not answer ({type(error).__name__})") from None
        claims = token.get("userinfo") or {}
        if not claims:
            raise SsoRefused("the provider's answer has no ID token")
        return self.account_for(claims)

    def account_for(self, claims) -> Principal:
        """The account named by the configured claim; made with the viewer role if the setting says so."""
        claim = self.settings.oidc_name_claim
        value = claims.get(claim)
        if not isinstance(value, str) or not value.strip():
            raise SsoRefused(f"the provider's answer has no {claim!r} claim")
        try:
            name = check_name(value)
        except AccountError:
            raise SsoRefused(f"the {claim!r} claim is not a possible account name") from None
        principal = self.accounts.get(name, cached=False)
        if principal is not None:
            return principal
        if self.settings.oidc_unknown != "viewer":
            raise SsoRefused(f"no account {name!r} here; an admin creates it first")
        try:
            self.accounts.add(name, None, roles={"viewer"})
        except AccountError as error:  # it exists but is disabled, or another request made it
            principal = self.accounts.get(name, cached=False)
            if principal is None:
                raise SsoRefused(str(error)) from None
            return principal
        self.accounts.record("sso", "account.create", name, detail="first single sign-on: viewer of the city")
        return self.accounts.get(name, cached=False)
