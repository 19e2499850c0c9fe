"""``python -I -m jupyter_secure.kernel -f {connection_file}``: the guarded kernel."""

from __future__ import annotations

from .launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
