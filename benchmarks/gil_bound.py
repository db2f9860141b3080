"""Question: on pure-Python work, which holds the GIL, how close does each pool get to
the number of cores, and how much do batch's fork-per-chunk workers give up against
multiprocessing's long-lived ones?

Each of 2,000 items (200 with --quick) runs a 1 ms bytecode loop. Threads cannot
overlap it; processes can. The issue's targets: batch fork at least 1.8x serial on two
cores, and within 5% of the best standard-library pool.

    python -m benchmarks.gil_bound [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("gil_bound",)))
