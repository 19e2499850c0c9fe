"""Start a guarded kernel: config, environment, sandbox, then ipykernel with the guards.

The server starts ``python -I -m jupyter_secure.kernel -f {connection_file}``
with ``JUPYTER_SECURE_KERNEL_CONFIG`` naming the guard config. The order of
the steps is the point of this module:

1. Inherited file descriptors above stderr are closed (Landlock does not
   restrict files that are already open).
2. The config is read and **deleted** (it holds the witness token and the
   masking key), then validated; anything wrong exits with code 78 and one
   line on stderr.
3. The environment is rebuilt from the allow-list and the per-kernel
   directories (``TMPDIR``, ``IPYTHONDIR``, ``JUPYTER_*_DIR``, …) are created
   in the private directory, mode 0700.
4. The Landlock sandbox is applied while the process has one thread, before
   numpy, pandas, zmq or ipykernel are imported (they start threads, and a
   thread that exists before the sandbox is outside it). Without Landlock the
   kernel refuses to start if ``sandbox.required``, else warns loudly.
5. Only then are the masking policy built (an invalid one also exits 78),
   ipykernel initialised, and the display guard and witness installed on
   ``app.shell`` before the kernel serves its first request.

Why user configuration cannot unload the guard: ``IPYTHONDIR`` is a fresh
private directory, so the user's ``~/.ipython`` profiles, startup files and
``ipython_kernel_config.py`` are never read; ``JUPYTER_CONFIG_DIR`` and
``JUPYTER_CONFIG_PATH`` are replaced or dropped, so only the installation's
and the system's Jupyter config apply; ``python -I`` ignores ``PYTHON*``
variables and the user site directory, so no ``sitecustomize``/``.pth`` of
the user's runs first. A cell can still remove the formatters: the kernel
runs the user's code, which is why the server's channel guard is
authoritative and this is the second line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from .config import CONFIG_ENV, ConfigInvalid, GuardConfig, load_config
from .environment import scrub_environment
from .sandbox import SandboxAction, SandboxError, apply_sandbox, landlock_abi, sandbox_action

__all__ = ["EXIT_CONFIG", "main"]

EXIT_CONFIG = 78
"""``EX_CONFIG`` from sysexits.h: the kernel refused to start."""


def _refuse(message: str) -> int:
    line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"jupyter-secure kernel: {line}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def _warn(message: str) -> None:
    banner = "!" * 72
    print(f"{banner}\njupyter-secure kernel: WARNING: {message}\n{banner}", file=sys.stderr)


def _close_inherited_fds() -> None:
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):  # the descriptor listdir itself used
                os.close(fd)


def _sandbox(cfg: GuardConfig) -> str | None:
    """Apply the sandbox as the config says; return a refusal message or None."""
    box = cfg.sandbox
    action = sandbox_action(landlock_abi(), box.required)
    if action is SandboxAction.REFUSE:
        return "sandbox.required is true but Landlock is not available on this system"
    if action is SandboxAction.WARN:
        _warn("Landlock is not available: this kernel runs WITHOUT a file-system sandbox")
        return None
    missing: list[str] = []
    try:
        apply_sandbox(box.read, box.write, box.read_files, box.private_dir, missing=missing)
    except SandboxError as err:
        if box.required:
            return f"sandbox: {err}"
        _warn(f"the sandbox could not be applied ({err}): this kernel runs WITHOUT it")
        return None
    for path in missing:
        if path in (*box.read, *box.write, *box.read_files):
            print(f"jupyter-secure kernel: sandbox: skipped missing {path}", file=sys.stderr)
    return None


def _role_policy(cfg: GuardConfig) -> Any:
    from jupyter_secure.masking import MaskingPolicy

    policy = MaskingPolicy.from_mapping(cfg.masking) if cfg.masking else MaskingPolicy()
    return policy.for_role(cfg.role, key=cfg.masking_key)


def _children_without_proc(kernel: Any) -> None:
    """Let ipykernel's child-process listing fail quietly inside the sandbox.

    At shutdown and interrupt ipykernel lists its children with psutil, which
    reads the whole of ``/proc``; the sandbox hides it (other processes'
    ``environ`` and ``cmdline`` there would hold their tokens), so every
    shutdown logged a PermissionError traceback. The children still end with
    the kernel: the server kills the kernel's process group after every stop
    (:func:`jupyter_secure.handlers.kernels.end_process_group`;
    ``tests/handlers/test_kernel_guard.py`` holds that).
    """
    listing = kernel._process_children

    def children() -> list[Any]:
        try:
            return list(listing())
        except PermissionError:
            return []
        except Exception as err:  # psutil.AccessDenied is not an OSError
            if type(err).__name__ == "AccessDenied":
                return []
            raise

    kernel._process_children = children


def main(argv: Sequence[str] | None = None) -> int:
    """Run the guarded kernel; return the exit code (78 when it refuses to start)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _close_inherited_fds()
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return _refuse(f"{CONFIG_ENV} is not set")
    try:
        cfg = load_config(path, delete=True)
    except ConfigInvalid as err:
        return _refuse(str(err))
    try:
        scrub_environment(cfg.env_keep, cfg.sandbox.private_dir)
    except OSError as err:
        return _refuse(f"sandbox.private_dir: cannot prepare it ({err.strerror})")
    refusal = _sandbox(cfg)
    if refusal is not None:
        return _refuse(refusal)

    from jupyter_secure.masking import ConfigError

    try:
        role_policy = _role_policy(cfg)
    except (ConfigError, ValueError, TypeError) as err:
        return _refuse(f"guard config: masking: {err}")

    from ipykernel.kernelapp import IPKernelApp

    from .display import install_display_guard
    from .session import KernelSession, install
    from .witness import Witness

    app: Any = IPKernelApp.instance()
    app.initialize(args)
    _children_without_proc(app.kernel)
    install_display_guard(app.shell, role_policy)
    if cfg.witness is not None:
        Witness(cfg.witness.url, cfg.witness.token, cfg.kernel_id).register(app.shell)
    endpoint = cfg.broker or cfg.trail  # one signed token serves both
    if endpoint is not None:
        broker_url = cfg.broker.url if cfg.broker is not None else None
        trail_url = cfg.trail.url if cfg.trail is not None else None
        install(KernelSession(cfg.kernel_id, cfg.user, broker_url, endpoint.token, trail_url))
    if cfg.broker is not None:
        from jupyter_secure import private

        private.load_ipython_extension(app.shell)  # %privacy_budget
    app.start()
    return 0
