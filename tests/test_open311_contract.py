"""The Open311 OpenAPI document agrees with the server (issue 15 item 14), checked by schemathesis (its CLI from the
venv) against a server this test starts: every operation, bounded examples and a fixed seed, every check
schemathesis has — server errors, status codes, content types, response schemas and headers, the ``Allow`` header
of OPTIONS, schema-violating requests refused — but one: "schema-valid data accepted" cannot hold for POST, since
its point must lie inside the city, a rule JSON Schema cannot express (the document states it in words)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import run_app_server
from dashboard import open311
from sample_data.__main__ import build

API_KEY = "contract-key-7d1e"
TESTS = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).parent / "st"


def test_the_server_keeps_what_its_openapi_document_says(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'city.sqlite'}"
    build("test", url, progress=False)
    monkeypatch.setenv(open311.KEYS_ENV, API_KEY)
    monkeypatch.setenv("CITYTWIN_ESCALATION_MINUTES", "0")
    monkeypatch.setenv("CITYTWIN_OPEN311_POSTS_PER_MINUTE", "100000")  # the contract, not the rate limit
    with run_app_server(url) as base_url:
        env = dict(os.environ, SCHEMATHESIS_HOOKS="open311_contract_hooks", CITYTWIN_CONTRACT_API_KEY=API_KEY,
                   PYTHONPATH=str(TESTS), NO_COLOR="1")
        result = subprocess.run(
            [str(SCHEMATHESIS), "run", f"{base_url}/open311/v2/openapi.json", "--checks", "all",
             "--exclude-checks", "positive_data_acceptance", "--max-examples", "20", "--seed", "1515",
             "--workers", "1", "--request-timeout", "30"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
