"""Question: how fast does each pool bring big results back: 64 items each returning a
16 MiB array (1 GiB in all; 8 items with --quick), against the raw bandwidth of a pipe
measured in the same run?

The raw figure is one forked writer and a reader reusing one buffer, through a pipe
enlarged to 1 MiB as batch enlarges its own. batch fork no longer sends arrays this big
through its pipe (each persistent worker writes them into the coordinator with
process_vm_writev, or the coordinator reads them with process_vm_readv: batch/_wire.py
says which, why, and what floor a copy has here), so "% of pipe" can pass 100%. Targets: batch fork no slower than serial, 10x faster than
ProcessPoolExecutor (issue 11), 3.5x mpire (issue 5).

    python -m benchmarks.big_results [--quick] [--json FILE]
"""

import sys

from benchmarks import main

if __name__ == "__main__":
    sys.exit(main(("big_results", "pipe")))
