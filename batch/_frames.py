"""A message on a pipe, as bytes: written whole by a worker, reassembled by the coordinator.

_wire builds a message (a 24-byte prefix, the msgpack body, big arrays' own memory) and
decodes a body; this module takes one from a non-blocking pipe: `Reader` reassembles it
as it arrives, stage by stage (prefix, body, then each big array `readv`'d straight into
its final buffer), and then gets the arrays the body only points at from the writer's
memory (see _wire's docstring for why and what each way costs), one of two ways:

- push, for a persistent worker where the kernel lets a child write its parent
  (_platform.can_push): the buffers are left unpopulated, `to_push` lists them for the
  fork backend, which sends their addresses over the worker's task pipe; the worker
  writes them with process_vm_writev, taking the page faults and the copy on its own
  CPU, and answers with an 8-byte ACK (stage 4) on the result pipe;
- pull (everywhere else, and when an ACK says the write failed): this process copies
  them with process_vm_readv.

A message cut short is not an error here: only the writer's exit status can say why it
was cut (`pushing` says it was cut while the worker wrote its arrays).
"""

from __future__ import annotations

import os
import struct

from . import _platform
from ._wire import (ERROR, MAGIC, PREFIX, RESULT, DecodeError, PullError, _byte_view,
                    decode_body)


# The worker's answer to a push request: 0, or the errno of the write that failed.
ACK = struct.Struct("<q")


def pull(pid: int | None, remote) -> None:
    """Fill each array of `remote` from its address in process `pid`."""
    for address, a in remote:
        if pid is None:
            raise DecodeError("a message refers to another process's memory")
        try:
            _platform.read_process_memory(pid, address, _byte_view(a))
        except ProcessLookupError:
            raise PullError("the worker died before its result was read", lost=True) from None
        except PermissionError as exc:
            raise PullError(f"reading the worker's memory is not allowed ({exc})",
                            denied=True) from None
        except OSError as exc:
            raise PullError(f"cannot read the result from the worker's memory ({exc})") \
                from None


class Reader:
    """Reassembles one message from a non-blocking fd, as bytes become available.

    `feed()` reads what the pipe holds and returns True at end of file. Afterwards
    `complete` says whether a whole message arrived; a message cut short is not an error
    here, because only the exit status says why it was cut. `pid` is the writer's: the
    big arrays of its message are pulled from there once its pipe bytes are in.
    """

    def __init__(self, pid: int | None = None, may_push: bool = False):
        self.pid = pid
        self._may_push = may_push  # the writer waits for a push request after its message
        # [(address in the writer, array here)]: the writer is to be asked to fill these
        # (by the caller, who owns the writer's task pipe; a callback here would tie the
        # writer's object into a reference cycle and keep its input alive until a GC).
        self.to_push: list = []
        self._prefix = bytearray(PREFIX.size)
        self._targets: list[memoryview] = [memoryview(self._prefix)]
        self._stage = 0  # 0 prefix, 1 body, 2 out-of-band buffers, 4 ACK, 3 complete
        self.received = 0
        self.kind = None
        self.payload = None
        self.extra = 0  # bytes after a complete message: the stream is garbled
        self.private: list = []  # receive buffers that later forks do not inherit

    @property
    def complete(self) -> bool:
        return self._stage == 3

    @property
    def pushing(self) -> bool:
        """The writer was asked to write its arrays here and has not answered."""
        return self._stage == 4

    def feed(self, fd: int) -> bool:
        while self._stage != 3:
            if not self._targets:
                self._advance()
                continue
            try:
                n = os.readv(fd, self._targets[:1])
            except BlockingIOError:
                return False
            if n == 0:
                return True
            self.received += n
            self._targets[0] = self._targets[0][n:]
            if not self._targets[0]:
                self._targets.pop(0)
        while True:
            try:
                junk = os.read(fd, 65536)
            except BlockingIOError:
                return False
            if not junk:
                return True
            self.extra += len(junk)

    def _advance(self) -> None:
        if self._stage == 0:
            magic, self.kind, body_len, self._oob = PREFIX.unpack(self._prefix)
            if magic != MAGIC or self.kind not in (RESULT, ERROR) or not body_len:
                raise DecodeError("garbled message prefix")
            self._body = bytearray(body_len)
            self._targets = [memoryview(self._body)]
            self._stage = 1
        elif self._stage == 1:
            push = self._may_push and _platform.can_push()
            self.payload, buffers, self.private, self._remote = decode_body(
                self._body, populate_remote=not push)
            del self._body
            if sum(b.nbytes for b in buffers) != self._oob:
                raise DecodeError("message body and out-of-band length disagree")
            self._targets = buffers
            self._stage = 2
        elif self._stage == 2 and self._remote and self._may_push and _platform.can_push():
            self._ack = bytearray(ACK.size)
            self._targets = [memoryview(self._ack)]
            self.to_push = self._remote
            self._stage = 4
        else:
            if self._stage == 4 and ACK.unpack(self._ack)[0] == 0:
                self._remote = []  # the writer wrote them here
            elif self._stage == 4:
                _platform.push_denied()  # pull this one; every later one too
            remote, self._remote = self._remote, []
            pull(self.pid, remote)
            self._stage = 3
