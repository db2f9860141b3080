"""Question: when the input is a big array created before the run (2 GiB; 128 MiB with
--quick), what does each pool pay to get it to its workers, in time and in memory?

A map-reduce of sum(sqrt(chunk)) in 4 MiB blocks: the work is light, so moving the input
is the cost. Fork workers read it through copy-on-write; multiprocessing and
concurrent.futures pickle each chunk; joblib memory-maps a copy in /dev/shm; mpire
shares it as a copy-on-write `shared_objects`. Peak memory is the whole process tree's
PSS plus shared memory growth. Targets: batch fork 15x ProcessPoolExecutor and
multiprocessing.Pool, 4x joblib, 1.4x mpire, 1.6x serial, peak at most 1.05x the input.

    python -m benchmarks.big_input [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("big_input",)))
