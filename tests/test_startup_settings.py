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


def test_the_access_settings_are_read_once_with_the_others_and_refused_by_name():
    # Read and checked with every other setting at start (dashboard/settings.py), not where they are used.
    import pytest

    from dashboard.settings import Settings

    settings = Settings.from_environ({
        "CITYTWIN_IDLE_MINUTES": "5", "CITYTWIN_SIGNIN_ATTEMPTS": "3", "CITYTWIN_LOCKOUT_SECONDS": "60",
        "CITYTWIN_SECURE_COOKIES": "1", "CITYTWIN_FRAME_ANCESTORS": "https://wall.city.local",
        "CITYTWIN_ORIGINS": "https://dash.city.local/, https://proxy.city.local", "CITYTWIN_SECRET_KEY": "s3cret",
        "CITYTWIN_ALERT_SECONDS": "0"})
    assert (settings.idle_minutes, settings.signin_attempts, settings.lockout_seconds) == (5, 3, 60)
    assert settings.secure_cookies and settings.frame_ancestors == "https://wall.city.local"
    assert settings.origins == ("https://dash.city.local", "https://proxy.city.local")
    assert settings.alert_seconds == 0 and "s3cret" not in settings.describe()
    defaults = Settings.from_environ({})
    assert (defaults.idle_minutes, defaults.signin_attempts, defaults.lockout_seconds, defaults.secure_cookies,
            defaults.frame_ancestors, defaults.origins, defaults.alert_seconds) == (30, 5, 900, False, "'self'", (), 15)
    for name, text in [("CITYTWIN_IDLE_MINUTES", "0"), ("CITYTWIN_IDLE_MINUTES", "soon"),
                       ("CITYTWIN_SIGNIN_ATTEMPTS", "0"), ("CITYTWIN_LOCKOUT_SECONDS", "1.5"),
                       ("CITYTWIN_SECURE_COOKIES", "maybe"), ("CITYTWIN_ALERT_SECONDS", "inf")]:
        with pytest.raises(SystemExit, match=name):
            Settings.from_environ({name: text})


def test_the_stores_timeouts_retention_keys_tours_and_snapshots_are_settings_and_the_layers_read_no_environment(
        tmp_path, monkeypatch):
    # Issue 12 item 2: one settings object, read once. The store's waits, the raw-readings window, the Open311 keys
    # and the tours folder are read and checked at start with the rest, and handed to what uses them.
    import pytest

    from dashboard import services
    from dashboard.settings import Settings
    from layers.snapshot import snapshot_folder
    from layers.store import Store
    from layers.store_health import StoreTimeouts

    settings = Settings.from_environ({
        "CITYTWIN_STATEMENT_TIMEOUT_SECONDS": "4", "CITYTWIN_CONNECT_TIMEOUT_SECONDS": "2.5",
        "CITYTWIN_POOL_TIMEOUT_SECONDS": "1", "CITYTWIN_RAW_READINGS_DAYS": "3",
        "CITYTWIN_OPEN311_KEYS": "k1, k2=wechat", "CITYTWIN_TOURS": str(tmp_path),
        "CITYTWIN_SNAPSHOT_DIR": str(tmp_path / "snapshots")})
    assert settings.store_timeouts == StoreTimeouts(request=4, connect=2.5, pool=1)
    assert settings.raw_readings_days == 3
    assert dict(settings.open311_keys) == {"k1": "website", "k2": "wechat"}
    assert settings.tours_folder == tmp_path
    assert settings.snapshot_dir == tmp_path / "snapshots"
    defaults = Settings.from_environ({})
    assert (defaults.store_timeouts, defaults.raw_readings_days, defaults.open311_keys, defaults.tours_folder,
            defaults.snapshot_dir) == (StoreTimeouts(10, 3, 5), 7, (), None, None)
    for name, text in [("CITYTWIN_STATEMENT_TIMEOUT_SECONDS", "0"), ("CITYTWIN_CONNECT_TIMEOUT_SECONDS", "inf"),
                       ("CITYTWIN_POOL_TIMEOUT_SECONDS", "soon"), ("CITYTWIN_RAW_READINGS_DAYS", "-1"),
                       ("CITYTWIN_RAW_READINGS_DAYS", "nan"), ("CITYTWIN_OPEN311_KEYS", "k=pigeon")]:
        with pytest.raises(SystemExit, match=name):
            Settings.from_environ({name: text})

    # The store takes what it is given: a bad variable in the environment is not read behind the settings' back.
    monkeypatch.setenv("CITYTWIN_POOL_TIMEOUT_SECONDS", "not a number")
    monkeypatch.setenv("CITYTWIN_STATEMENT_TIMEOUT_SECONDS", "not a number")
    monkeypatch.setenv("CITYTWIN_SNAPSHOT_DIR", str(tmp_path / "not read"))
    store = Store(f"sqlite:///{tmp_path / 'city.sqlite'}", timeouts=settings.store_timeouts)
    assert store.timeouts.pool == 1 and store.health.request_seconds == 4
    assert Store(f"sqlite:///{tmp_path / 'other.sqlite'}").timeouts == StoreTimeouts()
    assert snapshot_folder(store) == tmp_path / "city.snapshot"  # beside the SQLite file, not the variable's
    previous = services._services
    try:
        served = services.configure(f"sqlite:///{tmp_path / 'served.sqlite'}", settings=settings)
        assert served.store.timeouts == settings.store_timeouts
        assert snapshot_folder(served.store) == tmp_path / "snapshots"
    finally:
        services._services = previous  # other tests' services, as they were
