"""``tts-ops status|restart|scale|drain``: the admin API's command-line client (operator's shell).

Which instance and which token: ``tts_ops.cli.target`` (``--instance``, ``--port``, ``--config``, ``--url``).
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tts_ops.cli.errors import CliError
from tts_ops.cli.target import add_target_arguments, resolve_target
from tts_vocab.exit_codes import EXIT_USAGE
from tts_vocab.limits import MAX_WORKERS


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        add_target_arguments(p)
        p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the daemon")

    status = sub.add_parser("status", help="show workers, queue and totals")
    common(status)
    status.add_argument("--json", action="store_true", help="raw JSON instead of a table")
    status.set_defaults(handler=run_status)
    restart = sub.add_parser("restart", help="rolling restart of all workers, or one with --worker")
    common(restart)
    restart.add_argument("--worker", default=None, help="worker id (e.g. w1)")
    restart.set_defaults(handler=run_restart)
    scale = sub.add_parser("scale", help="set the number of workers (kept across reloads until the file's "
                                         "workers.count changes, or --reset)")
    common(scale)
    scale.add_argument("count", type=int, nargs="?", default=None, help=f"number of workers (1-{MAX_WORKERS})")
    scale.add_argument("--reset", action="store_true", help="drop the runtime scale: back to the file's count")
    scale.set_defaults(handler=run_scale)
    drain = sub.add_parser("drain", help="drain then stop the daemon, as SIGTERM (health checks fail first)")
    common(drain)
    drain.set_defaults(handler=run_drain)


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    target = resolve_target(args)
    url, token = target.url, target.token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise CliError(f"{method} {path}: HTTP {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the admin API at {url}: {reason} (is `tts-ops serve` running?)") from None


def run_status(args: argparse.Namespace) -> int:
    status = call(args, "GET", "/admin/status")
    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
        return 0
    print(format_status(status))
    return 0


def format_status(status: dict[str, Any]) -> str:
    """The status document as text: a summary line, then one table each for workers, cache, maintenance jobs and
    logs, and the quality scorer when sampling is on; sections the daemon did not send are left out."""
    w = status["workers"]
    scaled = f" (runtime scale; the file says {w['configured']})" if w.get("override") is not None else ""
    lines = [f"tts-ops pid {status['pid']}, {status.get('state', 'running')}, up {status['uptime_s']:.0f}s, "
             f"engine {status['engine']}, {w['ready']}/{w['target']} workers ready{scaled}, "
             f"queue {status['queue_depth']}/{status['queue_limit']}, in flight {status['in_flight']}"]
    lines += _workers_section(w["items"])
    if w.get("zygote"):
        z = w["zygote"]
        lines.append(f"zygote: {z['state']}, pid {z['pid'] or '-'}, forks {z['forks']}, restarts {z['restarts']}"
                     + (f", last exit: {z['last_exit_reason']}" if z["last_exit_reason"] else ""))
    lines.append("totals: " + ", ".join(f"{k} {v}" for k, v in status["totals"].items()))
    if status.get("cache") is not None:
        lines += ["", *_cache_section(status["cache"])]
    if status.get("maintenance"):
        lines += ["", *_maintenance_section(status["maintenance"])]
    if status.get("logs"):
        lines += ["", *_logs_section(status["logs"])]
    if status.get("quality", {}).get("enabled"):
        lines += ["", *_quality_section(status["quality"])]
    return "\n".join(lines)


def table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    return ["  ".join(str(x).ljust(n) for x, n in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]


def _workers_section(items: list[dict[str, Any]]) -> list[str]:
    headers = ["ID", "PID", "STATE", "UPTIME", "RESTARTS", "RSS MB", "CPU%", "INFLT", "SERVED", "PROBE ms",
               "LAST EXIT"]
    rows = [[r["id"], r["pid"] or "-", r["state"], _fmt(r["uptime_s"], "{:.0f}s"), r["restarts"],
             _fmt(r["rss_mb"], "{:.0f}"), _fmt(r["cpu_percent"], "{:.0f}"), r["in_flight"], r["served"],
             _fmt(r["last_probe_ms"], "{:.1f}"), r["last_exit_reason"] or "-"] for r in items]
    lines = table(headers, rows)
    # The cause of a worker that is not serving (FAILED after boot failures, EXITED, STARTING again): its last
    # ERROR line, e.g. a checksum mismatch, which the exit code alone ("boot failure (exit 3)") does not say.
    lines += [f"  {r['id']} cause: {r['last_error']}" for r in items
              if r.get("last_error") and r["state"] not in ("ready", "retired")]
    return lines


def _cache_section(cache: dict[str, Any]) -> list[str]:
    if not cache:
        return ["CACHE disabled"]
    up = "up" if cache.get("up") else "DOWN"
    size = (f"{cache['bytes'] / 2**20:.1f}/{cache['max_bytes'] / 2**20:.0f} MB"
            if cache.get("max_bytes") else f"{(cache.get('bytes') or 0) / 2**20:.1f} MB")
    headers = ["CACHE", "STATE", "HIT%", "HITS", "MISSES", "STORES", "ITEMS", "SIZE", "EVICTIONS", "ERRORS",
               "OUTAGES"]
    row = [cache.get("backend", "-"), up, _fmt(cache.get("hit_ratio"), "{:.1%}"), cache.get("hits", 0),
           cache.get("misses", 0), cache.get("stores", 0), _fmt(cache.get("items"), "{}"), size,
           _fmt(cache.get("evictions"), "{}"), cache.get("errors", 0), cache.get("outages", 0)]
    lines = table(headers, [row])
    if cache.get("breaker"):
        lines.append(f"  breaker: {json.dumps(cache['breaker'], ensure_ascii=False)}")
    return lines


def _maintenance_section(jobs: list[dict[str, Any]]) -> list[str]:
    headers = ["JOB", "TRIGGER", "LAST RUN", "TOOK", "RUNS", "FAILURES", "NEXT RUN", "LAST ERROR"]
    rows = [[j["id"], j["trigger"], _time(j.get("last_run")), _fmt(j.get("last_duration_s"), "{:.2f}s"),
             j.get("runs", 0), j.get("failures", 0), _time(j.get("next_run")),
             (j.get("last_error") or "-")[:80]] for j in jobs]
    return table(headers, rows)


def _logs_section(logs: dict[str, Any]) -> list[str]:
    headers = ["LOG", "SIZE KB", "WRITTEN KB", "DROPPED", "OPEN"]
    rows = [[name, _fmt(logs["size"].get(name), "{:.1f}", 1024), _fmt(logs["bytes_written"].get(name), "{:.1f}", 1024),
             logs["dropped"].get(name, 0), "yes" if logs["open"].get(name) else "NO"] for name in logs["size"]]
    lines = table(headers, rows)
    lines.append(f"  rotations {logs['rotations']} (last {_time(logs.get('last_rotation'))}), "
                 f"pruned {logs['pruned_files']} files / {logs['pruned_bytes'] / 1024:.1f} KB")
    return lines


def _quality_section(quality: dict[str, Any]) -> list[str]:
    scorer = quality["scorer"]
    headers = ["SCORER", "PID", "RESTARTS", "SAMPLE", "QUEUE", "SCORED", "LOW", "DROPPED"]
    row = [scorer["state"], scorer.get("pid") or "-", scorer.get("restarts", 0), f"{quality['sample_rate']:g}",
           f"{quality.get('queue', 0)}/{quality.get('queue_size', 0)}", quality.get("scored", 0),
           quality.get("low_quality", 0), sum(quality.get("dropped", {}).values())]
    lines = table(headers, [row])
    if scorer.get("reason") and scorer["state"] != "ready":
        lines.append(f"  scorer cause: {scorer['reason']}")
    means = quality.get("recent_mean") or {}
    if means:
        lines.append("  recent MOS: " + ", ".join(f"{emotion} {mos:.2f}" for emotion, mos in means.items()))
    return lines


def _time(iso: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` (the document keeps the full precision and offset)."""
    return "-" if not iso else iso.replace("T", " ")[:19]


def _fmt(value: Any, pattern: str, divisor: float = 1) -> str:
    return "-" if value is None else pattern.format(value / divisor if divisor != 1 else value)


def run_restart(args: argparse.Namespace) -> int:
    if args.worker:
        result = call(args, "POST", f"/admin/workers/{args.worker}/restart")
        print(f"worker {result['restarted']} replaced by {result['replacement']} ({result['state']})")
    else:
        result = call(args, "POST", "/admin/restart")
        print("rolling restart done: " + (", ".join(result["replaced"]) or "no workers"))
    return 0


def run_scale(args: argparse.Namespace) -> int:
    if args.reset == (args.count is not None):
        raise CliError("give either a worker count or --reset", code=EXIT_USAGE)
    if args.reset:
        result = call(args, "POST", "/admin/scale", {"reset": True})
        print(f"runtime scale dropped: {result['workers']} workers, as the config file says")
        return 0
    if not 1 <= args.count <= MAX_WORKERS:
        raise CliError(f"count must be between 1 and {MAX_WORKERS}", code=EXIT_USAGE)
    result = call(args, "POST", "/admin/scale", {"workers": args.count})
    print(f"scaled to {result['workers']} workers (kept across reloads; 'tts-ops scale --reset' to follow the "
          "config file)")
    return 0


def run_drain(args: argparse.Namespace) -> int:
    result = call(args, "POST", "/admin/drain")
    print("already draining" if result["already"] else
          f"draining: health checks fail now, {result['in_flight']} request(s) in flight; the daemon exits once done")
    return 0
