"""What goes over the wire (dashboard/delivery.py): JavaScript, CSS, callbacks and tiles compressed for a browser
that accepts it (and intact once decompressed), versioned files kept a year without revalidation, everything that
follows the city not cached, and every answer timed."""
from __future__ import annotations

import gzip
import json
import re

import brotli
import pytest

BROWSER = {"Accept-Encoding": "gzip, deflate, br"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from app import create_app
    from sample_data.__main__ import build
    path = tmp_path_factory.mktemp("delivery") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False)
    return create_app(f"sqlite:///{path}").server.test_client()


def page_urls(client, pattern: str) -> list[str]:
    """The script or stylesheet URLs the page shell links to, as a browser finds them."""
    html = client.get("/").get_data(as_text=True)
    return [url.replace("&amp;", "&") for url in re.findall(r'(?:src|href)="([^"]+)"', html)
            if re.search(pattern, url)]


def decoded(response) -> bytes:
    encoding = response.headers.get("Content-Encoding")
    data = response.get_data()
    return brotli.decompress(data) if encoding == "br" else gzip.decompress(data) if encoding == "gzip" else data


def test_the_component_suites_go_compressed_and_are_kept_a_year(client):
    scripts = page_urls(client, r"^/_dash-component-suites/.*\.js")
    assert any("deckgl_dash" in s for s in scripts), scripts
    for url in scripts:
        plain = client.get(url)
        packed = client.get(url, headers=BROWSER)
        assert packed.status_code == 200
        assert packed.headers["Content-Encoding"] == "br", url
        assert decoded(packed) == plain.get_data(), url
        # Fingerprinted by Dash (version and modification time in the name): a new version is a new URL.
        assert packed.headers["Cache-Control"] == "public, max-age=31536000, immutable", url
        if "deckgl_dash" in url:
            assert len(packed.get_data()) < len(plain.get_data()) / 3
    # The second time, the compressed bytes come from the cache: identical.
    deck = next(s for s in scripts if "deckgl_dash" in s)
    assert client.get(deck, headers=BROWSER).get_data() == client.get(deck, headers=BROWSER).get_data()


def test_a_client_that_takes_only_gzip_gets_gzip(client):
    url = page_urls(client, r"dash_renderer.*\.js")[0]
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert decoded(response) == client.get(url).get_data()


def test_our_assets_are_versioned_by_dash_and_kept_a_year(client):
    sheets = page_urls(client, r"^/assets/.*\.css\?m=")
    assert sheets
    for url in sheets:
        response = client.get(url, headers=BROWSER)
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Encoding"] == "br"
        assert decoded(response) == client.get(url).get_data()
    # Without its version the same file is revalidated, never kept blindly.
    bare = sheets[0].split("?")[0]
    assert "immutable" not in client.get(bare).headers.get("Cache-Control", "")


def test_the_mvt_worker_url_names_its_content(client):
    from dashboard.maps.deck import MVT_WORKER_URL
    assert re.search(r"\?v=[0-9a-f]{12}$", MVT_WORKER_URL)
    response = client.get(MVT_WORKER_URL, headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Content-Encoding"] == "br"
    assert b"mvt" in decoded(response)


def test_callbacks_are_compressed_not_cached_and_timed(client):
    dependencies = client.get("/_dash-dependencies", headers=BROWSER)
    assert dependencies.headers["Content-Encoding"] == "br"
    assert "max-age" not in dependencies.headers.get("Cache-Control", "")
    body = {"output": ".._pages_content.children..._pages_store.data..",
            "outputs": [{"id": "_pages_content", "property": "children"},
                        {"id": "_pages_store", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/"},
                       {"id": "_pages_location", "property": "search", "value": ""}],
            "changedPropIds": ["_pages_location.pathname"]}
    response = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json",
                           headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "br"
    assert "max-age" not in response.headers.get("Cache-Control", "")
    assert json.loads(decoded(response))["response"]["_pages_content"]["children"]
    assert re.fullmatch(r"app;dur=\d+\.\d", response.headers["Server-Timing"])
    # Two answers to the same body are compressed afresh, never taken from the static cache.
    again = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json",
                        headers=BROWSER)
    assert json.loads(decoded(again)) == json.loads(decoded(response))


def test_tiles_go_compressed_and_still_revalidate(client):
    from dashboard import services
    from dashboard.maps.tiles import BuildingTiles
    import shapely
    buildings = services.get().city()["buildings"]
    centre = shapely.centroid(buildings.geometry.iloc[0])
    z = 15
    x, y = BuildingTiles.tile_of(centre.x, centre.y, z)
    url = f"/tiles/buildings/{z}/{x}/{y}.pbf"
    plain = client.get(url)
    packed = client.get(url, headers=BROWSER)
    assert packed.headers.get("Content-Encoding") == "br"
    assert decoded(packed) == plain.get_data()
    # private: a tile may be cut at the asker's scope (docs/access.md), so a shared cache must not keep it.
    assert packed.headers["Cache-Control"] == "private, no-cache"
    assert client.get(url, headers={**BROWSER, "If-None-Match": plain.headers["ETag"]}).status_code == 304


def test_a_component_suite_chunk_is_compressed_once_and_kept(client):
    """Dash's unfingerprinted chunks (revalidated daily by the browser) come from the installed package: compressed
    once per process, as the versioned files are; callbacks and pages never."""
    from flask import Flask
    from dashboard.delivery import static_key
    chunk = "/_dash-component-suites/dash/dcc/async-dropdown.js"
    with Flask(__name__).test_request_context(chunk):
        from flask import request
        assert static_key(request) == chunk + "?"
    for path, method in (("/_dash-update-component", "POST"), ("/", "GET"), ("/tiles/buildings/15/1/2.pbf", "GET"),
                         ("/assets/theme.css", "GET")):
        with Flask(__name__).test_request_context(path, method=method):
            from flask import request
            assert static_key(request) == "", path
    first = client.get(chunk, headers=BROWSER)
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "br"
    assert decoded(first) == client.get(chunk).get_data()
    assert client.get(chunk, headers=BROWSER).get_data() == first.get_data()


def test_cache_policy_reads_the_version_from_the_url():
    from dashboard.delivery import DAILY, VERSIONED, cache_policy
    assert cache_policy("/_dash-component-suites/dash/dcc/dash_core_components.v4_4_1m1700000000.js", {}) == VERSIONED
    assert cache_policy("/_dash-component-suites/dash/dcc/async-dropdown.js", {}) == DAILY
    assert cache_policy("/assets/theme.css", {"m": "1700000000.1"}) == VERSIONED
    assert cache_policy("/assets/theme.css", {}) is None
    assert cache_policy("/_dash-update-component", {}) is None
    assert cache_policy("/", {}) is None
