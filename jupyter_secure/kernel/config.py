"""The guard config: the one file through which the server tells a kernel who it serves.

The server writes it (mode 0600, in the kernel's private directory) and names
it in ``JUPYTER_SECURE_KERNEL_CONFIG``; the launcher reads it once, deletes it
and refuses to start on anything it does not understand. Validation is strict
on purpose: a field the kernel misreads is a sandbox or masking rule silently
not applied, so an unknown key, a relative path or a short key is an error
that names the field (``sandbox.read[2]: not an absolute path``), never a
default.

Pure: standard library only, so the launcher can validate before it imports
anything heavy (and before the sandbox is applied).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONFIG_ENV",
    "CONFIG_VERSION",
    "HTTP_URL",
    "BrokerConfig",
    "ConfigInvalid",
    "GuardConfig",
    "SandboxConfig",
    "WitnessConfig",
    "is_http_url",
    "load_config",
    "parse_config",
]

CONFIG_ENV = "JUPYTER_SECURE_KERNEL_CONFIG"
"""The environment variable that names the guard config file."""

CONFIG_VERSION = 1

_MIN_KEY_BYTES = 32
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?")
_MAX_BYTES = 1 << 20


class ConfigInvalid(ValueError):
    """The guard config is missing or wrong; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"guard config: {field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class WitnessConfig:
    """Where the kernel reports executions, and the token it authenticates with."""

    url: str
    token: str = ""

    def __repr__(self) -> str:  # the token never appears in logs or tracebacks
        return f"WitnessConfig(url={self.url!r}, token=<hidden>)"


@dataclass(frozen=True)
class BrokerConfig:
    """Where the private-query broker listens, and this kernel's signed token for it."""

    url: str
    token: str = ""

    def __repr__(self) -> str:  # the token never appears in logs or tracebacks
        return f"BrokerConfig(url={self.url!r}, token=<hidden>)"


@dataclass(frozen=True)
class SandboxConfig:
    """The Landlock allowances the server planned (absolute paths only)."""

    required: bool
    read: tuple[str, ...]
    write: tuple[str, ...]
    read_files: tuple[str, ...]
    private_dir: str


@dataclass(frozen=True)
class GuardConfig:
    """Everything the kernel side of the guard needs, validated."""

    kernel_id: str
    user: str
    role: str
    masking: Mapping[str, Any] | None
    masking_key: bytes
    witness: WitnessConfig | None
    sandbox: SandboxConfig
    env_keep: tuple[str, ...]
    broker: BrokerConfig | None = None
    #: the server's trail routes (``jupyter_secure.trail``), with the same signed token
    trail: BrokerConfig | None = None
    version: int = CONFIG_VERSION

    def __repr__(self) -> str:
        return (
            f"GuardConfig(kernel_id={self.kernel_id!r}, user={self.user!r}, "
            f"role={self.role!r}, masking_key=<hidden>, witness={self.witness!r}, "
            f"sandbox={self.sandbox!r}, env_keep={self.env_keep!r})"
        )


_TOP = frozenset(
    {"version", "kernel_id", "user", "role", "masking", "masking_key", "witness", "sandbox"}
    | {"env_keep"}
)
#: Fields a server may leave out (older servers, or no broker configured).
_OPTIONAL = frozenset({"broker", "trail"})
_SANDBOX = frozenset({"required", "read", "write", "read_files", "private_dir"})
_ENDPOINT = frozenset({"url", "token"})
HTTP_URL = re.compile(r"https?://[^\s/]+(/\S*)?")


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigInvalid(field, "expected an object")
    return value


def _known(
    data: Mapping[str, Any],
    allowed: frozenset[str],
    prefix: str,
    optional: frozenset[str] = frozenset(),
) -> None:
    for key in sorted(set(data) - allowed - optional):
        raise ConfigInvalid(f"{prefix}{key}", "unknown field")
    for key in sorted(allowed - set(data)):
        raise ConfigInvalid(f"{prefix}{key}", "missing")


def _string(value: object, field: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigInvalid(field, "expected a string")
    if not empty and not value:
        raise ConfigInvalid(field, "must not be empty")
    if "\x00" in value:
        raise ConfigInvalid(field, "contains a NUL character")
    return value


def _abs_path(value: object, field: str) -> str:
    path = _string(value, field)
    if not os.path.isabs(path):
        raise ConfigInvalid(field, "not an absolute path")
    if os.path.normpath(path) != path.rstrip("/") and path != "/":
        raise ConfigInvalid(field, "not a normalised path (no '..', '.', '//')")
    if path == "/":
        raise ConfigInvalid(field, "the root directory cannot be allowed")
    return path


def _paths(value: object, field: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigInvalid(field, "expected a list of absolute paths")
    return tuple(_abs_path(item, f"{field}[{i}]") for i, item in enumerate(value))


def _sandbox(value: object) -> SandboxConfig:
    data = _mapping(value, "sandbox")
    _known(data, _SANDBOX, "sandbox.")
    required = data["required"]
    if not isinstance(required, bool):
        raise ConfigInvalid("sandbox.required", "expected true or false")
    return SandboxConfig(
        required=required,
        read=_paths(data["read"], "sandbox.read"),
        write=_paths(data["write"], "sandbox.write"),
        read_files=_paths(data["read_files"], "sandbox.read_files"),
        private_dir=_abs_path(data["private_dir"], "sandbox.private_dir"),
    )


def is_http_url(text: str) -> bool:
    """An absolute http(s) URL with a host and no white space (the server checks the same)."""
    return HTTP_URL.fullmatch(text) is not None


def _endpoint(value: object, name: str) -> tuple[str, str] | None:
    """``{url, token}`` of the witness or the broker: an http(s) URL, a one-line token."""
    if value is None:
        return None
    data = _mapping(value, name)
    _known(data, _ENDPOINT, f"{name}.")
    url = _string(data["url"], f"{name}.url")
    if not is_http_url(url):
        raise ConfigInvalid(f"{name}.url", "expected an http:// or https:// URL")
    token = _string(data["token"], f"{name}.token")
    if any(c.isspace() for c in token):
        raise ConfigInvalid(f"{name}.token", "contains white space or a line break")
    return url, token


def _witness(value: object) -> WitnessConfig | None:
    found = _endpoint(value, "witness")
    return WitnessConfig(url=found[0], token=found[1]) if found else None


def _broker(value: object) -> BrokerConfig | None:
    found = _endpoint(value, "broker")
    return BrokerConfig(url=found[0].rstrip("/"), token=found[1]) if found else None


def _trail(value: object) -> BrokerConfig | None:
    found = _endpoint(value, "trail")
    return BrokerConfig(url=found[0].rstrip("/"), token=found[1]) if found else None


def _key(value: object) -> bytes:
    text = _string(value, "masking_key")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigInvalid("masking_key", "not a hex string") from None
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigInvalid("masking_key", f"needs at least {_MIN_KEY_BYTES} bytes")
    return key


def _env_keep(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigInvalid("env_keep", "expected a list of variable names")
    names = []
    for i, item in enumerate(value):
        name = _string(item, f"env_keep[{i}]")
        if not _ENV_NAME.fullmatch(name):
            raise ConfigInvalid(f"env_keep[{i}]", "not a variable name (or a prefix ending in '*')")
        names.append(name)
    return tuple(names)


def parse_config(data: object) -> GuardConfig:
    """Validate parsed JSON; raise :class:`ConfigInvalid` naming the first bad field."""
    top = _mapping(data, "(top level)")
    if "version" not in top:
        raise ConfigInvalid("version", "missing")
    version = top["version"]
    if type(version) is not int or version != CONFIG_VERSION:
        raise ConfigInvalid("version", f"unsupported version {version!r} (expected 1)")
    _known(top, _TOP, "", _OPTIONAL)
    role = _string(top["role"], "role")
    if not _ROLE.fullmatch(role):
        raise ConfigInvalid("role", "role names are lower-case words")
    masking = top["masking"]
    if masking is not None:
        masking = _mapping(masking, "masking")
    return GuardConfig(
        kernel_id=_string(top["kernel_id"], "kernel_id"),
        user=_string(top["user"], "user"),
        role=role,
        masking=masking,
        masking_key=_key(top["masking_key"]),
        witness=_witness(top["witness"]),
        sandbox=_sandbox(top["sandbox"]),
        env_keep=_env_keep(top["env_keep"]),
        broker=_broker(top.get("broker")),
        trail=_trail(top.get("trail")),
    )


def load_config(path: str | os.PathLike[str], *, delete: bool = False) -> GuardConfig:
    """Read and validate the guard config at ``path``.

    With ``delete`` the file is removed as soon as it is read, whether it is
    valid or not: it holds the witness token and the masking key.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigInvalid("(file)", f"{os.fspath(path)} does not exist") from None
    except OSError as err:
        raise ConfigInvalid("(file)", f"cannot open {os.fspath(path)}: {err.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(_MAX_BYTES + 1)
    if delete:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise ConfigInvalid("(file)", f"cannot delete it: {err.strerror}") from None
    if len(raw) > _MAX_BYTES:
        raise ConfigInvalid("(file)", "larger than 1 MiB")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigInvalid("(file)", f"not valid JSON ({err})") from None
    return parse_config(data)
