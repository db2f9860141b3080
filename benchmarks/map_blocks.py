"""Question: a function of an array's rows, fn(array) -> array of the same rows: how much
faster than fn(whole array) does each pool compute it on all cores, and at what memory?

np.sin(b) + np.cos(b) over a 512 MiB float64 array into a 512 MiB result (64 MiB with
--quick): about 15 ns of work per element, so writing the result costs about as much as
computing it. batch.map_blocks writes every block into one output in shared memory
(fork) or in the process's own memory (thread); serial is fn(whole array), one call;
the peers map fn over batch's own blocks and concatenate, which is what their docs
offer. Targets: map_blocks on fork 1.6x serial and 0.95x or better than batch's thread
backend, peak memory of the whole tree at most 1.05x input plus output.

    python -m benchmarks.map_blocks [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("map_blocks",)))
