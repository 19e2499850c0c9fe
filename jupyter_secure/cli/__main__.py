"""``python -m jupyter_secure.cli`` runs ``jupyter secure``."""

from .app import main

main()
