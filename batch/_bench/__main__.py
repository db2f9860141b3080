"""python -m batch._bench: the same as `batch bench`."""

import sys

from .command import main

sys.exit(main())
