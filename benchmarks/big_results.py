"""Question: how fast does each pool bring big results back: 64 items each returning a
16 MiB array (1 GiB in all; 8 items with --quick), against the raw bandwidth of a pipe
measured in the same run?

The raw figure is one forked writer and a reader reusing one buffer, through a pipe
enlarged to 1 MiB as batch enlarges its own. Targets: batch fork 3.5x faster than
ProcessPoolExecutor and mpire, at 60% or more of the raw pipe.

    python -m benchmarks.big_results [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("big_results", "pipe")))
