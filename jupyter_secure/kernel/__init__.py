"""The kernel side of the guarded kernel: sandbox, masked display, execution witness.

This room runs *inside* the kernel process, started by the server as
``python -I -m jupyter_secure.kernel -f {connection_file}``. It never imports
server-side code (jupyter_server, tornado, ``jupyter_secure.handlers``,
``app``, ``state``, ``audit``, ``storage``); it may import the pure
:mod:`jupyter_secure.masking` room and IPython/ipykernel. Modules:

* :mod:`.config` — the guard config the server writes (strict validation);
* :mod:`.environment` — the kernel's environment from an allow-list;
* :mod:`.sandbox` — the Landlock file-system sandbox (and signal scoping);
* :mod:`.display` — display formatters that mask pandas output per role;
* :mod:`.witness` — reports each execution to the server;
* :mod:`.launcher` — puts them together in the right order.

Trust note: this is the second line. The kernel runs the user's code, which
can undo anything done in-process (the sandbox excepted: Landlock cannot be
lifted); the server's channel guard is authoritative for what leaves the
kernel. Importing this package is cheap: the submodules are not imported
here.
"""

from __future__ import annotations

__all__: list[str] = []  # the modules above are the surface; none is imported here
