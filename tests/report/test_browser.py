"""The report in a real browser: Debian's headless Chromium driven by Selenium (see docs/report.md).

Without Chromium the test is skipped, but it fails when ``CI=true`` or ``REQUIRE_BROWSER=1``: install it with
``make browser-deps`` (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _browser_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if missing:
        reason = f"headless Chromium is not available: missing {', '.join(missing)}; run `make browser-deps`."
        if _browser_required():
            pytest.fail(reason + " (CI=true or REQUIRE_BROWSER=1: the browser test is required)")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def test_report_renders_in_headless_chromium(driver: Any, full_report: Path) -> None:
    driver.get(full_report.resolve().as_uri())
    assert driver.title == "selectseg report"
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    images = driver.execute_script("return document.images.length")
    assert images == 10
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)"
    )
    assert broken == []
    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("L")
    assert image.height >= 0.95 * height > 2000  # the whole page, not only the viewport
    pixels = np.asarray(image, dtype=np.int16)
    differs = np.abs(pixels - pixels[0, 0]) > 16
    assert differs.mean() > 0.03  # not blank
    # The bottom of the page (the software versions) was rendered too.
    assert differs[-height // 10 :].mean() > 0.001
