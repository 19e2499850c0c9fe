"""Who this guarded kernel serves, and how it reaches the private-query broker.

The launcher installs one :class:`KernelSession` from the guard config before
IPython starts; :mod:`jupyter_secure.private` reads it. The token is the
kernel's own, issued by the server for this launch only and bound to this
kernel and its owner: code in the notebook can read it (it is the same
process), but all it can do with it is act as the notebook's own user, which
that code already does. A restart issues a new token; the old one dies with
the kernel.

Pure: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KernelSession", "current", "install"]


@dataclass(frozen=True)
class KernelSession:
    """The identity a guarded kernel acts with (set once, at launch)."""

    kernel_id: str
    user: str
    broker_url: str | None
    token: str
    #: the server's ``/secure/api/trail`` (``jupyter_secure.trail``), or None
    trail_url: str | None = None

    def __repr__(self) -> str:  # the token never appears in logs or tracebacks
        return (
            f"KernelSession(kernel_id={self.kernel_id!r}, user={self.user!r}, "
            f"broker_url={self.broker_url!r}, trail_url={self.trail_url!r}, token=<hidden>)"
        )


_slot: list[KernelSession] = []


def install(session: KernelSession) -> None:
    """Set the session, once: a second call (say, from notebook code) is refused."""
    if _slot:
        raise RuntimeError("the kernel session is set once, at launch")
    _slot.append(session)


def current() -> KernelSession | None:
    """The session, or None outside a guarded kernel."""
    return _slot[0] if _slot else None
