"""Question: on fixed pure-Python work, how does each implementation scale from one
worker to every usable core, and where does it flatten?

800 items of the gil_bound loop (120 with --quick, which measures batch's own backends
only), at workers = 1 .. cores. The chart (--plot) draws speedup against workers.

    python -m benchmarks.scaling [--quick] [--json FILE] [--plot FILE.png]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("scaling",)))
