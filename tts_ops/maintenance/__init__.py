"""Scheduled maintenance of the daemon (daemon process): the apscheduler loop and its job state
(``scheduler``) and the blocking filesystem work the jobs do in threads (``jobs``)."""

from tts_ops.maintenance.scheduler import JOB_IDS, Maintenance

__all__ = ["JOB_IDS", "Maintenance"]
