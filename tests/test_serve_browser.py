"""The web page in a real browser: headless Chromium (Debian `chromium` + `chromium-driver`,
driven by Selenium) against `fashiongan serve` on a free loopback port. Picks "sneaker",
generates, reads the image back and checks it is the API's, walks an interpolation, opens the
run view, and checks the page fits a phone-sized screen. Screenshots go to
$FASHIONGAN_ARTIFACTS (default: test-artifacts/ in the checkout)."""

import base64
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from test_serve import app, sources  # noqa: F401 - module-scoped fixtures

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(
    os.environ.get("FASHIONGAN_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts")
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(app):  # noqa: F811
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    missing = [p for p in (CHROMIUM, DRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_window_size(1200, 900)
    yield driver
    driver.quit()


def wait_for(driver, condition, what: str, timeout: float = 60):
    return WebDriverWait(driver, timeout).until(lambda d: condition(d), message=what)


def image_bytes(driver, element_id: str) -> bytes:
    """The bytes behind an <img>'s src (a blob: or data: URL, or a path), fetched in the page."""
    data_url = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(document.getElementById(arguments[0]).src).then(r => r.blob()).then(b => {
          const reader = new FileReader(); reader.onload = () => done(reader.result);
          reader.readAsDataURL(b); });""",
        element_id,
    )
    return base64.b64decode(data_url.split(",", 1)[1])


def loaded(element_id: str):
    return lambda d: d.execute_script(
        "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0",
        element_id,
    )


def test_pick_sneaker_generate_walk_and_open_the_run(server, browser, app):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d = browser
    d.get(server + "/")
    wait_for(d, lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2, "models")
    wait_for(d, loaded("gen-image"), "the first grid")
    first = image_bytes(d, "gen-image")

    Select(d.find_element(By.ID, "gen-class")).select_by_visible_text("sneaker")
    count = d.find_element(By.ID, "gen-n")
    count.clear()
    count.send_keys("10")
    seed = d.find_element(By.ID, "gen-seed")
    seed.clear()
    seed.send_keys("42")
    d.find_element(By.ID, "gen-go").click()
    wait_for(d, lambda d: loaded("gen-image")(d) and image_bytes(d, "gen-image") != first, "grid")
    shown = image_bytes(d, "gen-image")
    expected = TestClient(app).get("/v1/generate?model=cond&n=10&class=sneaker&seed=42").content
    assert shown == expected, "the page shows what the API returns for the same request"
    assert "class=sneaker" in d.find_element(By.ID, "gen-npz").get_attribute("href")
    assert not d.find_element(By.ID, "error").is_displayed()
    d.save_screenshot(str(ARTIFACTS / "serve-generate.png"))

    d.find_element(By.CSS_SELECTOR, "nav button[data-view=interpolate]").click()
    wait_for(d, loaded("interp-image"), "first interpolation frame")
    frame0 = image_bytes(d, "interp-image")
    d.execute_script(
        "const s = document.getElementById('interp-slider'); s.value = s.max;"
        "s.dispatchEvent(new Event('input'));"
    )
    wait_for(d, lambda d: image_bytes(d, "interp-image") != frame0, "the slider moves the frame")

    d.find_element(By.CSS_SELECTOR, "nav button[data-view=run]").click()
    wait_for(d, loaded("grid-image"), "the run's grid")
    assert d.find_element(By.ID, "grid-step").text == "30"
    assert "6 log rows, last at step 30" in d.find_element(By.ID, "run-summary").text
    d.execute_script(
        "const s = document.getElementById('grid-slider'); s.value = 0;"
        "s.dispatchEvent(new Event('input'));"
    )
    wait_for(d, lambda d: d.find_element(By.ID, "grid-step").text == "10", "grid scrubber")
    drawn = d.execute_script(
        "const c = document.getElementById('chart-loss');"
        "return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v > 0)"
    )
    assert drawn, "the loss chart has pixels"
    d.save_screenshot(str(ARTIFACTS / "serve-run.png"))

    d.set_window_size(390, 844)  # a phone
    d.find_element(By.CSS_SELECTOR, "nav button[data-view=generate]").click()
    overflow = d.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
    d.save_screenshot(str(ARTIFACTS / "serve-phone.png"))
    d.set_window_size(1200, 900)


def test_bad_request_shows_the_servers_message(server, browser):
    d = browser
    d.get(server + "/")
    wait_for(d, loaded("gen-image"), "the first grid")
    count = d.find_element(By.ID, "gen-n")
    count.clear()
    count.send_keys("5000")
    d.find_element(By.ID, "gen-go").click()
    wait_for(d, lambda d: d.find_element(By.ID, "error").is_displayed(), "an error message")
    assert "n=5000: expected 1..64" in d.find_element(By.ID, "error").text
