"""The shared fixtures in conftest.py work (PostGIS server, browser)."""

import pytest
import sqlalchemy


@pytest.mark.postgis
def test_postgis_server_answers(postgis_url):
    engine = sqlalchemy.create_engine(postgis_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sqlalchemy.text("SELECT postgis_full_version()")).scalar_one()
            point = conn.execute(
                sqlalchemy.text("SELECT ST_AsText(ST_Transform(ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326), 3857))")
            ).scalar_one()
    finally:
        engine.dispose()
    assert "POSTGIS=" in version
    assert point.startswith("POINT(")


@pytest.fixture
def second_postgis_db_url(postgis_url):
    from conftest import fresh_postgis_database

    with fresh_postgis_database(postgis_url) as url:
        yield url


@pytest.mark.postgis
def test_postgis_databases_are_isolated(postgis_db_url, second_postgis_db_url):
    assert postgis_db_url != second_postgis_db_url
    first = sqlalchemy.create_engine(postgis_db_url)
    second = sqlalchemy.create_engine(second_postgis_db_url)
    try:
        with first.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE only_here (id int, geom geometry(Point, 4326))"))
            conn.execute(sqlalchemy.text("INSERT INTO only_here VALUES (1, ST_SetSRID(ST_MakePoint(0, 0), 4326))"))
        with first.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT count(*) FROM only_here")).scalar_one() == 1
            db1 = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
        with second.connect() as conn:
            db2 = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
            assert conn.execute(sqlalchemy.text("SELECT to_regclass('only_here')")).scalar_one() is None
            assert conn.execute(sqlalchemy.text("SELECT PostGIS_Lib_Version()")).scalar_one()
    finally:
        first.dispose()
        second.dispose()
    assert db1 != db2


def test_sqlite_url_points_into_tmp_path(sqlite_url, tmp_path):
    assert sqlite_url == f"sqlite:///{tmp_path}/citytwin.sqlite"
    engine = sqlalchemy.create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.browser
def test_browser_renders_a_page(page):
    page.goto("data:text/html,<h1>hi</h1>")
    assert page.inner_text("h1") == "hi"
    assert page.viewport_size == {"width": 1920, "height": 1080}
    assert page.external_requests == []
    assert page.console_errors == []


@pytest.mark.browser
def test_page_records_console_errors(page):
    page.goto("data:text/html,<script>console.error('boom')</script><p>x</p>")
    page.wait_for_selector("p")
    assert any("boom" in e for e in page.console_errors)


@pytest.mark.browser
def test_page_records_external_requests(page):
    page.route("http://tiles.example.invalid/**", lambda route: route.abort())
    with page.expect_event("requestfailed", timeout=30_000):  # the blocked request was seen
        page.goto('data:text/html,<img src="http://tiles.example.invalid/0/0/0.png"><p>x</p>')
    page.wait_for_selector("p")
    assert page.external_requests == ["http://tiles.example.invalid/0/0/0.png"]
