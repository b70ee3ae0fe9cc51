"""The status page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) loads ``GET /`` of a worker fed by the dashboard
scenario, checks the matrix cells, their tooltips, the sections and the links to the image
and node pages, and takes a screenshot (``IMAGELEDGER_SCREENSHOT=docs/status-page.png``
writes it where the README shows it; otherwise it goes to the test's temporary folder)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.dashboard_scenario import make_config, run_scenario
from tests.support.faultproxy import FaultProxy
from tests.support.rabbit import publish_raw
from tests.support.registry import RunningRegistry
from worker import factory
from worker.adapters.broker import BrokerSettings
from worker.web import serve

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium, closed at the end."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1440,1000", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def cells(driver: WebDriver) -> dict[tuple[str, str], tuple[str, str]]:
    """(tag, node) -> (state, tooltip) of every matrix cell."""
    found = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "#matrix tbody tr"):
        tag = str(row.get_attribute("data-tag"))
        for cell in row.find_elements(By.CSS_SELECTOR, "td.cell"):
            key = (tag, str(cell.get_attribute("data-node")))
            found[key] = (str(cell.get_attribute("data-state")), str(cell.get_attribute("title")))
    return found


def texts(driver: WebDriver, selector: str) -> list[str]:
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, selector)]


def attributes(driver: WebDriver, selector: str, name: str) -> list[str]:
    return [str(e.get_attribute(name)) for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def check_overview(driver: WebDriver) -> None:
    assert driver.title == "imageledger status"
    refresh = driver.find_element(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    assert refresh.get_attribute("content") == "5"
    assert texts(driver, "#matrix thead a.node") == ["node-a", "node-b"]
    assert texts(driver, "#matrix tbody a.image") == ["w_2077_44", "w_2077_43", "d_2077_10_23"]
    assert texts(driver, "#matrix tbody .badge") == ["recommended"]
    found = cells(driver)
    states = {key: state for key, (state, _) in found.items()}
    assert states == {
        (tag, node): "parked" if (tag, node) == ("d_2077_10_23", "node-b") else "present"
        for tag in ("w_2077_44", "w_2077_43", "d_2077_10_23")
        for node in ("node-a", "node-b")
    }
    parked = found[("d_2077_10_23", "node-b")][1]
    assert parked.startswith("parked after 2 consecutive failure(s)\nreason: ")
    assert "\n2 attempt(s), last attempt: 20" in parked
    assert found[("w_2077_44", "node-a")][1].startswith("present since 20")
    assert texts(driver, "#matrix .summary span")[0] == "✔ 5 present"
    assert texts(driver, "#ineligible tr[data-node]") == [
        "node-c Node is tainted (NoSchedule, maintenance)"
    ]
    radio = texts(driver, "#menu fieldset label")
    assert radio[0] == "Recommended (Weekly 2077_44)"
    assert driver.find_element(By.CSS_SELECTOR, "#menu input[type=radio]").is_selected()
    assert "Weekly 2077_43" in texts(driver, "#menu select option")
    statuses = attributes(driver, "#refreshes tr[data-status]", "data-status")
    assert statuses == ["failed", "completed", "completed"]
    moves = texts(driver, "#moves tr[data-tag]")
    assert len(moves) == 1
    assert " recommended w_2077_43 sha256:" in moves[0]
    assert " w_2077_44 sha256:" in moves[0]
    assert texts(driver, "#parked code.command") == ["imageledger unpark d_2077_10_23 node-b"]
    waiting = driver.find_element(By.CSS_SELECTOR, "#dead-letters [data-waiting]")
    assert waiting.text == "1"


def check_links(driver: WebDriver, base: str) -> None:
    driver.find_element(By.LINK_TEXT, "w_2077_44").click()
    assert driver.current_url == f"{base}/images/w_2077_44"
    nodes = attributes(driver, "#explain tr[data-node]", "data-node")
    verdicts = dict(zip(nodes, texts(driver, "#explain tr[data-node] .verdict"), strict=True))
    assert verdicts == {"node-a": "present", "node-b": "present", "node-c": "not_planned"}
    assert attributes(driver, "#history tr[data-change]", "data-change") == ["discovered"]
    driver.back()
    driver.find_element(By.CSS_SELECTOR, "#matrix thead a[href='/nodes/node-b']").click()
    assert driver.current_url == f"{base}/nodes/node-b"
    assert driver.find_element(By.TAG_NAME, "h1").text == "node node-b"
    rows = driver.find_elements(By.CSS_SELECTOR, "#explain tr[data-node]")
    verdicts = {r.find_element(By.CSS_SELECTOR, "a.image").text:
                r.find_element(By.CSS_SELECTOR, ".verdict").text for r in rows}  # fmt: skip
    assert verdicts == {"w_2077_44": "present", "w_2077_43": "present", "d_2077_10_23": "parked"}
    assert "appeared" in texts(driver, "#history td")


def save_full_page(driver: WebDriver, path: Path) -> None:
    """The whole page as a PNG (Chromium's own capture, past the window's height)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": 1440, "height": height, "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def browse(base: str, screenshot: Path) -> None:
    with chromium() as driver:
        driver.get(f"{base}/")
        check_overview(driver)
        save_full_page(driver, screenshot)
        check_links(driver, base)


async def test_the_status_page_in_a_browser(
    registry: RunningRegistry,
    registry_session: aiohttp.ClientSession,
    fault_proxy: FaultProxy,
    database_url: str,
    engine: AsyncEngine,
    broker_settings: BrokerSettings,
    rabbit_connection: AbstractRobustConnection,
    tmp_path: Path,
) -> None:
    await run_scenario(registry, registry_session, fault_proxy, database_url, engine,
                       broker_settings, rabbit_connection)  # fmt: skip
    # a routing key no queue is bound to: the alternate exchange dead-letters it
    await publish_raw(rabbit_connection, broker_settings.prefix, "no.such.key", b"{}")
    screenshot = Path(os.environ.get("IMAGELEDGER_SCREENSHOT") or tmp_path / "status-page.png")
    async with factory.runtime(make_config(fault_proxy.host), broker_settings,
                               database_url) as runtime:  # fmt: skip
        await runtime.broker.connect()
        async with serve(runtime, "127.0.0.1", 0) as port:
            await asyncio.to_thread(browse, f"http://127.0.0.1:{port}", screenshot)


async def test_the_pages_obey_the_token(
    database_url: str,
    broker_settings: BrokerSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGELEDGER_HTTP_TOKEN", "s3cret")
    config = make_config("127.0.0.1:9")  # no refresh: the registry is never asked
    async with (
        factory.runtime(config, broker_settings, database_url) as runtime,
        serve(runtime, "127.0.0.1", 0, token=factory.http_token()) as port,
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{port}"
        async with http.get(f"{base}/") as refused:
            assert refused.status == 401
            assert refused.headers["WWW-Authenticate"] == 'Bearer realm="imageledger"'
            assert "This page needs the worker's token" in await refused.text()
        bearer = {"Authorization": "Bearer s3cret"}
        async with http.get(f"{base}/", headers=bearer) as page:
            assert page.status == 200
            assert "Prepull matrix" in await page.text()
        async with http.get(f"{base}/", headers={"Authorization": "Bearer s3cre"}) as wrong:
            assert wrong.status == 401
        async with http.get(f"{base}/healthz") as health:  # not one of the pages
            assert health.status != 401
        await asyncio.to_thread(sign_in, base)


def submit(driver: WebDriver, token: str) -> None:
    """Type the token into the sign-in form, send it and wait for the next page."""
    driver.find_element(By.NAME, "token").send_keys(token)
    button = driver.find_element(By.CSS_SELECTOR, "form.signin button")
    button.click()
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(button))


def sign_in(base: str) -> None:
    """A browser signs in through the form, once, and keeps the token in its cookie."""
    with chromium() as driver:
        driver.get(f"{base}/nodes/node-x")
        assert driver.find_element(By.TAG_NAME, "h2").text == "This page needs the worker's token"
        submit(driver, "guess")
        assert "That is not the token." in driver.page_source
        submit(driver, "s3cret")
        assert driver.current_url == f"{base}/nodes/node-x"  # back where it was going
        assert "unknown node node-x" in driver.find_element(By.ID, "error").text
        cookie = driver.get_cookie("imageledger_token")
        assert cookie is not None
        assert cookie["httpOnly"]
        driver.get(f"{base}/")
        assert driver.title == "imageledger status"
        assert texts(driver, "#matrix .muted") == [
            "No target images or no eligible nodes yet: has a refresh run, and have the nodes"
            " reported?"
        ]
