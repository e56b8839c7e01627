"""Login failure limiter: a sliding window of failures per key (username + client IP)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureLimiter:
    """Blocks a key after `max_failures` failures within `window_s` seconds, until the oldest expires.

    In memory and per process: with several workers each keeps its own count, so the effective
    limit is `max_failures` times the worker count. At most `max_keys` keys are tracked (LRU),
    so an attacker cannot grow memory without bound by varying usernames.
    """

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it is not blocked."""
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if times is None or len(times) < self.max_failures:
                return 0
            return max(1, math.ceil(times[-self.max_failures] + self.window_s - now))

    def record_failure(self, key: str) -> None:
        """Count one failure for `key`."""
        with self._lock:
            now = self.clock()
            times = self._recent(key, now) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        """Forget the failures of `key` (after a successful login)."""
        with self._lock:
            self._failures.pop(key, None)


def login_key(username: str, client_ip: str) -> str:
    """The limiter key of one login attempt."""
    return f"{username.strip().lower()}|{client_ip}"
