"""batch's benchmarks: one script per question, all on the harness in batch._bench.

    python -m benchmarks [--quick] [--json F] [--markdown F] [--plot F.png]   the full suite
    python -m benchmarks.big_input [--quick]                                  one question

Every script runs the same code as `batch bench` (batch/_bench/command.py) with its
workloads preselected, so a figure here and a figure from the CLI agree. Each prints
the machine it ran on; README.md beside this file holds a full run.
"""

from __future__ import annotations

import sys


def main(workloads: tuple[str, ...] = (), argv: list[str] | None = None) -> int:
    """Run `workloads` (all when empty) with the command-line options in argv."""
    from batch._bench.command import main as bench
    argv = list(sys.argv[1:] if argv is None else argv)
    if workloads and "--only" not in argv:
        argv = ["--only", ",".join(workloads), *argv]
    return bench(argv)
