"""Schemathesis hooks for tests/test_open311_contract.py (loaded with SCHEMATHESIS_HOOKS): every generated POST
carries the api_key the test's server accepts, so that the form's own rules are exercised, not only the key."""
import os

import schemathesis


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, dict):
        body["api_key"] = os.environ["CITYTWIN_CONTRACT_API_KEY"]
    return body
