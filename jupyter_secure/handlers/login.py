"""The sign-in pages: plain HTML forms with XSRF, for browsers and test clients alike.

``/login`` (user name + password) → ``/login/mfa`` (a code or a recovery
code) or ``/login/enroll`` (QR code, secret, first code, then recovery codes)
→ the page asked for. ``/login/reauth`` re-confirms a code for sensitive
actions, ``/logout`` ends the session on the server. Every page is served
``Cache-Control: no-store``; every form is checked against the XSRF cookie.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from markupsafe import Markup
from tornado import web

from ..identity import sessions
from .base import SecureHandlerMixin, run_blocking, safe_next

__all__ = ["EnrollHandler", "LoginHandler", "LogoutHandler", "MfaHandler", "ReauthHandler"]

EXPIRED = "Your sign-in expired or was not started here. Sign in again."


class _Page(SecureHandlerMixin, JupyterHandler):
    """A sign-in page."""

    def next_url(self) -> str:
        return safe_next(self, self.get_argument("next", ""))

    def page_url(self, name: str, next_url: str | None = None) -> str:
        url = url_path_join(self.base_url, name)
        target = next_url or self.next_url()
        return f"{url}?{urlencode({'next': target})}" if target else url

    def fail(self, template: str, outcome: Any, **values: Any) -> None:
        if outcome.retry_after:
            self.set_status(429)
            self.set_header("Retry-After", str(max(1, round(outcome.retry_after))))
        else:
            self.set_status(401)
        self.render_page(template, message=outcome.message, next=self.next_url(), **values)


class LoginHandler(_Page):
    """User name and password."""

    @allow_unauthenticated
    def get(self) -> None:
        if self.current_user is not None:
            self.redirect(self.next_url())
            return
        self.render_page("login.html", action=self.page_url("login"), next=self.next_url())

    @allow_unauthenticated
    async def post(self) -> None:
        outcome = await run_blocking(
            self.signin.password,
            self.get_body_argument("username", ""),
            self.get_body_argument("password", ""),
            ip=self.client_ip,
            user_agent=self.user_agent,
            previous=self.session_token() or None,
        )
        if not outcome.ok:
            self.fail("login.html", outcome, action=self.page_url("login"))
            return
        self.set_session_cookie(outcome.token)
        target = self.next_url()
        if outcome.next == "mfa":
            self.redirect(self.page_url("login/mfa", target))
        elif outcome.next == "enroll":
            self.redirect(self.page_url("login/enroll", target))
        else:
            self.redirect(target)


class MfaHandler(_Page):
    """The second factor: a TOTP code, or a recovery code."""

    @allow_unauthenticated
    async def get(self) -> None:
        found = await run_blocking(
            self.signin.pending, self.session_token(), sessions.STAGE_PASSWORD
        )
        if found is None:
            self.redirect(self.page_url("login"))
            return
        self.render_page(
            "mfa.html", action=self.page_url("login/mfa"), next=self.next_url(), user=found[1].name
        )

    @allow_unauthenticated
    async def post(self) -> None:
        outcome = await run_blocking(
            self.signin.second_factor,
            self.session_token(),
            otp=self.get_body_argument("otp", "") or None,
            recovery_code=self.get_body_argument("recovery_code", "") or None,
            ip=self.client_ip,
            user_agent=self.user_agent,
        )
        if outcome.error == "expired":
            self.clear_session_cookie()
            self.set_status(401)
            self.render_page(
                "login.html", message=EXPIRED, action=self.page_url("login"), next=self.next_url()
            )
            return
        if not outcome.ok:
            found = await run_blocking(
                self.signin.pending, self.session_token(), sessions.STAGE_PASSWORD
            )
            user = found[1].name if found else ""
            self.fail("mfa.html", outcome, action=self.page_url("login/mfa"), user=user)
            return
        self.set_session_cookie(outcome.token)
        self.redirect(self.next_url())


class EnrollHandler(_Page):
    """Enrolment of a TOTP authenticator, confirmed by a first code."""

    @allow_unauthenticated
    async def get(self) -> None:
        enrollment = await run_blocking(self.signin.enrollment, self.session_token())
        if enrollment is None:
            self.redirect(self.page_url("login"))
            return
        self.render_enrollment(enrollment)

    def render_enrollment(self, enrollment: Any, message: str = "") -> None:
        secret = enrollment.secret
        self.render_page(
            "enroll.html",
            message=message,
            action=self.page_url("login/enroll"),
            next=self.next_url(),
            user=enrollment.user,
            # qrcode's SVG of our otpauth URI (user names are [a-z0-9._-]): no markup of anyone's
            qr_svg=Markup(enrollment.qr_svg),  # noqa: S704
            uri=enrollment.uri,
            secret=secret,
            secret_grouped=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        )

    @allow_unauthenticated
    async def post(self) -> None:
        token = self.session_token()
        outcome = await run_blocking(
            self.signin.finish_enrollment,
            token,
            self.get_body_argument("otp", ""),
            ip=self.client_ip,
            user_agent=self.user_agent,
        )
        if outcome.error == "expired":
            self.clear_session_cookie()
            self.redirect(self.page_url("login"))
            return
        if not outcome.ok:
            enrollment = await run_blocking(self.signin.enrollment, token)
            if enrollment is None:
                self.redirect(self.page_url("login"))
                return
            self.set_status(429 if outcome.retry_after else 401)
            self.render_enrollment(enrollment, outcome.message)
            return
        self.set_session_cookie(outcome.token)
        self.render_page("recovery_codes.html", codes=outcome.recovery_codes, next=self.next_url())


class ReauthHandler(_Page):
    """Step-up: a fresh code for a sensitive action, then back to it."""

    @web.authenticated
    def get(self) -> None:
        if self.current_user.session_id is None:
            raise web.HTTPError(403, "API tokens cannot step up")
        self.render_page("reauth.html", action=self.page_url("login/reauth"), next=self.next_url())

    @web.authenticated
    async def post(self) -> None:
        if self.current_user.session_id is None:
            raise web.HTTPError(403, "API tokens cannot step up")
        outcome = await run_blocking(
            self.signin.step_up,
            self.session_token(),
            self.get_body_argument("otp", ""),
            ip=self.client_ip,
            user_agent=self.user_agent,
        )
        if not outcome.ok:
            self.fail("reauth.html", outcome, action=self.page_url("login/reauth"))
            return
        self.redirect(self.next_url())


class LogoutHandler(_Page):
    """End the session on the server, then forget the cookie.

    Signing out changes state, so it is a POST with an XSRF token; a GET (JupyterLab's
    menu, a link) shows a one-button confirmation. An image in a shared notebook
    pointing at /logout therefore signs nobody out.
    """

    @allow_unauthenticated
    def get(self) -> None:
        if not self.session_token():
            self.render_page("logged_out.html", login=url_path_join(self.base_url, "login"))
            return
        self.render_page("logout.html", action=url_path_join(self.base_url, "logout"))

    @allow_unauthenticated
    async def post(self) -> None:
        token = self.session_token()
        if token:
            await run_blocking(
                self.signin.logout, token, ip=self.client_ip, user_agent=self.user_agent
            )
        self.clear_session_cookie()
        self.render_page("logged_out.html", login=url_path_join(self.base_url, "login"))
