"""python -m benchmarks: every workload, every implementation (what README.md shows)."""

import sys

from . import main

sys.exit(main())
