"""``python -m callcenter``: the same as the ``callcenter`` command."""

from .cli import main

raise SystemExit(main())
