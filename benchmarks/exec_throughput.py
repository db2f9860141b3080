"""Question: running a program once per item, how many jobs a second does `batch exec`
start, against `xargs -P` and GNU parallel, with the same worker count in the same run?

Two workloads of 2,000 items (`seq 2000` on stdin; 200 with --quick):

    exec_true   seq 2000 | batch exec -j N true             (nothing but the spawning)
    exec_echo   seq 2000 | batch exec -j N sh -c 'echo {}'  (a shell per job, output captured)

each also run as `xargs -P N` (`-n 1 true`, `-I{} sh -c 'echo {}'`) and as GNU parallel
(`parallel -j N true`, `parallel -q -j N sh -c 'echo {}'`) where it is installed
(`apt-get install parallel`). Every output is checked: all 2,000 numbers, exit status 0.
Targets (issue 10): batch exec at least 0.8x the jobs/s of xargs, and 4x GNU parallel's.
The machine, xargs' and GNU parallel's versions are printed with the results.

    python -m benchmarks.exec_throughput [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("exec_true", "exec_echo")))
