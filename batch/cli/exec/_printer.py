"""How `batch exec` shows outputs: each job's whole, or lines as they come; --tag; --results.

Whole (the default): a job's stdout, then its stderr, written when it is printed (as it
finishes, or in input order with -k), so two jobs never interleave, not even mid-line.
A capture spooled to disk is copied a MiB at a time. --line-buffer: complete lines as
they arrive; a job's unfinished last line waits for its newline or its end.
"""

from __future__ import annotations

import os
import sys

from ..._exec._output import write_all
from .._exits import OutputFailed


def _tagged(pieces, tag: bytes):
    """`pieces` with `tag` in front of every line, across piece boundaries."""
    start = True
    for piece in pieces:
        if not piece:
            continue
        lines = piece.split(b"\n")
        out = []
        for i, seg in enumerate(lines):
            last = i == len(lines) - 1
            if last and not seg:
                break
            if start:
                out.append(tag)
            out.append(seg)
            if not last:
                out.append(b"\n")
            start = not last
        yield b"".join(out)


class Printer:
    def __init__(self, *, tag: bool, results: str | None, line_mode: bool):
        self.tag, self.results, self.line_mode = tag, results, line_mode
        self._fds = {1: sys.stdout.fileno(), 2: sys.stderr.fileno()}
        self._partial: dict[tuple[int, int], bytes] = {}
        sys.stdout.flush()

    def _tag(self, done) -> bytes:
        label = " ".join(done.job.columns) if done.job.columns else str(done.job.seq)
        return os.fsencode(label) + b"\t"

    def _write(self, which: int, pieces, done) -> None:
        if self.tag:
            pieces = _tagged(pieces, self._tag(done))
        try:
            for piece in pieces:
                write_all(self._fds[which], piece)
        except BrokenPipeError:
            raise  # `| head`: the reader left, and main() says nothing
        except OSError as exc:  # a full disk, /dev/full: name the stream and the job
            name = "stdout" if which == 1 else "stderr"
            raise OutputFailed(f"cannot write job {done.job.seq}'s output to {name}: "
                               f"{exc.strerror or exc}", stdout=which == 1) from None

    def job(self, done) -> None:
        """A finished job: its whole output (or what --line-buffer still holds)."""
        if self.line_mode:
            for which in (1, 2):
                rest = self._partial.pop((done.job.seq, which), b"")
                if rest:
                    self._write(which, [rest], done)
        else:
            for which, cap in ((1, done.stdout), (2, done.stderr)):
                if cap is not None:
                    self._write(which, cap.chunks(), done)
        if self.results:
            self._save(done)

    def stream(self, done, which: int, data: bytes) -> None:
        """--line-buffer: the complete lines of `data` now, the rest later."""
        key = (done.job.seq, which)
        data = self._partial.pop(key, b"") + data
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            self._partial[key] = data[cut:]
        if cut:
            self._write(which, [data[:cut]], done)

    def _save(self, done) -> None:
        folder = os.path.join(self.results, str(done.job.seq))
        os.makedirs(folder, exist_ok=True)
        for name, cap in (("stdout", done.stdout), ("stderr", done.stderr)):
            with open(os.path.join(folder, name), "wb") as f:
                for piece in (cap.chunks() if cap is not None else ()):
                    f.write(piece)
        with open(os.path.join(folder, "exitval"), "w") as f:
            f.write(f"{done.returncode}\n")
        with open(os.path.join(folder, "command"), "w", encoding="utf-8",
                  errors="surrogateescape") as f:
            f.write(_command_line(done.argv) + "\n")


def _command_line(argv) -> str:
    from ..._exec._replace import shell_line
    if argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3:
        return argv[2]
    return shell_line(argv)
