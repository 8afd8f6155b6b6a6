"""``tts-ops instances``: the instances of this user (or of the systemd unit) on this host, from their records
(operator's shell). A record whose pid is gone (a daemon killed with -9) is shown as stale."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tts_ops.cli.admin import table
from tts_ops.cli.target import state_dirs
from tts_ops.config import load_config
from tts_ops.instance import list_records


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("instances", help="list the instances on this host (name, pid, URLs)")
    p.add_argument("--config", type=Path, default=None, help="YAML config (its paths.state_dir)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(handler=run_instances)


def run_instances(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for directory in state_dirs(load_config(args.config)):
        for path, record in list_records(directory):
            if record is None:
                rows.append({"name": path.stem, "state": "unreadable", "record": str(path)})
                continue
            rows.append({"name": record.name, "state": "running" if record.alive() else "stale", "pid": record.pid,
                         "public_url": record.public_url, "admin_url": record.admin_url,
                         "started_at": record.started_at, "record": str(path)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no instance records found")
        return 0
    started = {r["record"]: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started_at"]))
               for r in rows if "started_at" in r}
    print("\n".join(table(["NAME", "STATE", "PID", "PUBLIC", "ADMIN", "STARTED"],
                          [[r["name"], r["state"], r.get("pid", "-"), r.get("public_url", "-"), r.get("admin_url", "-"),
                            started.get(r["record"], "-")] for r in rows])))
    return 0
