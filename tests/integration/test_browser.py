"""The UI in a real browser (Debian's chromium, headless): log in, see the DAGs, read a log.

`make integration` installs chromium and chromium-driver when they are missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from clusterops.cluster import Credentials
from clusterops.layout import LAYOUT

pytestmark = pytest.mark.lab
TIMEOUT = 60
# The UI's log view: a virtualised list whose groups start collapsed.
LOG_LINES = "[data-testid='virtualized-list']"
LOG_GROUP_HEADERS = "[data-testid^='summary-']"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail(
            "chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    options.binary_location = chromium
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


@pytest.fixture(scope="module")
def ui(vip: str) -> str:
    """The UI where users open it: airflow_base_url, on the masters' virtual IP."""
    return f"http://{vip}:{LAYOUT.api_port}"


def wait(browser: WebDriver, what: str, condition: Any) -> None:
    # The UI re-renders while it loads: an element found a moment ago may be gone.
    WebDriverWait(
        browser,
        TIMEOUT,
        poll_frequency=0.5,
        ignored_exceptions=(StaleElementReferenceException,),
    ).until(condition, f"timed out waiting for {what}")


def expand_log_groups(browser: WebDriver) -> None:
    """Open every collapsed group of the log view ("▶ Pre Execute", ...)."""
    for _ in range(20):
        # Each click re-renders the list, so the headers are looked up again every time.
        collapsed = [
            header
            for header in browser.find_elements(By.CSS_SELECTOR, LOG_GROUP_HEADERS)
            if header.text.startswith("▶")
        ]
        if not collapsed:
            return
        name = collapsed[0].get_attribute("data-testid")
        collapsed[0].click()
        wait(
            browser,
            f"the log group {name} to open",
            lambda b, name=name: all(
                h.text.startswith("▼")
                for h in b.find_elements(By.CSS_SELECTOR, f"[data-testid='{name}']")
            ),
        )
    pytest.fail("the log view kept collapsed groups after 20 clicks")


def test_admin_logs_in(browser: WebDriver, ui: str, credentials: Credentials) -> None:
    browser.get(ui)
    wait(browser, "the login form", lambda b: b.find_elements(By.NAME, "username"))
    browser.find_element(By.NAME, "username").send_keys(credentials.user)
    browser.find_element(By.NAME, "password").send_keys(credentials.admin_password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()
    wait(browser, "the login to finish", lambda b: "/auth/login" not in b.current_url)


def test_dags_are_listed(browser: WebDriver, ui: str) -> None:
    browser.get(f"{ui}/dags")
    wait(
        browser,
        "the DAG list",
        lambda b: "cluster_smoke" in b.page_source and "noop_mapped" in b.page_source,
    )


def test_task_log_opens(
    browser: WebDriver, ui: str, smoke_run: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    run, tis = smoke_run
    ti = next(t for t in tis if t["task_id"] == "where_am_i" and t["map_index"] == 0)
    browser.get(
        f"{ui}/dags/cluster_smoke/runs/{quote(run['dag_run_id'])}/tasks/where_am_i/mapped/0"
    )
    line = f"task 0 running on {ti['hostname']}"
    seen = {"text": ""}

    def log_shows_line(b: WebDriver) -> bool:
        # The list is rendered before the log is fetched, and groups arrive collapsed:
        # read it again until the line shows or the wait runs out.
        lists = b.find_elements(By.CSS_SELECTOR, LOG_LINES)
        if not lists:
            return False
        expand_log_groups(b)
        seen["text"] = b.find_element(By.CSS_SELECTOR, LOG_LINES).text
        return line in seen["text"]

    try:
        wait(browser, f"'{line}' in the log", log_shows_line)
    except TimeoutException:
        pytest.fail(f"'{line}' is not in the log the UI shows:\n{seen['text'][:3000]}")
