"""Exit statuses and what they mean (all processes): the supervisor reads a worker's, systemd and scripts read the
daemon's and the CLI's."""

from __future__ import annotations

# -- worker process (python -m inference.worker) -------------------------------------------------------------------
EXIT_OK = 0
#: The worker crashed at run time: restart it (with backoff).
EXIT_RUNTIME_CRASH = 1
#: Same value as gunicorn's WORKER_BOOT_ERROR: "do not restart me in a tight loop, the deployment is broken".
EXIT_BOOT_FAILURE = 3

# -- daemon (tts-ops serve) ------------------------------------------------------------------------------------------
#: A second TERM forced the stop before the drain finished.
EXIT_FORCED = 1

# -- CLI (tts-ops ...) -----------------------------------------------------------------------------------------------
#: The command ran and failed (daemon unreachable, synthesis error, invalid file).
EXIT_FAILED = 1
#: The command line or the configuration is wrong (argparse's own status for a bad flag).
EXIT_USAGE = 2
