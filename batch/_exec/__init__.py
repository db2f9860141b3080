"""Run a program over items, many at a time: the engine of `batch exec` and batch.pexec.

    items ─► _replace.Template.render(columns, job number, slot) ─► argv (never a shell)
          ─► _runner.Runner: _spawn (posix_spawn, own process group), _lifeline (no job
             outlives the coordinator), pipes read through one selector into
             _output.Capture (memory up to a budget, then a temporary file), timeouts,
             retries, Ctrl-C ─► _job.Done per job, in completion order
          ─► _api: pexec / iexec (CompletedProcess, in item order or not; JobFailed)
             batch/cli/exec: `batch exec` (printing, joblog, --halt, exit statuses)
"""
