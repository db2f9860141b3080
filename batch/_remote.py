"""Exceptions as data: how an error raised in a worker reaches the caller.

A worker describes its exception as plain data (type name, message, traceback text, and
a pickle of the exception when it has one); the coordinator rebuilds it as a WorkerError
that is also an instance of the original type where the type allows, with the original
as `__cause__` and the worker's traceback printed under it. An exception that cannot be
rebuilt still arrives, as a WorkerError with its type name and text: an error is data on
the wire, so it can never hang a run.
"""

from __future__ import annotations

import copyreg
import io
import pickle

from ._errors import BatchError, WorkerError, where


class _RemoteTraceback(Exception):
    """Carries a worker's traceback text so Python prints it under the rebuilt error."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def describe_exception(exc: BaseException, tb_text: str, *, pickled: bool = True) -> dict:
    """Turn an exception raised in a worker into plain data for the wire."""
    cls = type(exc)
    blob = pickle_exception(exc) if pickled else None
    try:
        message = str(exc)
    except Exception as e:  # a broken __str__ must not lose the error
        message = f"<str() failed: {type(e).__name__}>"
    return {
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "message": message,
        "traceback": tb_text,
        "pickle": blob,
    }


def pickle_exception(exc: BaseException) -> bytes | None:
    """The exception pickled by its own __reduce__, or None if it cannot be.

    Not pickle.dumps: importing dask.distributed installs tblib's reducer for every
    exception class in copyreg, process-wide, and that one rebuilds an exception without
    calling __init__: SystemExit(2) came back with code None.
    """
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {k: v for k, v in copyreg.dispatch_table.items()
                              if not (isinstance(k, type) and issubclass(k, BaseException))}
    try:
        pickler.dump(exc)
    except Exception:  # unpicklable args, locks in attributes, local classes, ...
        return None
    return buf.getvalue()


_MIXINS: dict[type, type] = {}


def _mixin(original: type) -> type:
    """WorkerError subclass that is also `original`, so `except ValueError:` still works."""
    cls = _MIXINS.get(original)
    if cls is None:
        # ExceptionGroup's `message` is a read-only C attribute, which would refuse the
        # WorkerError message: a plain class attribute here lets the instance have its own.
        namespace = {"__module__": __name__}
        if hasattr(original, "message"):
            namespace["message"] = ""
        try:
            cls = type(f"WorkerError[{original.__qualname__}]", (WorkerError, original),
                       namespace)
        except TypeError:  # incompatible C layouts, final classes
            cls = WorkerError
        _MIXINS[original] = cls
    return cls


_UNSET = object()


def worker_error(info: dict, *, chunk=None, items=None, cause=_UNSET) -> WorkerError:
    """Rebuild the error a worker described with `describe_exception`.

    `cause` is the live exception when it was raised in this process.
    """
    rebuilt = cause is _UNSET
    if rebuilt:
        cause = None
        if info.get("pickle") is not None:
            try:
                cause = pickle.loads(info["pickle"])
            except Exception:  # odd constructors fail here: keep the text, drop the object
                cause = None
    type_name = info.get("type", "Exception")
    short = type_name.rsplit(".", 1)[-1] if type_name.startswith("builtins.") else type_name
    message = f"{where(chunk, items)} failed: {short}: {info.get('message', '')}"
    cls = WorkerError
    # Only Exception subclasses join the mixin: a rebuilt SystemExit or KeyboardInterrupt
    # must never propagate as itself and end the caller.
    if isinstance(cause, Exception) and not isinstance(cause, BatchError):
        cls = _mixin(type(cause))
    err = _new_error(cls, cause)
    # Not BatchError.__init__: through the mixin's MRO it would call the original type's
    # constructor, whose signature is anybody's guess.
    err.message, err.chunk, err.items = message, chunk, items
    err.args = cause.args if cause is not None else (message,)
    err.type_name = type_name
    err.remote_traceback = info.get("traceback", "")
    if cause is not None:
        if rebuilt:  # a live exception keeps its own traceback and chain
            cause.__cause__ = _RemoteTraceback(err.remote_traceback)
        err.__cause__ = cause
    elif err.remote_traceback:
        err.__cause__ = _RemoteTraceback(err.remote_traceback)
    return err


def _new_error(cls: type, cause) -> WorkerError:
    if cls is WorkerError:
        return Exception.__new__(WorkerError)
    try:  # some types (OSError) need their own __new__ with their own args
        return cls.__new__(cls, *cause.args)
    except Exception:
        pass
    try:  # MemoryError's __new__ refuses a subclass whose first base is not its own
        return BaseException.__new__(cls, *cause.args)  # ("... is not safe"); this is
    except Exception:                                    # the constructor it wraps
        return Exception.__new__(WorkerError)


def local_worker_error(exc: BaseException, tb_text: str, *, chunk=None, items=None):
    """The WorkerError for an exception raised in this process (thread, serial backends).

    It goes through the same description as a forked worker's error, so every backend
    raises the same types with the same attributes; the cause is the live exception.
    """
    return worker_error(describe_exception(exc, tb_text, pickled=False), chunk=chunk,
                        items=items, cause=exc)
