"""`batch exec`: run a program on every item, many at a time, GNU parallel's vocabulary.

    COMMAND ::: items / :::: FILE / -a FILE / stdin ─► _args.split, _items (cross product,
            │                                           --colsep) or --pipe blocks (_blocks)
            _command: every check first (exit 255), then --resume's skips from the joblog
            │
            batch/_exec: Template.render ─► Runner (posix_spawn, own groups, pipes,
            │            timeouts, retries, Ctrl-C) ─► Done in completion order
            ▼            (-k: in item order)
    _printer (whole per job, --tag, --line-buffer, --results) ─► stdout/stderr
    _joblog (GNU parallel's columns), _halt (--halt), exit status (_exits: 0, 1-100, 101)
"""

from __future__ import annotations

from . import _args


def command(args):
    # _command (the runner, spawning, output) loads only for `batch exec` itself: every
    # other subcommand builds this one's parser too.
    from . import _command
    return _command.run(args)


def add_parser(sub):
    return _args.add_parser(sub, command)
