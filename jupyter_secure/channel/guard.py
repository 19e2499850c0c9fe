"""KernelGuard: the server's side of guarded kernels, in one object.

It decides what a websocket client may send a kernel (:mod:`.messages` and the
policy), records executions in the audit trail, masks what comes back
(:class:`~.outputs.OutputMasker` per person), prepares each guarded kernel's
launch (a per-kernel private directory, a scrubbed environment, the sandbox
plan and a guard file the kernel reads once and deletes) and checks what the
kernel's witness reports against what went through the guard
(:class:`~.reconcile.ExecutionLedger`).

No tornado or jupyter_server imports: the websocket connection class and the
kernel manager call it, and the tests drive it directly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from ..audit.logger import AuditLogger, Identity, Resource
from ..kernel.environment import build_environment
from ..kernel.sandbox import landlock_abi
from ..masking import MaskingPolicy, RolePolicy
from ..monitoring import metrics
from ..policy import Decision, LivePolicy, Principal
from ..privacy.tokens import TokenSigner
from .audience import Audience, masking_role
from .messages import rule_for
from .outputs import OutputMasker
from .pool import MaskingPool
from .reconcile import ExecutionLedger
from .sandbox_plan import plan_workspace

__all__ = ["DEFAULT_ENV_KEEP", "GUARD_CONFIG_ENV", "KernelGuard", "Person", "landlock_abi"]

#: The environment variable naming the guard file (read by jupyter_secure.kernel).
GUARD_CONFIG_ENV = "JUPYTER_SECURE_KERNEL_CONFIG"
#: Variables a guarded kernel keeps from the server's environment; everything else
#: (keys, tokens, database URLs, cloud credentials) is dropped.
DEFAULT_ENV_KEEP: tuple[str, ...] = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "USER",
    "LOGNAME",
    "SHELL",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "JPY_PARENT_PID",
    "JPY_SESSION_NAME",
    "MPLBACKEND",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYDEVD_DISABLE_FILE_VALIDATION",
)


@dataclass(frozen=True)
class Person:
    """Who is on the other end of a connection, as the server session says."""

    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    #: an API token's scopes (None: the session's full permissions)
    token_scopes: frozenset[str] | None = None
    session_id: str | None = None

    @classmethod
    def of(cls, user: Any) -> Person:
        """From the server's user object (a SecureUser: username, roles, groups, …)."""
        return cls(
            str(user.username),
            tuple(getattr(user, "roles", ())),
            tuple(getattr(user, "groups", ())),
            getattr(user, "scopes", None),
            getattr(user, "session_id", None),
        )

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.roles, self.groups)

    def identity(self) -> Identity:
        return Identity(
            "User",
            self.name,
            tuple(sorted(self.roles)),
            tuple(sorted(self.groups)),
            session_id=self.session_id,
        )


@dataclass
class _Launch:
    kernel_id: str
    owner: str
    private_dir: str
    token_hash: str


class KernelGuard(LoggingConfigurable):
    """Decisions, records and launch preparation for guarded kernels."""

    env_keep = List(
        Unicode(),
        default_value=list(DEFAULT_ENV_KEEP),
        help="""Environment variables a guarded kernel keeps from the server's
        environment (exact names, or a prefix ending in '*'). Everything else is
        dropped before the kernel starts, so secrets in the server's environment
        ($JUPYTER_SECURE_KEY, database URLs, cloud credentials) never reach
        notebook code. JUPYTER_SECURE_* is dropped whatever this says.""",
    ).tag(config=True)

    max_message_bytes = Int(
        16 * 1024 * 1024,
        min=1024,
        help="""Largest websocket frame a client may send to a kernel, in bytes;
        larger frames are dropped and recorded as KernelMessageRefused.""",
    ).tag(config=True)

    mask_workers = Int(
        2,
        min=0,
        help="""Processes that mask long outputs in parallel, off the server's
        event loop (0: mask every output on the event loop, which then answers
        nobody else while it masks).""",
    ).tag(config=True)

    mask_in_pool_bytes = Int(
        64 * 1024,
        min=1024,
        help="""Kernel messages at least this large are masked in the worker
        processes (split into mask_workers pieces); smaller ones on the event
        loop, where they cost less than the hand-over.""",
    ).tag(config=True)

    private_root = Unicode(
        "",
        help="""Where each guarded kernel's private directory (temporary files,
        IPython profile, caches) is made, mode 0700. Empty: the system's
        temporary directory. Must not be inside the state directory.""",
    ).tag(config=True)

    broker_token_hours = Float(
        24.0,
        min=0.01,
        help="""How long a kernel's broker token (its credential for private
        queries and for jupyter_secure.trail) is valid. The server's own broker
        also requires the kernel to be alive; a broker run as a separate service
        relies on this expiry, so keep
        it short there (a kernel older than this must be restarted to query).""",
    ).tag(config=True)

    def __init__(
        self,
        *,
        policy: LivePolicy,
        masking: MaskingPolicy,
        masking_key: bytes,
        audit: AuditLogger,
        root_dir: str,
        forbidden: tuple[str, ...],
        require_sandbox: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.audience = Audience(masking, masking_key)
        self.audit = audit
        self.root_dir = root_dir
        self.forbidden = forbidden
        self.require_sandbox = require_sandbox
        self.abi = landlock_abi()
        self.ledger = ExecutionLedger()
        #: the server's ``…/secure/api/kernels`` URL, asked at each launch (the port is
        #: only certain once the server listens); set by SecureApp
        self.witness_base: Callable[[], str] | None = None
        #: Base URL of the private-query broker the kernel's ``jupyter_secure.private`` calls.
        self.broker_base: Callable[[], str] | None = None
        #: Base URL of the server's ``/secure/api/trail`` routes (``jupyter_secure.trail``),
        #: which take the same signed token as the broker.
        self.trail_base: Callable[[], str] | None = None
        #: Signs each launch's broker token (set by SecureApp with the store's key).
        self.broker_signer: TokenSigner | None = None
        #: The protected data sits in this server's state directory (the in-process
        #: broker): every kernel given a broker token must then be sandboxed, or refuse
        #: to start, since an unsandboxed kernel could read the data directly.
        self.guards_private_data = False
        self._broker_tokens: dict[str, str] = {}  # kernel id -> sha256 of its current token
        self._launches: dict[str, _Launch] = {}
        self._tokens: dict[str, str] = {}  # sha256(token) -> kernel id
        self.pool = MaskingPool(self.mask_workers, self.mask_in_pool_bytes)

    def close(self) -> None:
        """Stop the masking processes (the server is stopping)."""
        self.pool.close()

    # -- who may send what --------------------------------------------------------------
    def scopes_of(self, person: Person) -> frozenset[str]:
        scopes = self.policy.current.effective_scopes(person.principal)
        if person.token_scopes is not None:
            scopes = scopes & person.token_scopes
        return scopes

    def check_message(self, person: Person, channel: str, msg_type: str, owner: str) -> Decision:
        """May ``person`` send ``msg_type`` on ``channel`` to ``owner``'s kernel?"""
        known, scope = rule_for(channel, msg_type)
        if not known:
            return Decision(False, "", f"default deny: {channel}/{msg_type} is not a known message")
        if scope is None:
            return Decision(True, "", f"{msg_type} needs no scope")
        decision = self.policy.current.decide(person.principal, scope, owner=owner)
        if decision and person.token_scopes is not None and scope not in person.token_scopes:
            return Decision(False, scope, f"the API token does not hold {scope}")
        return decision

    def masker_for(self, person: Person) -> OutputMasker:
        return OutputMasker(self.role_policy(person))

    def role_policy(self, person: Person) -> RolePolicy:
        return self.audience.role_policy(person.name, person.roles, self.scopes_of(person))

    # -- records -----------------------------------------------------------------------
    def execute_requested(
        self,
        person: Person,
        *,
        kernel_id: str,
        owner: str,
        msg_id: str,
        code: str,
        cell_id: str | None,
        notebook: str,
        silent: bool,
        source_ip: str | None = None,
    ) -> None:
        """Record the request (queued ahead of the forward) and note it for reconciling."""
        request: dict[str, Any] = {
            "kernelId": kernel_id,
            "owner": owner,
            "msgId": msg_id,
            "notebook": notebook,
            "silent": silent,
            **self.audit.code_fields(code),
        }
        if cell_id:
            request["cellId"] = cell_id[:200]
        self.audit.submit(
            "CellExecuteRequested",
            identity=person.identity(),
            source_ip=source_ip,
            request=request,
            resources=[Resource("kernel", kernel_id)],
        )
        self.ledger.forwarded(kernel_id, msg_id, person.name)

    def execute_replied(self, kernel_id: str, msg_id: str, content: Mapping[str, Any]) -> None:
        """Record the reply to a request this guard forwarded (others are not ours)."""
        entry = self.ledger.replied(kernel_id, msg_id)
        if entry is None:
            return  # not a request this guard sent to this kernel, or answered already
        response: dict[str, Any] = {
            "status": str(content.get("status", "")),
            "executionCount": content.get("execution_count")
            if isinstance(content.get("execution_count"), int)
            else None,
            "durationMs": round((self.ledger.clock() - entry.at) * 1e3, 3),
        }
        if content.get("status") == "error":
            response["ename"] = str(content.get("ename", ""))[:200]
        self.audit.submit(
            "CellExecuted",
            identity=Identity("User", entry.user, (), ()),
            request={"kernelId": kernel_id, "msgId": msg_id},
            response=response,
            resources=[Resource("kernel", kernel_id)],
        )

    def refused(
        self,
        person: Person | None,
        decision: Decision,
        *,
        kernel_id: str,
        owner: str,
        channel: str,
        msg_type: str,
        size: int,
        error_code: str = "AccessDenied",
        source_ip: str | None = None,
    ) -> None:
        self.audit.submit(
            "KernelMessageRefused",
            identity=person.identity() if person else Identity("User", "(unknown)", (), ()),
            source_ip=source_ip,
            request={
                "kernelId": kernel_id,
                "owner": owner,
                "channel": channel[:40],
                "msgType": msg_type[:80],
                "scope": decision.scope,
                "bytes": size,
            },
            response={"rule": decision.rule[:512]},
            error_code=error_code,
            resources=[Resource("kernel", kernel_id)],
        )

    # -- the witness ---------------------------------------------------------------------
    def kernel_for_token(self, token: str) -> str | None:
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        return self._tokens.get(digest)

    def witnessed(self, kernel_id: str, events: list[Mapping[str, Any]]) -> int:
        """Check a witness batch; returns how many executions did not reconcile."""
        launch = self._launches.get(kernel_id)
        if launch is None:
            return 0
        metrics.kernel_witnessed(events)
        bad = 0
        for event in events:
            if event.get("phase") != "pre":
                continue
            msg_id = str(event.get("msgId") or "")
            reason = self.ledger.witnessed(kernel_id, msg_id)
            if reason is None:
                continue
            bad += 1
            request = {"kernelId": kernel_id, "msgId": msg_id[:200], "reason": reason}
            for src, dst in (("cellId", "cellId"), ("codeSha256", "codeSha256")):
                if isinstance(event.get(src), str):
                    request[dst] = str(event[src])[:200]
            self.log.warning("kernel %s of %s ran code the server did not forward: %s",
                             kernel_id, launch.owner, reason)  # fmt: skip
            self.audit.submit(
                "ExecutionUnreconciled",
                identity=Identity("User", launch.owner, (), ()),
                request=request,
                error_code="ExecutionUnreconciled",
                resources=[Resource("kernel", kernel_id)],
            )
        return bad

    # -- launching ---------------------------------------------------------------------
    def prepare_launch(
        self,
        *,
        kernel_id: str,
        kernelspec: str,
        person: Person,
        connection_file: str,
        env: Mapping[str, str],
    ) -> dict[str, str]:
        """Write the guard file for a (re)start and return the kernel's environment."""
        if self.require_sandbox and self.abi == 0:
            raise RuntimeError(
                "guarded kernels need Landlock (Linux >= 5.13 with Landlock enabled) and "
                "SecureApp.require_sandbox is on: not starting the kernel"
            )
        self.forget(kernel_id, keep_dir=False)
        base = self.private_root or None
        private = tempfile.mkdtemp(prefix=f"jupyter-secure-kernel-{kernel_id[:8]}-", dir=base)
        os.chmod(private, 0o700)
        token = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        plan = plan_workspace(
            self.root_dir,
            self.policy.current,
            person.principal,
            forbidden=(*self.forbidden, os.path.dirname(connection_file), private),
        )
        role_policy = self.role_policy(person)
        env_keep = [n for n in self.env_keep if not n.startswith("JUPYTER_SECURE")]
        guard = {
            "version": 1,
            "kernel_id": kernel_id,
            "user": person.name,
            "role": role_policy.role,
            "masking": None,
            "masking_key": self.audience.key_for(person.name).hex(),
            "witness": {"url": f"{self.witness_base()}/{kernel_id}/witness", "token": token}
            if self.witness_base is not None
            else None,
            "sandbox": {
                "required": bool(self.require_sandbox) or self.guards_private_data,
                "read": plan.read,
                "write": plan.write,
                "read_files": [*plan.read_files, os.path.realpath(connection_file)],
                "private_dir": private,
            },
            "env_keep": env_keep,
        }
        guard.update(self._token_entries(kernel_id, person))
        path = os.path.join(private, "guard.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(guard, f)
        self._launches[kernel_id] = _Launch(kernel_id, person.name, private, digest)
        self._tokens[digest] = kernel_id
        # The same rule the kernel's launcher applies again: one implementation, and
        # what reaches the process (and its /proc/self/environ) is already scrubbed.
        kept = build_environment(env, env_keep, private)
        home = os.path.join(os.path.realpath(self.root_dir), "home", person.name)
        kept["HOME"] = home if os.path.isdir(home) else private
        kept[GUARD_CONFIG_ENV] = path
        if plan.excluded:
            self.log.warning("kernel %s: left out of its sandbox: %s", kernel_id, plan.excluded)
        self.audit.submit(
            "KernelLaunched",
            identity=person.identity(),
            request={"kernelId": kernel_id, "owner": person.name, "kernelspec": kernelspec},
            response={
                "sandbox": "landlock" if self.abi else "none",
                "landlockAbi": self.abi,
                "maskingRole": masking_role(
                    person.roles, self.scopes_of(person), self.audience.policy
                ),
                "readDirs": [os.path.relpath(p, self.root_dir) for p in plan.read][:200],
                "writeDirs": [os.path.relpath(p, self.root_dir) for p in plan.write][:200],
            },
            resources=[Resource("kernel", kernel_id)],
        )
        return kept

    def _token_entries(self, kernel_id: str, person: Person) -> dict[str, Any]:
        """The kernel's signed token (one per launch) and where it may be presented: the
        private-query broker and this server's trail routes. It speaks only for the
        kernel's owner, which is what the notebook's code already acts as."""
        entries: dict[str, Any] = {"broker": None}
        if self.broker_signer is None or (self.broker_base is None and self.trail_base is None):
            return entries
        hours = self.broker_token_hours
        token = self.broker_signer.issue(kernel_id, person.name, person.groups, hours * 3600)
        self._broker_tokens[kernel_id] = hashlib.sha256(token.encode()).hexdigest()
        if self.broker_base is not None:
            entries["broker"] = {"url": self.broker_base(), "token": token}
        if self.trail_base is not None:
            entries["trail"] = {"url": self.trail_base(), "token": token}
        return entries

    def forget(self, kernel_id: str, *, keep_dir: bool = False) -> None:
        """The kernel is gone (or restarting): its token stops working, its dir goes."""
        launch = self._launches.pop(kernel_id, None)
        if launch is None:
            return
        self._tokens.pop(launch.token_hash, None)
        self._broker_tokens.pop(kernel_id, None)
        if not keep_dir:
            shutil.rmtree(launch.private_dir, ignore_errors=True)

    def broker_token_current(self, kernel_id: str, token: str) -> bool:
        """Whether ``token`` is the one issued at this kernel's latest (re)start."""
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        current = self._broker_tokens.get(kernel_id)
        return current is not None and hmac.compare_digest(current, digest)

    def owner_of(self, kernel_id: str) -> str | None:
        launch = self._launches.get(kernel_id)
        return launch.owner if launch else None
