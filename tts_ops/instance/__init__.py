"""One instance of tts-ops on a host (daemon process and the CLI): its runtime lock, and the files that let the
CLI find it by name (the instance record and the admin token file)."""

from tts_ops.instance.lock import LOCK_NAME, RuntimeLock
from tts_ops.instance.record import (
    InstanceFiles,
    InstanceRecord,
    list_records,
    read_record,
    record_path,
    write_private_file,
)

__all__ = ["LOCK_NAME", "InstanceFiles", "InstanceRecord", "RuntimeLock", "list_records", "read_record",
           "record_path", "write_private_file"]
