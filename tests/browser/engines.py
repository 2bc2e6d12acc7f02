"""The three browser engines behind one small driver interface, for the page objects in
pages.py (the tests written once and run in each engine, plan 16.5):

- Chromium: Debian's `chromium` through Playwright (the suite's existing browser);
- Firefox: Debian's `firefox-esr` over WebDriver BiDi, through puppeteer-core in Node
  (`bidi_bridge.mjs`, one JSON line per command on stdin/stdout);
- WebKit: WebKitGTK's `MiniBrowser --automation` through its W3C WebDriver
  (`WebKitWebDriver`, Debian's webkit2gtk-driver) and Selenium, on an Xvfb display.

A driver runs JavaScript in the top document or in a nested iframe (`frames`: the CSS
selectors of the iframes from the top down, cross-origin ones included), clicks and types
into elements like a user, and sizes the viewport. Waiting is the page objects' business.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).parent
CHROMIUM = "/usr/bin/chromium"
FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
ENGINES = ("chromium", "firefox", "webkit")

Frames = Sequence[str]


class Driver(Protocol):
    engine: str

    def goto(self, url: str) -> None: ...

    def call(self, function: str, arg: Any = None, frames: Frames = ()) -> Any:
        """Runs the JavaScript function source `function` with `arg` (JSON) in the page's own
        world of the frame; a returned promise is awaited."""

    def click(self, selector: str, frames: Frames = ()) -> None: ...

    def fill(self, selector: str, text: str, frames: Frames = ()) -> None:
        """Empties the input, then types `text` into it key by key (Chromium: fill)."""

    def viewport(self, width: int, height: int) -> None: ...

    def screenshot(self, path: Path) -> None: ...

    def close(self) -> None: ...


def missing(engine: str) -> str | None:
    """What this machine lacks to run `engine` (None: nothing)."""
    needs = {
        "chromium": [CHROMIUM],
        "firefox": [FIREFOX, str(HERE / "node_modules" / "puppeteer-core" / "package.json")],
        "webkit": [WEBKIT_DRIVER, MINIBROWSER, shutil.which("Xvfb") or "/usr/bin/Xvfb"],
    }[engine]
    absent = [p for p in needs if not os.path.exists(p)]
    return ", ".join(absent) if absent else None


# --- Chromium (Playwright) -------------------------------------------------------------------


class ChromiumDriver:
    engine = "chromium"

    def __init__(self, context: Any) -> None:
        self.context = context
        self.page = context.new_page()

    def _frame(self, frames: Frames) -> Any:
        frame = self.page.main_frame
        for selector in frames:
            handle = frame.wait_for_selector(selector, state="attached")
            frame = handle.content_frame()
        return frame

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def call(self, function: str, arg: Any = None, frames: Frames = ()) -> Any:
        return self._frame(frames).evaluate(function, arg)

    def click(self, selector: str, frames: Frames = ()) -> None:
        self._frame(frames).locator(selector).click()

    def fill(self, selector: str, text: str, frames: Frames = ()) -> None:
        self._frame(frames).locator(selector).fill(text)

    def viewport(self, width: int, height: int) -> None:
        self.page.set_viewport_size({"width": width, "height": height})

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)

    def close(self) -> None:
        self.page.close()


# --- Firefox (WebDriver BiDi through puppeteer-core) ------------------------------------------


class FirefoxBridge:
    """The Node process that holds Firefox for the whole session."""

    def __init__(self, node_modules: Path, downloads: Path) -> None:
        env = {**os.environ, "FIREFOX": FIREFOX, "FIREFOX_DOWNLOADS": str(downloads)}
        env["NODE_PATH"] = str(node_modules)
        self.proc = subprocess.Popen(
            ["node", str(HERE / "bidi_bridge.mjs")],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.next_id = 0
        self._answer(0)  # "ready": Firefox is up

    def _answer(self, wanted: int) -> Any:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the Firefox bridge exited ({self.proc.poll()})")
            message = json.loads(line)
            if message["id"] != wanted:
                continue
            if not message["ok"]:
                raise BrowserError(message["error"])
            return message["value"]

    def send(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.next_id += 1
        self.proc.stdin.write(json.dumps({"id": self.next_id, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._answer(self.next_id)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(json.dumps({"id": -1, "op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class BrowserError(AssertionError):
    """A command the browser refused or that failed in it (a failed test, not a crash)."""


class FirefoxDriver:
    engine = "firefox"

    def __init__(self, bridge: FirefoxBridge) -> None:
        self.bridge = bridge
        bridge.send("newPage", width=1280, height=800)

    def goto(self, url: str) -> None:
        self.bridge.send("goto", url=url)

    def call(self, function: str, arg: Any = None, frames: Frames = ()) -> Any:
        return self.bridge.send("call", fn=function, arg=arg, frames=list(frames))

    def click(self, selector: str, frames: Frames = ()) -> None:
        self.bridge.send("click", selector=selector, frames=list(frames))

    def fill(self, selector: str, text: str, frames: Frames = ()) -> None:
        self.bridge.send("fill", selector=selector, text=text, frames=list(frames))

    def viewport(self, width: int, height: int) -> None:
        self.bridge.send("viewport", width=width, height=height)

    def screenshot(self, path: Path) -> None:
        self.bridge.send("screenshot", path=str(path))

    def close(self) -> None:
        self.bridge.send("closePage")


# --- WebKit (WebKitGTK's WebDriver through Selenium) ------------------------------------------


class Xvfb:
    """A virtual X display of its own for MiniBrowser (the display number Xvfb picks)."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as out:
            number = out.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class WebKitSession:
    """MiniBrowser under WebKitWebDriver for the whole session (starting one takes seconds);
    each test gets a blank page and no cookies."""

    def __init__(self, display: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.service import Service

        options = webdriver.WebKitGTKOptions()
        options.binary_location = MINIBROWSER
        options.add_argument("--automation")
        options.add_argument("--enable-dns-prefetching=false")
        # Debian's default locale on a bare machine: WebKitGTK then reports navigator.language
        # "C", whose number format differs from other engines' ("$ 29.00"); the pages must not
        # depend on it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
        service = Service(
            executable_path=WEBKIT_DRIVER, env={**env, "DISPLAY": display, "LANG": "C.UTF-8"}
        )
        self.web = webdriver.WebKitGTK(options=options, service=service)
        self.web.set_script_timeout(30)
        self.home = self.web.current_window_handle

    def reset(self) -> None:
        for handle in self.web.window_handles:
            if handle != self.home:
                self.web.switch_to.window(handle)
                self.web.close()
        self.web.switch_to.window(self.home)
        self.web.get("about:blank")
        self.web.delete_all_cookies()

    def close(self) -> None:
        self.web.quit()


class WebKitDriver:
    engine = "webkit"

    def __init__(self, session: WebKitSession) -> None:
        self.session = session
        self.web = session.web
        session.reset()
        self.viewport(1280, 800)

    def _enter(self, frames: Frames) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        self.web.switch_to.default_content()
        for selector in frames:
            element = WebDriverWait(self.web, 15).until(
                ec.presence_of_element_located((By.CSS_SELECTOR, selector))
            )
            self.web.switch_to.frame(element)

    def _element(self, selector: str, frames: Frames) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        self._enter(frames)
        return WebDriverWait(self.web, 15).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, selector))
        )

    def goto(self, url: str) -> None:
        self.web.switch_to.default_content()
        self.web.get(url)

    def call(self, function: str, arg: Any = None, frames: Frames = ()) -> Any:
        self._enter(frames)
        return self.web.execute_script(f"return ({function})(arguments[0]);", arg)

    def _reveal(self, selector: str, frames: Frames) -> Any:
        """The element, scrolled into the top viewport: WebKitWebDriver clicks where the
        element is on screen without scrolling the documents around its frame, so each
        frame on the way is scrolled into view in its parent first."""
        for depth in range(len(frames)):
            self._enter(frames[:depth])
            self.web.execute_script(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
                frames[depth],
            )
        element = self._element(selector, frames)
        self.web.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        return element

    def click(self, selector: str, frames: Frames = ()) -> None:
        self._reveal(selector, frames).click()

    def fill(self, selector: str, text: str, frames: Frames = ()) -> None:
        element = self._reveal(selector, frames)
        # WebKitWebDriver types only into the focused element of a frame: click it first.
        element.click()
        self.web.execute_script("arguments[0].value = '';", element)
        element.send_keys(text)

    def viewport(self, width: int, height: int) -> None:
        """The window's size for a viewport of width x height: the window's frame (the
        browser's toolbar) is added. MiniBrowser's toolbar keeps its window at least 447 px
        wide: narrower viewports are not reached (see pages.PhoneFrame)."""
        self.web.switch_to.default_content()
        self.web.set_window_rect(width=width, height=height)
        inner = self.web.execute_script("return [window.innerWidth, window.innerHeight]")
        self.web.set_window_rect(
            width=2 * width - int(inner[0]) if inner[0] != width else width,
            height=2 * height - int(inner[1]) if inner[1] != height else height,
        )

    def screenshot(self, path: Path) -> None:
        self.web.switch_to.default_content()
        self.web.save_screenshot(str(path))

    def close(self) -> None:
        self.web.switch_to.default_content()


def wait(condition: Any, timeout: float, what: str) -> Any:
    """Polls `condition()` until it returns something truthy (returned), or fails."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
