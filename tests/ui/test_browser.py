"""The running app in a real browser: Debian's chromium, headless, driven by Selenium.

`streamlit run` (the command line `rakuten-mlops ui` uses) serves the app in a subprocess; the
browser logs in, reloads the page and is still logged in (the HTTP-only session cookie), submits
a low-confidence prediction and finds the API's answer not styled as a success, logs out (a
reload then shows the login form), logs in as an admin, opens every page by its own URL (deep
links) and saves a screenshot of each under ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rakuten_mlops.categories import category_name
from rakuten_mlops.ui.cli import streamlit_argv
from rakuten_mlops.ui.login_store import COOKIE_NAME
from tests.helpers import free_port
from tests.services import require
from tests.ui.helpers import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TITLE = "Piscine hors sol tubulaire 4,57 x 1,22 m avec pompe de filtration"
CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    "--window-size=1400,1300",
)  # fmt: skip


def _binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    require(
        browser and driver,
        "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)",
    )
    assert browser and driver
    return browser, driver


@pytest.fixture
def running_app(stack, tmp_path: Path) -> Iterator[str]:
    """`streamlit run` of the app on a free port, seeing the test API only (its own home is empty)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAKUTEN_")}
    env.update(stack.ui_env(tmp_path / "ui-home"))
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        streamlit_argv("127.0.0.1", port), env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"streamlit did not start:\n{(tmp_path / 'streamlit.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


PAGES = ("predict", "batch", "models", "monitoring", "review", "data")
CANDIDATES = (
    "zzz qqq vvv",
    "objet divers sans nom",
    "lot article",
    TITLE,
)


def _low_confidence_title(stack) -> tuple[str, dict]:
    """A title the test model answers with less confidence than the review threshold."""
    threshold = stack.call("GET", "/v1/limits").json()["review_below"]
    for title in CANDIDATES:
        answer = stack.call("POST", "/v1/predict", json={"designation": title}).json()
        if answer["probability"] < threshold:
            return title, answer
    pytest.fail(f"no candidate title is below the review threshold {threshold}")


def test_log_in_reload_predict_and_every_page_in_chromium(running_app, stack, tmp_path, monkeypatch):
    browser, driver_path = _binaries()
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    title, expected = _low_confidence_title(stack)
    name = category_name(expected["prdtypecode"], "fr")

    options = Options()
    options.binary_location = browser
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    wait = WebDriverWait(driver, 60)
    sidebar = '[data-testid="stSidebar"]'

    def log_in(user: str) -> None:
        wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, 'input[aria-label="Username"]')))
        driver.find_element(By.CSS_SELECTOR, 'input[aria-label="Username"]').send_keys(user)
        driver.find_element(By.CSS_SELECTOR, 'input[aria-label="Password"]').send_keys(PASSWORD)
        driver.find_element(By.XPATH, "//button[.//p[text()='Log in']]").click()
        wait.until(lambda d: f"Logged in as {user}" in d.find_element(By.CSS_SELECTOR, sidebar).text)

    def cookie_set() -> bool:
        return any(c["name"] == COOKIE_NAME for c in driver.get_cookies())

    ARTIFACTS.mkdir(exist_ok=True)
    try:
        driver.get(running_app)
        log_in("alice")
        wait.until(lambda d: cookie_set())
        cookie = next(c for c in driver.get_cookies() if c["name"] == COOKIE_NAME)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        driver.refresh()  # a reload: a new Streamlit session, found again through the cookie
        wait.until(
            lambda d: "Logged in as alice (predictor)" in d.find_element(By.CSS_SELECTOR, sidebar).text
        )
        assert not driver.find_elements(By.CSS_SELECTOR, 'input[aria-label="Username"]')

        field = wait.until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, 'input[aria-label="Title (designation)"]'))
        )
        field.send_keys(title)
        driver.find_element(By.XPATH, "//button[.//p[text()='Predict']]").click()
        result = wait.until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, '[data-testid="stAlertContentWarning"]'))
        )
        wait.until(lambda d: name in result.text)
        assert f"Product type code {expected['prdtypecode']}" in result.text
        assert "Low confidence" in result.text
        assert not [
            e
            for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentSuccess"]')
            if "Product type code" in e.text
        ], "a low-confidence prediction is styled as a success"
        body = driver.find_element(By.TAG_NAME, "body").text
        assert f"Answered by model {expected['model_name']} version {stack.version}" in body
        time.sleep(1)  # let the top-5 chart finish drawing before the screenshot
        assert driver.save_screenshot(str(ARTIFACTS / "ui-predict-low-confidence.png"))

        driver.find_element(By.XPATH, "//button[.//p[text()='Log out']]").click()
        wait.until(lambda d: not cookie_set())
        driver.refresh()
        wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, 'input[aria-label="Username"]')))

        log_in("root")
        wait.until(lambda d: cookie_set())
        for page in PAGES:  # deep links: each page by its own URL, still logged in
            driver.get(f"{running_app}/{page}")
            wait.until(lambda d: "Logged in as root (admin)" in d.find_element(By.CSS_SELECTOR, sidebar).text)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))
            time.sleep(2)  # charts draw after the page's elements arrive
            assert driver.save_screenshot(str(ARTIFACTS / f"ui-{page}.png"))
    finally:
        driver.quit()
