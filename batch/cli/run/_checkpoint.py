"""--checkpoint DIR: every finished chunk saved at once; the same command again resumes.

    DIR/job.json               what ran: the input's identity, --map, --reduce, options,
                               and the chunk plan (so a rerun cuts the same chunks)
    DIR/chunk-000012.msgpack   chunk 12's envelope, written under a temporary name and
                               renamed: a file that exists is complete
    DIR/runs/                  the sorted runs of `--map sort`, which its partials name

A rerun creates no task for a saved chunk and folds its saved envelope in its place, so
the output is the one an uninterrupted run gives. Nothing here ever deletes a file. A
folder holding another job's checkpoint is refused (exit 2), not overwritten. stdin
cannot be identified in advance, so each of its chunks carries a digest of its lines,
checked when the rerun reads the same chunk again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from ... import __version__, _wire
from .._exits import OutputFailed, UsageError

_CHUNK = re.compile(r"chunk-(\d+)\.msgpack$")


def _plain(obj):
    return json.loads(json.dumps(obj))


def atomic_replace(path: str, write) -> None:
    """write(tmp) then rename tmp to path; the temporary file never outlives a failure.

    A failed write (ENOSPC above all) is an OutputFailed naming `path` and the cause: the
    low-level errors name neither (numpy's tofile said only '399983 requested and 130544
    written').
    """
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        try:
            write(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputFailed(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Checkpoint:
    def __init__(self, folder: str, identity: dict, make_plan, explicit_plan: bool,
                 create: bool = True):
        """Open DIR's checkpoint, or start one; `create=False` (--dry-run) writes nothing."""
        self.folder = folder
        job_file = os.path.join(folder, "job.json")
        identity = _plain(identity)
        if os.path.exists(job_file):
            saved = self._read_job(job_file)
            _compare(folder, saved.get("identity", {}), identity)
            self.plan = saved["plan"]
            if explicit_plan and _plain(make_plan()) != self.plan:
                raise UsageError(f"--checkpoint {folder}: its chunks were cut differently; "
                                 f"drop --chunks/--chunk-size to resume it")
        else:
            if os.path.isdir(folder) and os.listdir(folder):
                raise UsageError(f"--checkpoint {folder}: the folder is not empty and holds no "
                                 f"batch checkpoint; give a new or empty folder")
            self.plan = _plain(make_plan())
            if not create:
                return
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"--checkpoint {folder}: {exc.strerror or exc}") from None
            record = {"batch": __version__, "identity": identity, "plan": self.plan}
            atomic_replace(job_file, lambda tmp: _write_json(tmp, record))

    @staticmethod
    def _read_job(job_file: str) -> dict:
        try:
            with open(job_file) as f:
                saved = json.load(f)
            saved["plan"]  # noqa: B018 - presence check
            return saved
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{job_file}: unreadable checkpoint record ({exc})") from None

    def runs_dir(self) -> str:
        path = os.path.join(self.folder, "runs")
        os.makedirs(path, exist_ok=True)
        return path

    def finished(self) -> set[int]:
        if not os.path.isdir(self.folder):
            return set()
        return {int(m.group(1)) for m in map(_CHUNK.match, os.listdir(self.folder)) if m}

    def _path(self, index: int) -> str:
        return os.path.join(self.folder, f"chunk-{index:06d}.msgpack")

    def save(self, task, envelope) -> None:
        record = {"envelope": envelope, "digest": digest(task)}
        atomic_replace(self._path(task.index), lambda tmp: _wire.save(tmp, record))

    def load(self, index: int):
        try:
            return _wire.load(self._path(index))["envelope"]
        except (OSError, _wire.DecodeError, KeyError, TypeError) as exc:
            raise UsageError(f"{self._path(index)}: unreadable ({exc}); delete this file to "
                             f"compute its chunk again") from None

    def check(self, task) -> None:
        """A skipped chunk of stdin must be the chunk that was saved."""
        mine = digest(task)
        if mine is None:
            return
        try:
            saved = _wire.load(self._path(task.index)).get("digest")
        except (OSError, _wire.DecodeError, AttributeError):
            saved = None
        if saved != mine:
            raise UsageError(f"--checkpoint {self.folder}: chunk {task.index} of stdin differs "
                             f"from the saved run's; feed the same input to resume")


def digest(task) -> str | None:
    """A digest of a streamed chunk's lines; None for chunks the plan already pins down."""
    if task.span is not None or not isinstance(task.data, list):
        return None
    h = hashlib.blake2b(digest_size=16)
    for line in task.data:
        h.update(line.encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return h.hexdigest()


def _write_json(path: str, record: dict) -> None:
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def _compare(folder: str, saved: dict, now: dict) -> None:
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            what = "the input changed since" if key == "input" else f"{key} differs from"
            raise UsageError(f"--checkpoint {folder}: {what} the checkpointed run "
                             f"({_brief(saved.get(key))} then, {_brief(now.get(key))} now); "
                             f"use another folder or delete this one")


def _brief(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
