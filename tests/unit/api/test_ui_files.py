"""The web page's static files: served at /ui without a key, with their types and a
Content-Security-Policy; nothing outside api/ui is ever served; the pages load nothing inline
and nothing from another origin; and a built wheel carries every file."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import fakeredis
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message, Scope

from model_trainer.api.app import create_app
from model_trainer.api.event_hub import EventHub
from model_trainer.api.routes.ui import CONTENT_SECURITY_POLICY, UI_DIR, ui_files
from model_trainer.settings import Settings

REPO = Path(__file__).resolve().parents[3]
PAGES = ("index.html", "job.html", "compare.html")


@pytest.fixture
def anonymous(settings: Settings, redis: fakeredis.FakeRedis, hub: EventHub) -> TestClient:
    """A client without a key: the page's files need none."""
    return TestClient(create_app(settings, redis, hub))


@pytest.mark.parametrize(
    ("path", "file", "content_type"),
    [
        ("/ui/", "index.html", "text/html; charset=utf-8"),
        ("/ui/index.html", "index.html", "text/html; charset=utf-8"),
        ("/ui/job.html", "job.html", "text/html; charset=utf-8"),
        ("/ui/compare.html", "compare.html", "text/html; charset=utf-8"),
        ("/ui/job.js", "job.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "style.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "favicon.svg", "image/svg+xml"),
        (
            "/ui/vendor/uPlot.iife.min.js",
            "vendor/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/ui/vendor/uPlot.min.css", "vendor/uPlot.min.css", "text/css; charset=utf-8"),
    ],
)
def test_files_are_served_with_their_type_and_policy(
    anonymous: TestClient, path: str, file: str, content_type: str
) -> None:
    response = anonymous.get(path)
    assert response.status_code == 200
    assert response.content == (UI_DIR / file).read_bytes()
    assert response.headers["content-type"] == content_type
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"


def test_head_answers_like_get_without_the_body(anonymous: TestClient) -> None:
    response = anonymous.head("/ui/job.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["content-length"] == str(len((UI_DIR / "job.js").read_bytes()))
    assert response.content == b""


def test_the_policy_allows_only_this_origin_and_no_inline_script() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_ui_redirects_to_its_folder(anonymous: TestClient) -> None:
    response = anonymous.get("/ui", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../app.py",
        "/ui/%2e%2e/app.py",
        "/ui/..%2fapp.py",
        "/ui/%2e%2e%2f%2e%2e%2fsettings.py",
        "/ui/vendor/../../app.py",
        "/ui//etc/passwd",
        "/ui/%2fetc%2fpasswd",
        "/ui/vendor/README.md",  # lies in the folder, but is not a type the page serves
        "/ui/vendor/uPlot.LICENSE",
        "/ui/missing.html",
        "/ui/index.html/",
        "/ui/INDEX.HTML",
    ],
)
def test_nothing_else_is_served(anonymous: TestClient, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ROUTE_NOT_FOUND"


def raw_status(app: FastAPI, path: str) -> int:
    """The status of a GET whose path reaches the app as it is (HTTP clients would remove the
    dot segments first; a hostile one need not)."""
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
    }
    asyncio.run(app(scope, receive, send))
    return statuses[0]


@pytest.mark.parametrize(
    "path", ["/ui/../api/app.py", "/ui/../../../../etc/passwd", "/ui/vendor/../../app.py"]
)
def test_dot_segments_that_reach_the_app_are_not_served(
    settings: Settings, redis: fakeredis.FakeRedis, hub: EventHub, path: str
) -> None:
    assert raw_status(create_app(settings, redis, hub), path) == 404
    assert raw_status(create_app(settings, redis, hub), "/ui/app.js") == 200


def test_a_symlink_out_of_the_folder_is_never_served(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.js").write_text("secret")
    ui = tmp_path / "ui"
    (ui / "sub").mkdir(parents=True)
    (ui / "page.html").write_text("<p>page</p>")
    (ui / "sub" / "deep.css").write_text("p {}")
    (ui / "sub" / "same.css").symlink_to(ui / "sub" / "deep.css")  # inside: fine
    (ui / "leak.js").symlink_to(outside / "secret.js")
    (ui / "linked").symlink_to(outside, target_is_directory=True)
    (ui / "notes.py").write_text("print()")
    files = ui_files(ui)
    assert sorted(files) == ["page.html", "sub/deep.css", "sub/same.css"]
    assert files["sub/deep.css"] == (b"p {}", "text/css; charset=utf-8")


class _References(HTMLParser):
    """What a page loads and anything that would run or style inline."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src") is None:
            self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{tag} {name}=")
            if name in ("src", "href") and value is not None and tag != "a":
                self.loads.append(value)


@pytest.mark.parametrize("page", PAGES)
def test_pages_load_only_their_own_files_and_nothing_inline(
    anonymous: TestClient, page: str
) -> None:
    parser = _References()
    parser.feed((UI_DIR / page).read_text())
    assert parser.inline == []
    assert parser.loads, "a page loads its script and style"
    for reference in parser.loads:
        assert "//" not in reference and ":" not in reference, reference  # no CDN, no data
        assert anonymous.get(f"/ui/{reference}").status_code == 200, reference


def test_scripts_import_only_their_own_modules_and_never_write_html(
    anonymous: TestClient,
) -> None:
    """Data reaches the page as text nodes only: no HTML parsing of what the API returned."""
    for script in UI_DIR.glob("*.js"):
        source = script.read_text()
        for module in re.findall(r'\bfrom\s+"([^"]+)"', source):
            assert module.startswith("./"), (script.name, module)
            assert anonymous.get(f"/ui/{module[2:]}").status_code == 200, module
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, (script.name, sink)


def test_a_built_wheel_carries_every_file(tmp_path: Path) -> None:
    """`pip wheel` of a copy of the sources (the checkout stays clean): an installed package
    serves the same files as this checkout."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("libs", "services"):
        shutil.copytree(
            REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
            *("-w", str(tmp_path / "dist"), str(source)),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"model_trainer/api/ui/{name}" for name in ui_files(UI_DIR)}
    assert set(PAGES) <= set(ui_files(UI_DIR))
    assert expected <= packaged
    assert "model_trainer/api/ui/vendor/uPlot.LICENSE" in packaged
