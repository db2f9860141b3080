"""`batch exec --backend dask`: the same jobs, run on the workers of a Dask cluster.

    jobs ─► render argv ─► _dask.submit_job(client, argv, stdin, env, cwd, timeout)
        │                  (at most `workers` jobs in flight; the program runs on a worker,
        │                   in a process group of its own, no shell)
        ◄── distributed.wait(FIRST_COMPLETED) ◄── JobResult ─► a Done like a local job's: the
            wait status rebuilt from returncode/signal, output in Captures, Host set
    the end, an error, Ctrl-C or SIGTERM: _dask.cancel_job for every job still in flight,
    so its program stops on the cluster instead of running out its timeout

The one-job machinery (_dask.py: submit_job, result_of, cancel_job) is the other half of
this backend; this module only schedules jobs over it with the local Runner's interface
(`run(jobs)` yields Done in completion order, `stop_launching()`), so output, joblog,
--halt, --retries and exit statuses mean the same on a cluster as on this machine.
"""

from __future__ import annotations

import collections

from ..._exec._job import Done
from ..._exec._output import Budget, Capture


class DaskRunner:
    def __init__(self, render, *, workers: int | None, timeout=None, retries: int = 0,
                 env=None, cwd=None, address=None, budget=None):
        self._render, self.workers, self.timeout = render, workers, timeout
        self.retries, self.env, self.cwd, self.address = retries, env, cwd, address
        self.budget = budget or Budget()
        self._launching = True

    def stop_launching(self) -> None:
        self._launching = False

    def run(self, jobs):
        import distributed

        from ...backends._dask_cluster import Cluster
        from . import _dask

        cluster = Cluster(address=self.address)
        client = cluster.client
        workers = self.workers or cluster.threads() or 1
        flight: dict = {}
        finished: collections.deque = collections.deque()
        free = list(range(workers, 0, -1))
        jobs, retry, exhausted = iter(jobs), collections.deque(), False
        try:
            while True:
                while self._launching and len(flight) < workers:
                    job = retry.popleft() if retry else (None if exhausted else next(jobs, None))
                    if job is None:
                        exhausted = True
                        break
                    slot = free.pop()
                    argv = self._render(job, slot)
                    future = _dask.submit_job(client, argv, job.stdin, self.env, self.cwd,
                                              self.timeout)
                    flight[future] = job, argv, slot
                if not flight:
                    break
                if not finished:  # distributed.wait asks for a default client
                    with client.as_current():
                        finished.extend(distributed.wait(
                            list(flight), return_when="FIRST_COMPLETED").done)
                future = finished.popleft()
                job, argv, slot = flight.pop(future)
                free.append(slot)
                free.sort(reverse=True)
                done = self._done(job, argv, slot, _dask.result_of(future))
                if done.returncode != 0 and job.attempt <= self.retries:
                    done.close()
                    retry.append(job.again())
                    continue
                yield done
        finally:
            for future in flight:
                _dask.cancel_job(client, future)
            cluster.close()

    def _done(self, job, argv, slot, result) -> Done:
        if result.signal:
            status = result.signal                    # as waitpid reports a signal
        else:
            status = (result.returncode & 0xFF) << 8  # as waitpid reports an exit
        out, err = Capture(self.budget), Capture(self.budget)
        out.write(result.stdout)
        err.write(result.stderr)
        return Done(job, argv, slot, status=status, started=result.start,
                    runtime=result.runtime, stdout=out, stderr=err,
                    sent=len(job.stdin or b""), received=len(result.stdout),
                    timed_out=result.timed_out, error=result.error or "", host=result.host)
