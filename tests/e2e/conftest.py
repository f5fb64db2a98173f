"""Fixtures shared by the browser tests: one test-scale sample city per session."""
from __future__ import annotations

import pytest

from sample_data.__main__ import build


@pytest.fixture(scope="session")
def city_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("e2e") / "citytwin.sqlite"
    url = f"sqlite:///{path}"
    build("test", url, progress=False)
    return url
