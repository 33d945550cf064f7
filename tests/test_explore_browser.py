"""The explorer page in a real headless Chromium (EXP-11): load it, step through a full
update, cut power at a chosen write, open a finding, and look at what the page shows.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Without
them the test is skipped, unless ``OTAMODEL_REQUIRE_BROWSER=1`` (as in CI) makes that a
failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _explore_paths import SMALL, get_update_path

from otamodel.env import build_scenario
from otamodel.explore import get_compact_script, parse_compact_script

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

if not (CHROMIUM and DRIVER):
    if os.environ.get("OTAMODEL_REQUIRE_BROWSER") == "1":
        raise RuntimeError("chromium and chromedriver are required (OTAMODEL_REQUIRE_BROWSER=1)")
    pytest.skip("chromium/chromedriver not installed", allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCENARIO_TOML = """
name = "explore-small"
description = "v1 to v2 with one power cut"
[[releases]]
version = 2
[budget]
power_cut = 1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("explore")
    scenario = folder / "small.toml"
    scenario.write_text(SCENARIO_TOML)
    proc = subprocess.Popen(
        [sys.executable, "-m", "otamodel", "explore", "--scenario", str(scenario), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.stderr else "")
    url = line.split()[2]
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Any, timeout: float = 20) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def text_of(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def run_script(driver: Any, script: str) -> None:
    box = driver.find_element(By.ID, "script")
    box.clear()
    box.send_keys(script)
    driver.find_element(By.CSS_SELECTOR, "#scriptform button").click()
    steps = len(parse_compact_script(script))
    wait_for(driver, lambda d: text_of(d, "stepinfo").startswith(f"step {steps} of"))


def click_action(driver: Any, action: str) -> None:
    before = text_of(driver, "stepinfo")
    driver.find_element(By.CSS_SELECTOR, f'#actions button[data-action="{action}"]').click()
    wait_for(driver, lambda d: text_of(d, "stepinfo") != before)


def test_page_loads_and_is_not_blank(server: str, browser: Any, tmp_path: Path) -> None:
    browser.get(server)
    wait_for(browser, lambda d: text_of(d, "scenario") == "explore-small")
    wait_for(browser, lambda d: "bootloader: INIT" in text_of(d, "machines"))
    assert text_of(browser, "variant") == "harmony-3.9.1"
    assert "FACTORY_RESET" in text_of(browser, "bootctl")
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    # a blank or unstyled page compresses to a few KB; this one has tables and diagrams
    assert shot.stat().st_size > 30_000
    boxes = browser.execute_script(
        "return ['actions','machines','bootctl','properties'].map("
        "id => document.getElementById(id).getBoundingClientRect().height)"
    )
    assert all(height > 10 for height in boxes), boxes


def test_step_through_a_full_update_and_cut_power(server: str, browser: Any) -> None:
    browser.get(server)
    tick = '#actions button[data-action="tick"]'
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, tick))
    path = get_update_path(build_scenario(SMALL))
    # the first steps by clicking, the rest as a script
    for _ in range(3):
        click_action(browser, "tick")
    assert text_of(browser, "stepinfo") == "step 3 of 3"
    run_script(browser, get_compact_script(parse_compact_script(", ".join(path))))
    wait_for(browser, lambda d: "(v2)" in text_of(d, "files") or "v2" in text_of(d, "db"))
    assert "APP" in text_of(browser, "phase").upper()
    assert "DOWNLOAD_SUCCESS" in text_of(browser, "callbacks") or "DB_ENTRY" in text_of(
        browser, "callbacks"
    )
    # back and forward
    browser.find_element(By.ID, "back").click()
    wait_for(browser, lambda d: text_of(d, "stepinfo") == f"step {len(path) - 1} of {len(path)}")
    browser.find_element(By.ID, "forward").click()
    wait_for(browser, lambda d: text_of(d, "stepinfo") == f"step {len(path)} of {len(path)}")
    # go to the first database write and cut power there
    write = next(
        i
        for i, line in enumerate(browser.find_elements(By.CSS_SELECTOR, "#tracesteps li"), 1)
        if "image_database.csv" in line.text
    )
    browser.find_elements(By.CSS_SELECTOR, "#tracesteps li")[write - 2].click()
    wait_for(browser, lambda d: text_of(d, "stepinfo").startswith(f"step {write - 1} of"))
    assert "image_database.csv" in text_of(browser, "pending")
    click_action(browser, "power_cut")
    wait_for(browser, lambda d: "power cut" in text_of(d, "laststep"))
    assert "device: app → bootloader" in text_of(browser, "laststep")
    assert text_of(browser, "phase").lower() == "bootloader"
    assert text_of(browser, "pending") == ""
    assert not browser.find_elements(By.CSS_SELECTOR, '#actions button[data-action="power_cut"]')


def test_open_a_finding(server: str, browser: Any) -> None:
    browser.get(server)
    wait_for(browser, lambda d: text_of(d, "scenario") == "explore-small")
    browser.find_element(By.ID, "runcheck").click()
    wait_for(browser, lambda d: "1835 states" in text_of(d, "checkstatus"), timeout=60)
    button = browser.find_element(By.CSS_SELECTOR, '#findings tr[data-property="no-brick"] button')
    button.click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#tracesteps li.decisive"))
    decisive = browser.find_element(By.CSS_SELECTOR, "#tracesteps li.decisive")
    assert "decisive step" in decisive.text
    assert text_of(browser, "stepinfo").startswith("step 0 of")
    decisive.click()
    wait_for(browser, lambda d: "decisive step" in text_of(d, "tracesteps"))
    assert "power_cut" in text_of(browser, "tracesteps")
    # explore the space: the device is now where no-brick's goal is unreachable for good
    browser.find_element(By.ID, "runspace").click()
    wait_for(browser, lambda d: "distance" in text_of(d, "space"), timeout=60)
    row = browser.find_element(By.CSS_SELECTOR, '#properties tr[data-property="no-brick"]')
    wait_for(browser, lambda d: "unreachable" in row.text or "reachable" in row.text)
