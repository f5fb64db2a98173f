"""Settings the server reads at start: a bad one ends the start with one ``error:`` line naming it, before the city
is loaded, never with a traceback (issue 15 item 6)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_an_unknown_open311_channel_is_one_error_line(tmp_path):
    # No city at this URL: the setting must be refused before the server even looks for one.
    env = dict(os.environ, CITYTWIN_OPEN311_KEYS="k1=website,k2=pigeon")
    result = subprocess.run([sys.executable, "app.py", "--port", "0", "--database-url",
                             f"sqlite:///{tmp_path / 'none.sqlite'}"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: CITYTWIN_OPEN311_KEYS: unknown channel 'pigeon'"), \
        result.stderr
