"""What an alarm does besides being recorded: lock, end sessions, webhook, mail.

The ``AlarmRaised`` record is always written first, by the monitor. The
actions here then run one at a time on a worker thread of their own, so a
slow webhook never delays the next evaluation; each outcome, success or
failure, is an ``AlarmAction`` record. ``lock`` and ``end_sessions`` act on
the user in the alarm's key and never on anyone else.

The webhook is a JSON POST with a timeout and a few retries with backoff
(a 4xx other than 408/429 is not retried: the receiver refused it). When
``webhook_secret`` is set the body is signed, ``X-Jupyter-Secure-Signature:
sha256=<hex HMAC of the body>``, so the receiver can tell a real alarm from a
forged one. Mail goes through SMTP, with STARTTLS unless turned off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from ..audit.logger import AuditLogger, Identity, Resource
from ..errors import InvalidInput
from ..kernel.config import is_http_url
from .engine import ALARM, Transition

__all__ = ["ActionRunner", "AlarmActions", "alarm_payload"]

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
#: What runs on the containment worker (never behind a slow webhook).
CONTAINMENT = ("lock", "end_sessions")
#: Actions waiting beyond this many are refused (and recorded as refused), per worker.
QUEUE_LIMIT = 1000


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is a failure: following it would send the signature and
    any Authorization header to wherever the redirect points (as a GET, without the body)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class AlarmActions(LoggingConfigurable):
    """Where alarms are sent (webhook, mail); lock and end_sessions need no settings."""

    webhook_url = Unicode(
        "",
        help="""URL the webhook action POSTs each alarm to as JSON (raised and
        resolved). Empty: the webhook action is skipped, and recorded as skipped.""",
    ).tag(config=True)

    @validate("webhook_url")
    def _valid_url(self, proposal: Any) -> str:
        url = str(proposal["value"]).strip()
        if url and not is_http_url(url):
            raise TraitError(f"AlarmActions.webhook_url: expected an http(s) URL, got {url!r}")
        return url

    def check(self) -> None:
        """Refuse settings that would leak alarms (checked once every trait is set)."""
        url = self.webhook_url
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        plain = url.lower().startswith("http://")
        if plain and host not in _LOOPBACK and not self.webhook_allow_http:
            raise InvalidInput(
                "AlarmActions.webhook_url",
                "use https (alarm bodies name users, and headers may carry "
                "credentials), or set AlarmActions.webhook_allow_http = True",
            )

    webhook_allow_http = Bool(
        False,
        help="""Allow a plain-http webhook_url to a host other than this machine
        (loopback is always allowed). Bodies name users and keys; prefer https.""",
    ).tag(config=True)

    webhook_secret = Unicode(
        "",
        help="""Key for signing webhook bodies: each POST carries
        X-Jupyter-Secure-Signature: sha256=<HMAC-SHA256 of the body>. Empty: unsigned.""",
    ).tag(config=True)

    webhook_timeout = Float(
        5.0, min=0.1, max=60.0, help="Seconds to wait for the webhook to answer, per attempt."
    ).tag(config=True)

    webhook_attempts = Int(
        3, min=1, max=10, help="Attempts per alarm (with 1 s, 2 s, 4 s … between them)."
    ).tag(config=True)

    email_to = List(
        Unicode(),
        default_value=[],
        help="Addresses the email action sends alarms to. Empty: the email action is skipped.",
    ).tag(config=True)

    email_from = Unicode("jupyter-secure@localhost", help="The From address of alarm mail.").tag(
        config=True
    )

    smtp_host = Unicode("localhost", help="SMTP server for alarm mail.").tag(config=True)
    smtp_port = Int(25, min=1, max=65535, help="SMTP port.").tag(config=True)
    smtp_starttls = Bool(
        True,
        help="""Upgrade the SMTP connection with STARTTLS before sending (and
        refuse to send if the server does not offer it). Turn off only for a
        relay on the same host.""",
    ).tag(config=True)
    smtp_user = Unicode("", help="SMTP user name (empty: no login).").tag(config=True)
    smtp_password = Unicode("", help="SMTP password (prefer a local relay that needs none).").tag(
        config=True
    )

    site = Unicode(
        "", help="A name for this site in webhook bodies and mail subjects (default: none)."
    ).tag(config=True)

    extra_headers = Dict(
        value_trait=Unicode(),
        default_value={},
        help="Extra HTTP headers for the webhook (e.g. an Authorization header).",
    ).tag(config=True)


def alarm_payload(t: Transition, site: str = "") -> dict[str, Any]:
    """The JSON a webhook receives (and the facts a mail shows)."""
    return {
        "version": 1,
        "site": site or None,
        "alarmId": t.alarm_id,
        "rule": t.rule.name,
        "description": t.rule.description,
        "severity": t.rule.severity,
        "key": t.key,
        "state": t.state,
        "previousState": t.previous,
        "reason": t.reason,
        "value": t.value,
        "threshold": t.threshold,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t.t)),
    }


class ActionRunner:
    """Runs alarm actions on two worker threads and records each outcome.

    Containment (``lock``, ``end_sessions``) has a worker of its own, so a flood of
    alarms waiting on a slow webhook never delays locking an account. Each queue is
    bounded; an action refused because its queue is full, or still queued when the
    server stops, is recorded as such rather than lost silently.
    """

    def __init__(
        self,
        config: AlarmActions,
        audit: AuditLogger,
        *,
        lock: Callable[[str, str], bool] | None = None,
        end_sessions: Callable[[str, str], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        config.check()
        self.config = config
        self.audit = audit
        self.lock = lock
        self.end_sessions = end_sessions
        self.sleep = sleep
        self._queues: dict[str, queue.Queue[tuple[Transition, str] | None]] = {
            "containment": queue.Queue(QUEUE_LIMIT),
            "notify": queue.Queue(QUEUE_LIMIT),
        }
        self._threads: list[threading.Thread] = []
        self.failures = 0

    def start(self) -> None:
        for name, q in self._queues.items():
            thread = threading.Thread(
                target=self._run, args=(q,), name=f"alarm-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        for q in self._queues.values():
            self._drop_queued(q, "the server stopped before it ran")
            q.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def submit(self, transition: Transition, actions: tuple[str, ...] | None = None) -> None:
        """Queue the actions of ``transition`` (its rule's, unless given)."""
        wanted = transition.rule.actions if actions is None else actions
        if transition.state != ALARM:
            # Only notifications follow a resolution; nobody is locked by one.
            wanted = tuple(a for a in wanted if a in ("webhook", "email"))
        for action in wanted:
            if not self._threads:
                self._act(transition, action)
                continue
            q = self._queues["containment" if action in CONTAINMENT else "notify"]
            try:
                q.put_nowait((transition, action))
            except queue.Full:
                self.failures += 1
                self._record(transition, action, None, "QueueFull",
                             f"more than {QUEUE_LIMIT} alarm actions waiting")  # fmt: skip

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until queued actions have run (tests and orderly stops)."""
        end = time.monotonic() + timeout
        while any(q.unfinished_tasks for q in self._queues.values()):
            if time.monotonic() > end:
                return
            time.sleep(0.02)

    def _drop_queued(self, q: queue.Queue[tuple[Transition, str] | None], why: str) -> None:
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._record(item[0], item[1], {"outcome": "skipped", "detail": why})
            q.task_done()

    def _run(self, q: queue.Queue[tuple[Transition, str] | None]) -> None:
        while True:
            item = q.get()
            try:
                if item is None:
                    return
                self._act(*item)
            finally:
                q.task_done()

    def _act(self, transition: Transition, action: str) -> None:
        try:
            outcome, detail = getattr(self, f"_{action}")(transition)
        except Exception as exc:  # recorded, never raised into the monitor
            self.failures += 1
            self._record(transition, action, None, type(exc).__name__, str(exc)[:500])
        else:
            self._record(transition, action, {"outcome": outcome, "detail": detail[:500]})

    def _record(
        self,
        t: Transition,
        action: str,
        response: dict[str, Any] | None,
        error: str | None = None,
        message: str | None = None,
    ) -> None:
        self.audit.submit(
            "AlarmAction",
            identity=Identity.system(),
            request={"alarmId": t.alarm_id, "rule": t.rule.name, "key": t.key, "action": action},
            response=response,
            error_code=error,
            error_message=message,
            resources=[Resource("alarm", t.alarm_id)],
        )

    # -- the actions --------------------------------------------------------------------------
    def _lock(self, t: Transition) -> tuple[str, str]:
        if t.user is None or self.lock is None:
            return "skipped", "no user in the alarm's key" if t.user is None else "not available"
        locked = self.lock(t.user, f"alarm:{t.rule.name}")
        return ("done", f"{t.user} locked") if locked else ("skipped", "already locked")

    def _end_sessions(self, t: Transition) -> tuple[str, str]:
        if t.user is None or self.end_sessions is None:
            return "skipped", "no user in the alarm's key" if t.user is None else "not available"
        ended = self.end_sessions(t.user, "alarm")
        return "done", f"{ended} session(s) of {t.user} ended"

    def _webhook(self, t: Transition) -> tuple[str, str]:
        cfg = self.config
        if not cfg.webhook_url:
            return "skipped", "AlarmActions.webhook_url is not set"
        body = json.dumps(alarm_payload(t, cfg.site), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "jupyter-secure-alarms"}
        headers.update(cfg.extra_headers)
        if cfg.webhook_secret:
            mac = hmac.new(cfg.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Jupyter-Secure-Signature"] = f"sha256={mac}"
        last = ""
        for attempt in range(1, cfg.webhook_attempts + 1):
            # The URL's scheme is checked to be http(s) when configured (_valid_url).
            request = urllib.request.Request(cfg.webhook_url, body, headers, method="POST")  # noqa: S310
            try:
                with _OPENER.open(request, timeout=cfg.webhook_timeout) as answer:
                    return "done", f"HTTP {answer.status} after {attempt} attempt(s)"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if 300 <= exc.code < 500 and exc.code not in (408, 429):
                    break  # refused, or a redirect (never followed): retrying will not help
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
            if attempt < cfg.webhook_attempts:
                self.sleep(2.0 ** (attempt - 1))
        raise RuntimeError(f"webhook failed after {attempt} attempt(s): {last}")

    def _email(self, t: Transition) -> tuple[str, str]:
        cfg = self.config
        if not cfg.email_to:
            return "skipped", "AlarmActions.email_to is not set"
        facts = alarm_payload(t, cfg.site)
        msg = EmailMessage()
        where = f"[{cfg.site}] " if cfg.site else ""
        msg["Subject"] = f"{where}{t.state}: {t.rule.name} ({t.key})"[:200]
        msg["From"] = cfg.email_from
        msg["To"] = ", ".join(cfg.email_to)
        msg.set_content("\n".join(f"{k}: {v}" for k, v in facts.items()))
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.webhook_timeout) as smtp:
            if cfg.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if cfg.smtp_user:
                smtp.login(cfg.smtp_user, cfg.smtp_password)
            smtp.send_message(msg)
        return "done", f"sent to {len(cfg.email_to)} recipient(s)"
