"""Question: `cat big.txt | batch exec --pipe -j N wc -l` over 1 GiB of text (64 MiB
with --quick): how much faster than a single `wc -l`, and in how much memory?

--pipe cuts stdin into 1 MiB blocks at line ends and feeds each to a `wc -l` of its own;
every printed count is summed and checked against the file's known line count. The file
is written before the clock starts and read from the page cache, so the pipe and the jobs
are measured, not the disk.
Memory is the peak PSS of the programs' whole process tree (cat, batch exec and its wc
jobs), sampled every 10 ms. Targets (issue 10): at least 1.6x one `wc -l` on 2 cores,
the tree's peak under 100 MiB.

Issue 10's row is `cat big.txt | batch exec --pipe wc -l` (1 MiB blocks, a job per
block) against `cat big.txt | wc -l`. Rows added beside it, in the same run: the same with
`--block 32M` and with `--round-robin` (a job per slot), and those three with the file as
stdin (cut in place, spliced: batch/_exec/_feed.py) against `wc -l < big.txt`.

    python -m benchmarks.exec_pipe [--quick] [--json FILE]

What bounds it (measured 2026-12-01 on the 2-core machine of benchmarks/README.md, at
load average about 8, 256 MiB from the page cache): `cat | wc -l` took 0.14-0.16 s, for
wc -l counts at memchr speed and the pipe from cat is the limit. The same bytes cut by
`blocks()` and written to two long-lived `wc -l` (no job started per block) took
0.45-1.23 s, and even blind `os.splice` of 1 MiB pieces into the two (no copy, no cut)
0.27-0.47 s: on 2 cores one more pipe hop costs more than a second `wc -l` gains.

After the splice path, --round-robin and the copy-free cutter (2026-12-01 22:26, load
average 6.8 before, 6.0 after, `batch bench --only exec_pipe`, medians of 5, 1 GiB):
cat|wc 0.39 s; issue row 2.91 s (0.13x, tree 58 MiB); --block 32M 1.86 s (tree 242 MiB:
workers + 1 blocks in flight); --round-robin 0.76 s (0.52x). wc -l < file 0.175 s; the
same three from the file: 1.88 s, 0.55 s, 0.48 s (tree 29-52 MiB). What bounds them:
- a job per 1 MiB block is about 1.8 ms of coordinator time to start and reap, against
  about 0.2 ms of wc: 1024 jobs cost more than the whole single wc (issue row, < file).
- `python -m batch exec` itself: 0.22-0.26 s to import and start two jobs (a regular
  empty file as stdin), more than `wc -l < file` takes for the whole GiB.
- a pipe fed to wc: wc reads 16 KiB at a time and the kernel wakes a full pipe's writer
  after each read, so 1 GiB is about 64,000 splices (a blocking loop in Python: 0.23-0.57
  s for one wc) and as many selector rounds in the runner; a file read by wc itself has
  none of that.
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("exec_pipe",)))
