"""16.5 browser compatibility. Chromium (Debian's build, the engine of Chrome and Edge) runs
every test in this folder. Firefox and WebKit (Safari) need Playwright's own patched builds,
which `playwright install` downloads and this machine cannot: they are listed here as not
testable rather than silently missing. The page uses no engine-specific API beyond
`location.ancestorOrigins` (Chromium and WebKit; Firefox falls back to the origin list)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

NOT_HERE = (
    "needs Playwright's patched {0} build (`playwright install {0}` downloads it); no "
    "download is possible on this machine, and Debian's {1} cannot be driven by Playwright"
)


@pytest.mark.parametrize(
    ("engine", "debian"),
    [("firefox", "firefox-esr"), ("webkit", "WebKitGTK")],
)
def test_16_5_other_engines_are_not_testable_here(engine: str, debian: str) -> None:
    pytest.skip(NOT_HERE.format(engine, debian))
