"""Question: with 200,000 trivial items (x + 1), what does each pool spend per item?

Here the pools' own machinery is all there is to measure: chunking, sending items,
sending results back. Target: batch fork at least 2.5x the items/s of
multiprocessing.Pool.map.

    python -m benchmarks.tiny_tasks [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("tiny_tasks",)))
