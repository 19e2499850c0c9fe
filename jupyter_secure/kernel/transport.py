"""How kernel-side clients talk to the server: one opener, one way to read a refusal.

``jupyter_secure.private`` (the broker) and ``jupyter_secure.trail`` (the audit
trail) both send the kernel's signed token. It must reach the URL the launcher
gave and nothing else: never through a proxy (an ``http_proxy`` in the
environment must not see it) and never after a redirect (which would carry the
``Authorization`` header elsewhere). Standard library only: this runs inside
the sandboxed kernel.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import Any, Final

__all__ = ["OPENER", "error_body"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the kernel token goes to the server's URL and nowhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


#: No proxy, no redirects.
OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def error_body(err: urllib.error.HTTPError) -> bytes | None:
    """The body of a refusal (the server's JSON reason), or None if it cannot be read.

    Always closes the response, so a refused request leaves no socket behind.
    """
    try:
        return err.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        err.close()
