"""Question: `cat big.txt | batch exec --pipe -j N wc -l` over 1 GiB of text (64 MiB
with --quick): how much faster than a single `wc -l`, and in how much memory?

--pipe cuts stdin into 1 MiB blocks at line ends and feeds each to a `wc -l` of its own;
every printed count is summed and checked against the file's known line count. The file
is written before the clock starts and read from the page cache, so the pipe and the jobs
are measured, not the disk.
Memory is the peak PSS of the programs' whole process tree (cat, batch exec and its wc
jobs), sampled every 10 ms. Targets (issue 10): at least 1.6x one `wc -l` on 2 cores,
the tree's peak under 100 MiB.

    python -m benchmarks.exec_pipe [--quick] [--json FILE]

What bounds it (measured 2026-12-01 on the 2-core machine of benchmarks/README.md, at
load average about 8, 256 MiB from the page cache): `cat | wc -l` took 0.14-0.16 s, for
wc -l counts at memchr speed and the pipe from cat is the limit. The same bytes cut by
`blocks()` and written to two long-lived `wc -l` (no job started per block) took
0.45-1.23 s, and even blind `os.splice` of 1 MiB pieces into the two (no copy, no cut)
0.27-0.47 s: on 2 cores one more pipe hop costs more than a second `wc -l` gains.
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("exec_pipe",)))
