"""16.5 browser compatibility. The customer-visible checks run in three engines
(test_engines.py over pages.py): Chromium (Debian's build; the engine of Chrome and Edge),
Firefox (Debian's firefox-esr, over WebDriver BiDi) and WebKit (WebKitGTK, the engine family
of Safari, through its WebDriver). Here: each engine is the one it claims to be, so a
misconfigured driver cannot pass the suite in the wrong browser."""

from __future__ import annotations

import re

import pytest
from browserkit import Site
from engines import Driver

pytestmark = pytest.mark.browser

USER_AGENTS = {
    "chromium": r"Chrome/\d+",
    "firefox": r"Gecko/\d+ Firefox/\d+",
    "webkit": r"AppleWebKit/\d+.*Safari/\d+",
}


def test_16_5_each_engine_is_the_browser_it_names(driver: Driver, foreign_site: Site) -> None:
    driver.goto(foreign_site.url("/"))
    agent = str(driver.call("() => navigator.userAgent"))
    assert re.search(USER_AGENTS[driver.engine], agent), agent
    if driver.engine == "webkit":
        assert "Chrome" not in agent, agent
