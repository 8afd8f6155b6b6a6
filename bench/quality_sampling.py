"""Cost of online quality sampling: synthesis latency of a real ``tts-ops serve`` (1 worker, cache off) with
``quality.sample_rate`` 0 (no scorer) and 1.0 (every answer scored by the niced scorer process), the scorer's time
per sample, its load time and memory.

    python bench/quality_sampling.py [--requests 20] [--clients 1 2] [--threads 1] [--nice 10]

Each client sends ``--requests`` /tts requests back to back (sentences cut from the shared paragraph, wav), so
the latency is the client-visible one while the scorer works in parallel. Needs the quality extra for the 1.0 run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time

import psutil
from stream import Daemon  # bench/stream.py: a real daemon on free ports (the script's folder is on sys.path)

from inference.text.samples import PARAGRAPH

SENTENCES = [p + "。" for p in PARAGRAPH.replace("！", "。").replace("？", "。").split("。") if len(p) >= 6]


def scorer(daemon: Daemon) -> dict:
    return json.loads(daemon.request("GET", "/admin/status", admin=True)[1])["quality"]


def load(daemon: Daemon, clients: int, requests: int) -> list[float]:
    latencies: list[float] = []

    def client(offset: int) -> None:
        for i in range(requests):
            text = SENTENCES[(offset + i) % len(SENTENCES)]
            start = time.monotonic()
            status, _ = daemon.request("POST", "/tts", {"text": text, "format": "wav"})
            assert status == 200, status
            latencies.append(time.monotonic() - start)

    threads = [threading.Thread(target=client, args=(c * 7,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def run(args: argparse.Namespace, sample_rate: float) -> None:
    daemon = Daemon(1)
    daemon.config["quality"] = {"sample_rate": sample_rate, "threads": args.threads, "nice": args.nice,
                                "queue_size": 1000}
    daemon.start()
    try:
        daemon.wait_ready(1)
        if sample_rate:
            deadline = time.monotonic() + 180
            while scorer(daemon)["scorer"]["state"] != "ready":
                if time.monotonic() > deadline:
                    raise SystemExit("scorer not ready:\n" + daemon.log_path.read_text()[-3000:])
                time.sleep(0.2)
        load(daemon, 1, 2)  # warm-up, not counted
        for clients in args.clients:
            lat = sorted(load(daemon, clients, args.requests))
            print(f"sample_rate {sample_rate:g}, {clients} client(s): latency median {statistics.median(lat):.3f} s, "
                  f"p90 {lat[int(0.9 * (len(lat) - 1))]:.3f} s, {len(lat)} requests")
        if sample_rate:
            wanted = 2 + args.requests * sum(args.clients)
            deadline = time.monotonic() + 600
            while (q := scorer(daemon))["scored"] + q["unscorable"] < wanted and time.monotonic() < deadline:
                time.sleep(0.5)
            lines = [json.loads(x) for x in (daemon.workdir / "logs" / "synthesis.log").read_text().splitlines()]
            scored = [x for x in lines if x.get("event") == "mos"]
            audio_s = statistics.fmean(x["audio_s"] for x in lines if "event" not in x)
            rss = psutil.Process(q["scorer"]["pid"]).memory_info().rss / 2**20
            print(f"scorer: load {q['scorer']['load_s']:.1f} s, RSS {rss:.0f} MiB, {len(scored)} scores, "
                  f"score time median {statistics.median(x['score_s'] for x in scored):.3f} s per answer "
                  f"(mean audio {audio_s:.2f} s), mean MOS {statistics.fmean(x['mos'] for x in scored):.2f}, "
                  f"dropped {sum(q['dropped'].values())}")
    finally:
        daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"scorer threads {args.threads}, nice {args.nice}")
    for sample_rate in (0.0, 1.0):
        run(args, sample_rate)


if __name__ == "__main__":
    main()
