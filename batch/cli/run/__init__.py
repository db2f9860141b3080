"""`batch run`: map (and reduce) a function over the chunks of an array, lines or files.

    INPUT ─► _inputs.open_input ─► kind: array (.npy/.npz memmap), lines (text file byte
             │                     ranges, stdin/.gz streams), files (folder, glob, -0)
             _job.build ─► Mapper (_builtins or module:function) + Reducer (_reducers)
             _outputs.Target, _checkpoint.Checkpoint: checked before any work
             │
             _execute: plan ─► Tasks ─► batch._coordinator.run(backend) ─► Outcomes
             │         ─► joblog, checkpoint, progress ─► in chunk order ─► reducer
             ▼
    _outputs: stdout (text or --format json) or --output FILE (.json .npy .msgpack .csv),
              written under a temporary name and renamed
"""

from __future__ import annotations

from . import _args


def command(args):
    # _command (inputs, reducers, the Pool) loads only for `batch run` itself: every
    # other subcommand builds this one's parser too.
    from . import _command
    return _command.run(args)


def add_parser(sub):
    return _args.add_parser(sub, command)
