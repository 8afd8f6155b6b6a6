"""A bounded background load generator for end-to-end tests: N client threads POSTing /tts on loopback."""

from __future__ import annotations

import threading
import time
from collections import Counter

from tests.conftest import http

SENTENCES = ["今天天气真好，适合出去散步。", "欢迎使用语音合成服务。", "我们明天上午十点开会，请准时参加。",
             "长文本会被切分成句子，然后逐句合成。"]


class Load:
    def __init__(self, base_url: str, clients: int = 4, max_requests: int = 2000, timeout_s: float = 120,
                 body: dict | None = None) -> None:
        self.url = base_url + "/tts"
        self.clients = clients
        self.max_requests = max_requests
        self.timeout_s = timeout_s
        self.body = body
        self.results: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self) -> "Load":
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
            try:
                status, headers, data = http("POST", self.url, body, timeout=60)
                detail = headers.get("X-Worker", "") if status == 200 else data[:200].decode("utf-8", "replace")
            except OSError as exc:
                status, detail = -1, repr(exc)
            with self._lock:
                self.results.append((status, detail))
            n += 1

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.results) < count and time.monotonic() < deadline:
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
