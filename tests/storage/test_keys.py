"""Where the master key comes from, and what happens when it is wrong or missing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from jupyter_secure.errors import InvalidInput, StartupRefused
from jupyter_secure.storage.keys import (
    ENV_KEY,
    FileKeySource,
    KeyRing,
    KeyringKeySource,
    MasterKey,
    parse_key_list,
)


def test_generates_into_a_0600_file_when_no_keyring(tmp_path: Path) -> None:
    loaded = MasterKey().load(tmp_path, "install-1", may_generate=True, environ={})
    assert loaded.generated
    assert loaded.source.kind == "file"
    path = tmp_path / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = MasterKey().load(tmp_path, "install-1", may_generate=False, environ={})
    assert again.ring.keys == loaded.ring.keys
    assert not again.generated


def test_environment_wins_over_file(tmp_path: Path) -> None:
    MasterKey().load(tmp_path, "i", may_generate=True, environ={})
    env_key = KeyRing.generate_key().decode()
    loaded = MasterKey().load(tmp_path, "i", may_generate=False, environ={ENV_KEY: env_key})
    assert loaded.source.kind == "env"
    assert loaded.ring.keys == (env_key.encode(),)


def test_environment_holds_a_ring_first_key_encrypts(tmp_path: Path) -> None:
    new, old = KeyRing.generate_key(), KeyRing.generate_key()
    old_token = KeyRing([old]).encrypt(b"secret")
    loaded = MasterKey().load(
        tmp_path, "i", may_generate=False, environ={ENV_KEY: f"{new.decode()}, {old.decode()}"}
    )
    assert loaded.ring.decrypt(old_token) == b"secret"
    assert KeyRing([new]).decrypt(loaded.ring.encrypt(b"x")) == b"x"


def test_missing_key_for_an_initialised_store_is_refused_listing_where_it_looked(
    tmp_path: Path,
) -> None:
    with pytest.raises(StartupRefused, match=r"no source provides.*JUPYTER_SECURE_KEY.*key file"):
        MasterKey().load(tmp_path, "i", may_generate=False, environ={})
    assert not (tmp_path / "master.key").exists()


def test_key_file_with_loose_mode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    FileKeySource(path).store([KeyRing.generate_key()])
    os.chmod(path, 0o644)
    with pytest.raises(StartupRefused, match=r"mode 0644.*chmod 600"):
        MasterKey().load(tmp_path, "i", may_generate=False, environ={})


def test_configured_key_file_path(tmp_path: Path) -> None:
    elsewhere = tmp_path / "keys" / "jsecure.key"
    mk = MasterKey(key_file=str(elsewhere))
    mk.load(tmp_path / "state", "i", may_generate=True, environ={})
    assert elsewhere.exists()
    assert not (tmp_path / "state" / "master.key").exists()


@pytest.mark.parametrize("text", ["not-a-key", "a" * 44, "Zm9v"])
def test_garbage_keys_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_key_list(text, ENV_KEY)
    assert text not in str(info.value)


def test_comments_and_blank_lines_in_key_files(tmp_path: Path) -> None:
    key = KeyRing.generate_key().decode()
    assert parse_key_list(f"# comment\n\n{key}\n", "f") == [key.encode()]


def test_plaintext_keyring_is_not_used_unless_chosen_explicitly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    monkeypatch.setattr("keyring.core.load_env", lambda: None)
    monkeypatch.setattr("keyring.core.load_config", lambda: None)
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        assert not KeyringKeySource.available()
    finally:
        keyring.set_keyring(previous)


def test_a_real_keyring_backend_keeps_a_generated_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """keyrings.alt's file backend, chosen explicitly: a real keyring, not a mock."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    import keyring.core

    keyring.core.init_backend()
    try:
        assert KeyringKeySource.available()
        loaded = MasterKey().load(tmp_path, "install-9", may_generate=True, environ={})
        assert loaded.source.kind == "keyring"
        assert not (tmp_path / "master.key").exists()
        stored = keyring.get_password("jupyter-secure", "master-key/install-9")
        assert stored == loaded.ring.keys[0].decode()
        again = MasterKey().load(tmp_path, "install-9", may_generate=False, environ={})
        assert again.ring.keys == loaded.ring.keys
    finally:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        keyring.core.init_backend()


def test_keyring_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    import keyring.core

    keyring.core.init_backend()
    try:
        loaded = MasterKey(use_keyring=False).load(tmp_path, "i", may_generate=True, environ={})
        assert loaded.source.kind == "file"
    finally:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        keyring.core.init_backend()
