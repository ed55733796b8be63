"""`/ui`: the web page's static files (`api/ui/`: HTML, scripts, styles, the vendored chart
library), served without a key: they hold no data. The page asks for the API key once, keeps
it in sessionStorage and sends it on every /v1 call it makes.

Only the files found under `api/ui/` when the app is built are served, each by its path
relative to that folder: a name that is not in that list (`..`, an absolute path, a symlink, a
type not listed below) is 404, whatever it says. Every answer carries a Content-Security-
Policy that allows scripts, styles and connections only from this origin (no inline script,
no eval), and `nosniff`, so a file is only ever read as the type it is served with.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from model_trainer.errors import ModelTrainerError, quoted

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time: a new release's page never runs an old script.
    "Cache-Control": "no-cache",
}


def ui_files(directory: Path) -> dict[str, tuple[bytes, str]]:
    """The servable files under `directory` by their relative URL path, with their content
    and type: files of a listed type that really lie there (a symlink out is left out)."""
    root = directory.resolve()
    return {
        path.relative_to(directory).as_posix(): (path.read_bytes(), CONTENT_TYPES[path.suffix])
        for path in sorted(directory.rglob("*"))
        if path.suffix in CONTENT_TYPES and path.is_file() and path.resolve().is_relative_to(root)
    }


def build_ui_router(directory: Path = UI_DIR) -> APIRouter:
    """Read once, when the app is built: the files are small, and what is served cannot change
    under a running app."""
    router = APIRouter(include_in_schema=False)
    files = ui_files(directory)

    @router.api_route("/ui", methods=["GET", "HEAD"])
    def ui_root() -> RedirectResponse:
        """Relative links in the pages resolve against `/ui/`."""
        return RedirectResponse("/ui/", headers=SECURITY_HEADERS)

    @router.api_route("/ui/{name:path}", methods=["GET", "HEAD"])
    def ui_file(name: str) -> Response:
        found = files.get(name or INDEX)
        if found is None:
            raise ModelTrainerError("ROUTE_NOT_FOUND", f"no page file {quoted(name)} under /ui/")
        content, media_type = found
        return Response(content, media_type=media_type, headers=SECURITY_HEADERS)

    return router
