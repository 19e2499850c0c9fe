"""CLI room: ``jupyter secure …`` admin commands (a traitlets JupyterApp with subcommands)."""

from .app import SecureCommand as SecureCommand
from .app import main as main

__all__ = ["SecureCommand", "main"]
