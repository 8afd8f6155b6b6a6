"""A bounded background load generator for end-to-end tests: N client threads POSTing /tts on loopback."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass

from tests.conftest import http

SENTENCES = ["今天天气真好，适合出去散步。", "欢迎使用语音合成服务。", "我们明天上午十点开会，请准时参加。",
             "长文本会被切分成句子，然后逐句合成。"]
_run_ids = itertools.count(1)


@dataclass(frozen=True)
class Sent:
    """One completed request: the X-Request-ID the client sent, the status and (for a 200) X-Cache/X-Worker."""

    request_id: str
    status: int
    cache: str
    worker: str
    started: float  # time.monotonic() when the request was sent
    finished: float


class Load:
    def __init__(self, base_url: str, clients: int = 4, max_requests: int = 2000, timeout_s: float = 120,
                 body: dict | None = None, unique: bool = False) -> None:
        """``unique``: every request gets its own text, so none is answered from the cache or shares a
        synthesis (what a fleet test needs from a shared Redis cache)."""
        self.url = base_url + "/tts"
        self.clients = clients
        self.max_requests = max_requests
        self.timeout_s = timeout_s
        self.body = body
        self.unique = unique
        self.results: list[tuple[int, str]] = []
        self.sent: list[Sent] = []  # same order as results
        self._prefix = f"load{next(_run_ids)}-{time.monotonic_ns() % 10**9}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, index: int) -> None:
        n = 0
        deadline = time.monotonic() + self.timeout_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if len(self.results) >= self.max_requests:
                    return
            body = self.body or {"text": SENTENCES[(index + n) % len(SENTENCES)]}
            if self.unique:
                body = {**body, "text": f"{body['text']}第{index}组第{n}句。"}
            request_id = f"{self._prefix}-c{index}-{n}"
            started = time.monotonic()
            cache = worker = ""
            try:
                status, headers, data = http("POST", self.url, body, timeout=60, headers={"X-Request-ID": request_id})
                detail = headers.get("X-Worker", "") if status == 200 else data[:200].decode("utf-8", "replace")
                cache, worker = headers.get("X-Cache", ""), headers.get("X-Worker", "")
            except OSError as exc:
                status, detail = -1, repr(exc)
            with self._lock:
                self.results.append((status, detail))
                self.sent.append(Sent(request_id, status, cache, worker, started, time.monotonic()))
            n += 1

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Wait until ``count`` requests have completed; fail (AssertionError) if that does not happen within
        ``timeout`` seconds or the clients stop first (request budget or ``timeout_s`` exhausted)."""
        if count > self.max_requests:
            raise AssertionError(f"waiting for {count} requests but the budget is max_requests={self.max_requests}")
        deadline = time.monotonic() + timeout
        while len(self.results) < count:
            if not any(thread.is_alive() for thread in self._threads) and len(self.results) < count:
                raise AssertionError(f"load clients stopped after {len(self.results)} requests; expected {count}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} completed requests within {timeout:g} s, "
                                     f"saw {len(self.results)} (statuses {dict(self.statuses)})")
            time.sleep(0.05)

    def wait_for_started_after(self, since: float, count: int, timeout: float = 60) -> list[Sent]:
        """Wait until ``count`` requests sent at or after ``since`` (time.monotonic()) have completed and return
        them; fail (AssertionError) when that does not happen within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                done = [sent for sent in self.sent if sent.started >= since]
            if len(done) >= count:
                return done
            if not any(thread.is_alive() for thread in self._threads):
                raise AssertionError(f"load clients stopped after {len(done)} requests since the mark; "
                                     f"expected {count}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} requests sent after the mark to complete within "
                                     f"{timeout:g} s, saw {len(done)}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)

    @property
    def statuses(self) -> Counter:
        return Counter(status for status, _ in self.results)

    def failures(self) -> list[tuple[int, str]]:
        return [r for r in self.results if r[0] != 200]
