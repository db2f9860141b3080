"""`batch bench`: the benchmark harness in batch/_bench, which benchmarks/ shares."""

from __future__ import annotations

from ._parser import add_debug


def add_parser(sub):
    try:
        from .._bench import command
    except ImportError:  # an optional dependency missing: no subcommand
        return None
    p = sub.add_parser("bench", help="measure fork, threads and serial on this machine")
    command.configure(p)
    add_debug(p)
    p.set_defaults(func=command.run)
    return p
