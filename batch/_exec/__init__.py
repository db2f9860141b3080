"""Run a program over items, many at a time: the engine of `batch exec` and batch.pexec.

    items ─► _replace.Template.render(columns, job number, slot) ─► argv (never a shell)
          ─► _runner.Runner: what starts next (retries, Ctrl-C, results handed over);
             _spawn/_spawner (posix_spawn, own process group), _lifeline (no job
             outlives the coordinator); _inflight: the running jobs' pipes on one poll
             object, read into _output.Capture (memory up to a budget, then a temporary
             file), stdin fed (_feed), timeouts, reaping ─► _job.Done per job, in
             completion order
          ─► _api: pexec / iexec (CompletedProcess, in item order or not; JobFailed)
             batch/cli/exec: `batch exec` (printing, joblog, --halt, exit statuses)
"""
