"""The picture of a run, rendered in a real headless Chromium and read as a person sees it:
lanes, bars and colours are compared with the run's own events, on multiprocess (2 workers) and
in-process. ``.ci/browser`` installs Chromium, its driver and selenium when they are absent.

``HOST_PICTURE_SCREENSHOT=specs/history-picture.png`` keeps a screenshot of the multiprocess
picture (the documentation's picture).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from host import AssetFailed, AssetStarted, ResourceEvent, run_assets
from host._history import flush
from host._history_query import get_run
from host._picture import write_picture
from tests.test_history import SECRET, TREE, Hist

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium driven by selenium (installed by ``.ci/browser`` when absent)."""
    try:
        import selenium
    except ImportError:
        selenium = None
    if selenium is None or not (shutil.which("chromium") and shutil.which("chromedriver")):
        subprocess.run(
            ["bash", str(ROOT / ".ci" / "browser"), sys.executable], check=True, timeout=900
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _run(tmp_path: Path, executor: str, config: dict[str, Any]) -> Any:
    db = tmp_path / "history.db"
    resources = {
        "res": Hist(secret=SecretStr(SECRET), fail=("a3",)),
        "other": Hist(secret=SecretStr(SECRET)),
    }
    result = run_assets(
        TREE, resources, executor=executor, executor_config=config, history=db, raise_on_error=False
    )
    flush()
    page = write_picture(get_run(db, result.run_id), tmp_path / "run.html")
    return result, page


@pytest.mark.parametrize(
    ("executor", "config"),
    [("multiprocess", {"max_workers": 2}), ("in_process", {})],
    ids=["multiprocess", "in_process"],
)
def test_the_picture_shows_what_the_run_did(
    browser: Any, tmp_path: Path, executor: str, config: dict[str, Any]
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    result, page = _run(tmp_path, executor, config)
    text = page.read_text()
    assert SECRET not in text
    assert "src=" not in text and "href=" not in text  # nothing fetched from anywhere
    browser.get(page.as_uri())

    resource_events = result.events_of(ResourceEvent)
    brought_up = {e.pid for e in resource_events}
    lanes = browser.find_elements(By.CSS_SELECTOR, "g.lane")
    assert {int(lane.get_attribute("data-pid")) for lane in lanes} == brought_up
    assert len(lanes) == len(brought_up)
    if executor == "multiprocess":
        assert len(lanes) == 2
        assert all("worker" in lane.get_attribute("data-name") for lane in lanes)

    def bars(kind: str) -> list[Any]:
        return browser.find_elements(By.CSS_SELECTOR, f"rect.bar[data-kind={kind}]")

    up_in = {(e.resource_key, e.pid) for e in resource_events}
    for kind in ("setup", "teardown"):
        drawn = Counter(
            (b.get_attribute("data-key"), int(b.get_attribute("data-pid"))) for b in bars(kind)
        )
        assert drawn == Counter(up_in), kind
        assert all(b.is_displayed() for b in bars(kind))

    lane_boxes = {int(lane.get_attribute("data-pid")): lane.rect for lane in lanes}
    started = {e.asset_key: e.pid for e in result.events_of(AssetStarted)}
    failed = {e.asset_key for e in result.events_of(AssetFailed)}
    asset_bars = {b.get_attribute("data-key"): b for b in bars("asset")}
    assert set(asset_bars) == set(started)
    red = "rgb(198, 40, 40)"
    for key, bar in asset_bars.items():
        pid = int(bar.get_attribute("data-pid"))
        assert pid == started[key]
        box, lane = bar.rect, lane_boxes[pid]
        assert lane["y"] <= box["y"] and box["y"] + box["height"] <= lane["y"] + lane["height"]
        fill = bar.value_of_css_property("fill")
        assert (fill == red) == (key in failed), (key, fill)
    assert failed == {"a3"}

    failed_bar = asset_bars["a3"]
    ActionChains(browser).move_to_element(failed_bar).perform()
    tip = browser.find_element(By.ID, "tip")
    assert tip.is_displayed()
    assert "asset a3" in tip.text and "ValueError" in tip.text and SECRET not in tip.text
    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert len(rows) >= len(TREE) + len(resource_events)

    shot = os.environ.get("HOST_PICTURE_SCREENSHOT")
    if shot and executor == "multiprocess":
        browser.save_screenshot(shot)
