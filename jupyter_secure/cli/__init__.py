"""CLI room: ``jupyter secure …`` admin commands (a traitlets JupyterApp with subcommands)."""

import sys

# jsonschema imports rfc3987_syntax, when installed, to check the "iri" formats;
# building its grammar costs ~0.8 s, which every admin command would pay. No
# schema of ours uses those formats, so a command process declines the import
# (a None entry makes `import` raise ImportError, which jsonschema handles).
# The server process is left alone.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


from .app import SecureCommand as SecureCommand  # noqa: E402
from .app import main as main  # noqa: E402

__all__ = ["SecureCommand", "main"]
