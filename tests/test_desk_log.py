"""The intake log for thousands: pages in SQL, the columns that matter in view, a sticky
header, and previous/next along the list a submission was opened from."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from bench.desk import config_file
from bench.deskdata import fill
from mailbot.app import App
from mailbot.calls import normalise_name
from mailbot.config import load_settings
from mailbot.ledger.log import SORT_KEYS, LogQuery, LogRow, log_page
from mailbot.web.app import create_app
from mailbot.web.auth import add_user
from mailbot.web.server import BackgroundServer
from tests.conftest import ROOT
from tests.fixtures import DATABASES
from tests.servers.postgres import Postgres
from tests.web_support import NAME, PASSWORD, Client

ARTIFACTS = ROOT / "tests" / "artifacts"
SUBMISSIONS = 130


@dataclass
class BigDesk:
    app: App
    flask: Flask
    url: str


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigDesk]:
    root = tmp_path_factory.mktemp("big-desk")
    app = App.build(load_settings(config_file(root, "sqlite:///desk.sqlite3")))
    app.db.upgrade()
    fill(app, SUBMISSIONS, SUBMISSIONS + 40)
    with app.db.transaction() as session:
        add_user(session, NAME, PASSWORD)
    flask = create_app(app)
    try:
        with BackgroundServer(flask) as server:
            yield BigDesk(app, flask, server.url)
    finally:
        app.close()


@pytest.fixture
def signed_in(desk: BigDesk) -> Client:
    client = Client(desk.url)
    assert client.login().status == 303
    return client


def references(html: str) -> list[str]:
    return re.findall(r'<tr data-reference="([^"]+)"', html)


def test_the_log_comes_in_pages_of_a_chosen_size(signed_in: Client) -> None:
    first = signed_in.get("/log").text
    assert len(references(first)) == 50
    assert f'id="count">{SUBMISSIONS} / {SUBMISSIONS} ' in first
    assert 'rel="next" href="/log?page=2"' in first
    small = signed_in.get("/log?size=25&page=6").text
    assert references(small) == [f"ANSO2021-{n:04d}" for n in range(126, 131)]
    beyond = signed_in.get("/log?size=25&page=999").text  # past the end: the last page
    assert references(beyond) == references(small)
    everything = signed_in.get("/log?size=200").text
    assert len(references(everything)) == SUBMISSIONS
    assert 'rel="next"' not in everything


def test_sorting_and_filtering_cover_the_whole_list_not_one_page(signed_in: Client) -> None:
    newest = references(signed_in.get("/log?sort=received_at&dir=desc&size=25").text)
    oldest = references(signed_in.get("/log?sort=received_at&size=200").text)
    assert newest[0] == oldest[-1]  # over the whole list, not the first page
    accepted = signed_in.get("/log?status=accepted&size=200").text
    assert 'data-column="status"' in accepted
    statuses = re.findall(r'class="status s-([a-z_]+)"', accepted)
    assert statuses
    assert set(statuses) == {"accepted"}


def test_more_columns_come_from_a_chooser(signed_in: Client) -> None:
    plain = signed_in.get("/log").text
    assert 'th scope="col" data-column="title"' not in plain
    chosen = signed_in.get("/log?col=title&col=sender").text
    assert 'th scope="col" data-column="title"' in chosen
    assert 'th scope="col" data-column="sender"' in chosen
    # The choice rides along the pages.
    assert re.search(r'rel="next" href="/log\?page=2&amp;col=title&amp;col=sender"', chosen)


def test_previous_next_and_back_keep_the_list_it_came_from(signed_in: Client) -> None:
    listed = "status=needs_correction&sort=received_at&dir=desc"
    rows = references(signed_in.get(f"/log?{listed}&size=200").text)
    assert len(rows) >= 3
    page = signed_in.get(f"/submissions/{rows[1]}?{listed}").text
    previous = re.search(r'id="previous" rel="prev" href="([^"]+)"', page)
    following = re.search(r'id="next" rel="next" href="([^"]+)"', page)
    back = re.search(r'id="back" href="([^"]+)"', page)
    assert previous
    assert following
    assert back
    assert previous.group(1).startswith(f"/submissions/{rows[0]}?")
    assert following.group(1).startswith(f"/submissions/{rows[2]}?")
    for link in (previous, following, back):
        assert "status=needs_correction" in link.group(1)
        assert "sort=received_at" in link.group(1)
    assert back.group(1).startswith("/log?")
    assert f"第 2 / {len(rows)} 份" in page


# --------------------------------------------------------------------------- in Chromium


def shoot(page: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


def widths(page: Any) -> tuple[int, int]:
    found = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return int(found[0]), int(found[1])


def test_the_log_fits_1366_and_390_pixels_and_its_header_stays(
    browser: Any, desk: BigDesk, tmp_path: Path
) -> None:
    context = browser.new_context(base_url=desk.url, viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/login")
    page.get_by_label("用户名").fill(NAME)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录 Sign in").click()
    page.wait_for_url(re.compile(r"/$"))

    page.goto("/log?size=200")
    scroll, client = widths(page)
    assert scroll <= client, f"the log is {scroll} px wide in {client} px"
    headers = page.locator("table.log thead th").all_inner_texts()
    assert headers[0].startswith("状态")
    assert headers[1].startswith("收到时间")
    for column in ("status", "received_at", "reference", "institution", "pi", "version"):
        box = page.locator(f'table.log thead th[data-column="{column}"]').bounding_box()
        assert box, column
        assert box["x"] + box["width"] <= 1366, column
    shoot(page, tmp_path, "log-1366")

    page.evaluate("window.scrollTo(0, 4000)")
    assert page.evaluate("window.scrollY") > 3000
    top = page.locator('table.log thead th[data-column="status"]').bounding_box()
    assert top, "the status column has no box"
    assert -1 <= top["y"] <= 1, f"the header scrolled away: {top}"

    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/log")
    scroll, client = widths(page)
    assert scroll <= client, f"the log is {scroll} px wide in {client} px"
    shoot(page, tmp_path, "log-390")
    context.close()


# --------------------------------------------------------------------------- on both databases


@pytest.fixture(scope="module", params=DATABASES)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[App]:
    """A log of 80 submissions on each database, filled once for the tests below: they read it."""
    root = tmp_path_factory.mktemp("filled")
    if request.param == "sqlite":
        yield from _filled(root, "sqlite:///desk.sqlite3")
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    url = postgres.create_database()
    try:
        yield from _filled(root, url)
    finally:
        postgres.drop_database(sa.make_url(url).database or "")


def _filled(root: Path, url: str) -> Iterator[App]:
    app = App.build(load_settings(config_file(root, url)))
    try:
        app.db.upgrade()
        fill(app, 80, 100)
        yield app
    finally:
        app.close()


def _key(row: LogRow, sort: str) -> Any:
    facts = row.facts
    return {
        "reference": int(row.reference.rpartition("-")[2]),
        "institution": normalise_name(row.institution),
        "pi": normalise_name(row.pi),
        "title": facts.title,
        "focus_area": facts.focus_area,
        "budget": facts.budget_wan,
        "partners": facts.partners,
        "received_at": row.received_at,
        "status": row.status,
        "version": row.version,
        "sender": row.sender,
    }[sort]


@pytest.mark.parametrize("sort", SORT_KEYS)
def test_every_column_sorts_in_the_database_on_sqlite_and_postgresql(
    filled: App, sort: str
) -> None:
    with filled.db.transaction() as session:
        for descending in (False, True):
            query = LogQuery(sort=sort, descending=descending, size=200)
            rows = log_page(session, filled.call, query).rows
            assert len(rows) == 80
            keys = [_key(row, sort) for row in rows]
            known = [k for k in keys if k is not None]
            assert keys[: len(known)] == known, "unknown values come last"
            assert known == sorted(known, reverse=descending), sort


def test_search_finds_titles_senders_and_aliases_on_sqlite_and_postgresql(filled: App) -> None:
    with filled.db.transaction() as session:
        everything = log_page(session, filled.call, LogQuery(size=200)).rows
        for text in (everything[6].facts.title or "", "研究 7", "pi1@", "植物所", "7"):
            found = log_page(session, filled.call, LogQuery(q=text, size=200)).rows
            assert found, text
            if text == "7":
                assert [row.reference for row in found] == ["ANSO2021-0007"]
            elif text == "pi1@":
                assert {row.reference for row in found} == {
                    row.reference for row in everything if "pi1@" in row.sender
                }
            elif text == "植物所":
                assert {row.institution for row in found} <= {
                    "中国科学院植物研究所",
                    "中国科学院昆明植物研究所",
                }
            else:
                assert {row.reference for row in found} == {
                    row.reference for row in everything if text in (row.facts.title or "")
                }
