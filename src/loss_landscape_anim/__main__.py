"""``python -m loss_landscape_anim``: the command-line interface."""

from .cli import main

raise SystemExit(main())
