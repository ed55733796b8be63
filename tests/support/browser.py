"""Headless Chromium for tests of the web page, driven over the DevTools protocol.

`chromium --headless=new --remote-debugging-port=0` writes the port it chose to
`DevToolsActivePort` in its profile folder; the page target's websocket then takes JSON
commands (`{"id", "method", "params"}`) and answers each by id, with events in between. The
events kept are what a person would see in the console as errors: uncaught exceptions, console
errors and the browser's own error entries (a Content-Security-Policy violation, a failed load).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import httpx
from tests.support.processes import stop, wait_for
from websockets.sync.client import ClientConnection, connect

from platform_core.json_types import (
    JSONObject,
    JSONValue,
    dump_json_object,
    load_json_object,
    require_float,
    require_object,
    require_str,
)

WINDOW = (1280, 1000)
CALL_TIMEOUT_S = 30.0


class BrowserError(Exception):
    """A DevTools command failed, or a script the test ran threw."""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page; a context manager that ends the browser."""

    def __init__(self, workdir: Path) -> None:
        program = chromium_path()
        if program is None:
            raise BrowserError("chromium is not installed (apt-get install chromium)")
        profile = workdir / "chromium-profile"
        profile.mkdir(parents=True)
        self._log = (workdir / "chromium.log").open("wb")
        self._process = subprocess.Popen(
            [
                program,
                "--headless=new",
                "--no-sandbox",  # tests run as root in CI
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "about:blank",
            ],
            stdout=self._log,
            stderr=self._log,
        )
        active_port = profile / "DevToolsActivePort"
        wait_for(active_port.is_file, timeout=30, what="chromium's DevTools port")
        port = active_port.read_text().split()[0]
        page = load_json_object(httpx.put(f"http://127.0.0.1:{port}/json/new", timeout=10).content)
        self._closing = ExitStack()
        self._socket: ClientConnection = self._closing.enter_context(
            connect(require_str(page, "webSocketDebuggerUrl"), max_size=None, proxy=None)
        )
        self._next_id = 0
        self.problems: list[str] = []
        for domain in ("Page", "Runtime", "Log"):
            self._call(f"{domain}.enable")

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._closing.close()
        stop(self._process, timeout=10)
        self._log.close()

    def _call(self, method: str, params: JSONObject | None = None) -> JSONObject:
        self._next_id += 1
        call_id = self._next_id
        self._socket.send(
            dump_json_object({"id": call_id, "method": method, "params": params or {}})
        )
        while True:
            message = load_json_object(self._socket.recv(timeout=CALL_TIMEOUT_S))
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return require_object(message, "result")
            self._note(message)

    def _note(self, message: JSONObject) -> None:
        """Keeps what the console would show as an error."""
        method, params = message.get("method"), message.get("params")
        if not isinstance(params, dict):
            return
        if method == "Runtime.exceptionThrown":
            details = require_object(params, "exceptionDetails")
            thrown = details.get("exception")
            text = thrown.get("description") if isinstance(thrown, dict) else None
            self.problems.append(f"exception: {text or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.problems.append(f"console.error: {params.get('args')}")
        elif method == "Log.entryAdded":
            entry = require_object(params, "entry")
            if entry.get("level") == "error":
                self.problems.append(f"{entry.get('source')}: {require_str(entry, 'text')}")

    def navigate(self, url: str) -> None:
        self._call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'", timeout=30)

    def evaluate(self, expression: str) -> JSONValue:
        """The expression's value (a promise is awaited), as JSON."""
        answer = self._call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression}: {answer['exceptionDetails']}")
        return require_object(answer, "result").get("value")

    def wait_for(self, expression: str, *, timeout: float) -> JSONValue:
        """Evaluates `expression` until it is truthy, and returns that value; an error (the
        page still loading after a click) counts as not yet."""
        deadline = time.monotonic() + timeout
        last: BrowserError | None = None
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError as error:
                value, last = None, error
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {expression}: {last}")
            time.sleep(0.1)

    def screenshot(self, path: Path) -> Path:
        """The whole page as a PNG, beyond the window when it is longer."""
        size = require_object(self._call("Page.getLayoutMetrics"), "cssContentSize")
        clip: JSONObject = {
            "x": 0,
            "y": 0,
            "width": require_float(size, "width"),
            "height": require_float(size, "height"),
            "scale": 1,
        }
        shot = self._call(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
        )
        path.write_bytes(base64.b64decode(require_str(shot, "data")))
        return path
