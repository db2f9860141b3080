"""Where Dask runs go: a Client the caller gives, one connected to an address, or a
LocalCluster sized to this machine, started on first use.

A Pool keeps one Cluster for its lifetime (so its LocalCluster starts once, not per
call); a backend created without one owns a Cluster for one run. This is the first module
of the Dask backend to import `distributed`, so it is where a missing Dask is reported.
"""

from __future__ import annotations

import logging
import socket

from .. import _cpus, _errors

HINT = "pip install 'batch[dask]'"


class DaskMissing(_errors.BatchError, ImportError):
    """Dask distributed is not installed where backend='dask' was asked for.

    A BatchError, so the command reports it in one line; an ImportError, because it is one.
    """


try:
    import distributed
except ImportError as exc:
    raise DaskMissing("backend 'dask' needs Dask distributed, which is not installed: "
                      + HINT) from exc

# How long connecting to a scheduler may take before the run fails. Dask's default (30 s)
# makes a mistyped address look like a hang; a reachable scheduler answers in milliseconds,
# even across a data centre.
CONNECT_TIMEOUT = 10


class Cluster:
    """A distributed.Client to run on, and what to shut down afterwards.

    close() shuts down only what this object started (a Client it connected, a
    LocalCluster), never a Client it was given, so the caller's cluster stays usable.
    """

    def __init__(self, *, address: str | None = None, client=None, workers: int | None = None):
        if address is not None and client is not None:
            raise ValueError("give the Dask scheduler's address= or a client=, not both")
        self._workers = workers
        self._client = client
        self._owned: list = []   # what close() shuts down, last started first
        if address is not None:
            try:
                _probe(address)
                self._client = distributed.Client(address, timeout=CONNECT_TIMEOUT,
                                                  set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise _errors.BatchError(
                    f"cannot reach the Dask scheduler at {address}: {exc}") from exc
            self._owned.append(self._client)

    @property
    def client(self):
        if self._client is None:
            # One single-threaded worker process per core, as the fork backend uses them:
            # Python functions hold the GIL, so more threads per worker would share a core.
            # Its workers log nothing below CRITICAL: batch reports every failed chunk
            # itself, and Dask's log of the same error is a screenful of task repr. Its
            # scheduler's HTTP server takes any free port: a fixed 8787 warns when taken.
            local = distributed.LocalCluster(
                n_workers=self._workers or _cpus.usable_cpus(), threads_per_worker=1,
                processes=True, dashboard_address=":0", silence_logs=logging.CRITICAL)
            self._owned.append(local)
            self._client = distributed.Client(local, set_as_default=False)
            self._owned.append(self._client)
        return self._client

    def threads(self) -> int | None:
        """Worker threads of a cluster we were pointed at; None for our own LocalCluster."""
        if self._client is None:
            return None
        return sum(self._client.nthreads().values()) or None

    def submitter(self, defaults: dict):
        """Pool.submit's engine on this cluster (backends/dask.py)."""
        from .dask import Submitter

        return Submitter(self.client, defaults)

    def close(self) -> None:
        owned, self._owned = self._owned, []
        if owned:
            self._client = None
        for thing in reversed(owned):
            thing.close()


def _probe(address: str) -> None:
    """Fail at once when nothing listens at a tcp:// address.

    A Client that cannot connect retries until CONNECT_TIMEOUT, then raises and leaves its
    event-loop thread running (it never returns the object to close); a plain socket
    says "connection refused" in a millisecond. Other protocols are left to Dask.
    """
    from distributed.comm import get_address_host_port, parse_address

    try:
        scheme = parse_address(address)[0]
        host, port = get_address_host_port(address) if scheme in ("tcp", "tls") else (None, 0)
    except ValueError as exc:
        raise ValueError(f"not a Dask scheduler address: {address!r} ({exc})") from None
    if host is not None:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
