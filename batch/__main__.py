"""python -m batch: the same as the `batch` command."""

from .cli import main

raise SystemExit(main())
