"""Question: code written for concurrent.futures switches to batch.Executor with one import;
what does the switch do to its items/s?

50,000 trivial items (x + 1) from a list, two ways each, in the same run:
`Executor.map(fn, items, chunksize=len / (4 n))` against ProcessPoolExecutor's map with
the same chunksize, and `[ex.submit(fn, x) for x in items]` then every result, against
the same loop on ProcessPoolExecutor. No target: the figures are the finding.

    python -m benchmarks.executor [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("executor",)))
