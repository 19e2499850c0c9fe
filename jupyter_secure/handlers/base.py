"""What the sign-in pages and jupyter-secure's API handlers share.

The sign-in service lives in the tornado settings (put there by SecureApp);
the session cookie is ours, HttpOnly, SameSite=Strict, Secure over HTTPS,
scoped to the server's base URL and named per port so that two servers on
one host do not share it.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from http.client import responses
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import jinja2
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from markupsafe import Markup
from tornado import web

from ..identity.signin import SignIn

__all__ = ["JsonErrors", "SecureHandlerMixin", "cookie_name", "run_blocking", "safe_next"]

SIGNIN_SETTING = "jupyter_secure_signin"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=True,
)
T = TypeVar("T")


async def run_blocking(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run database and Argon2 work off the event loop (Argon2 takes ~50 ms of CPU)."""
    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))


def cookie_name(handler: web.RequestHandler) -> str:
    port = handler.request.host.rpartition(":")[2] if ":" in handler.request.host else "default"
    safe = "".join(ch for ch in port if ch.isalnum())
    return f"jupyter-secure-session-{safe}"


def safe_next(handler: JupyterHandler, value: str | None) -> str:
    """A redirect target inside this server, never elsewhere (no open redirect)."""
    base = handler.base_url
    default = url_path_join(base, "lab")
    if not value:
        return default
    parsed = urlparse(value)
    if parsed.scheme or parsed.netloc or not parsed.path.startswith(base) or "\\" in value:
        return default
    if value.startswith("//"):
        return default
    return value


class SecureHandlerMixin:
    """Helpers for handlers that are a JupyterHandler."""

    @property
    def signin(self: Any) -> SignIn:
        service = self.settings.get(SIGNIN_SETTING)
        if service is None:  # the extension did not load: refuse rather than guess
            raise web.HTTPError(503, "sign-in is not available")
        return service  # type: ignore[no-any-return]

    @property
    def client_ip(self: Any) -> str | None:
        return self.request.remote_ip  # type: ignore[no-any-return]

    @property
    def user_agent(self: Any) -> str | None:
        return self.request.headers.get("User-Agent")  # type: ignore[no-any-return]

    def session_token(self: Any) -> str:
        return self.get_cookie(cookie_name(self)) or ""

    def set_session_cookie(self: Any, token: str) -> None:
        self.set_cookie(
            cookie_name(self),
            token,
            path=self.base_url,
            httponly=True,
            secure=self.request.protocol == "https" or self.signin.policy.always_secure_cookie,
            samesite="Strict",
        )

    def clear_session_cookie(self: Any) -> None:
        self.clear_cookie(cookie_name(self), path=self.base_url)

    def no_store(self: Any) -> None:
        """Pages with codes and secrets must not be kept by caches or the back button."""
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")

    def render_page(self: Any, template: str, **values: Any) -> None:
        self.no_store()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        page = TEMPLATES.get_template(template)
        xsrf = Markup(self.xsrf_form_html())  # noqa: S704 - tornado's own escaped <input>
        self.finish(page.render(xsrf=xsrf, **values))

    def json_error(self: Any, status: int, error: str, **extra: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": error, **extra}))


class JsonErrors:
    """For REST handlers (before APIHandler in the bases): errors raised before the
    handler runs — the route guard's 403, a refused XSRF check — in the REST contract's
    shape, ``{"error": text}``, keeping jupyter_server's ``message`` for clients that
    read it. Never a traceback."""

    def write_error(self: Any, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        text = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else None
        text = text or responses.get(status_code, "error")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": text, "message": text}))
