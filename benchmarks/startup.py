"""Question: what is the fixed cost of one small call (2 items), from a small parent and
from a parent holding 2 GiB (256 MiB with --quick)?

Each repetition is the first call in a freshly forked process that has imported the
library but never made a pool, so nobody's pool is warm. Target: a 2-item batch pmap
at most 0.6x the time of the same call on a fresh multiprocessing.Pool.

    python -m benchmarks.startup [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("startup", "startup_big")))
