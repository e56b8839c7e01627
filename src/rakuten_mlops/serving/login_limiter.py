"""Login throttling and request quotas, in memory or shared through Redis.

Login policy (`LoginLimiter`): every attempt first *reserves* a failure against three sliding
windows, atomically with the check, so parallel attempts can never all be evaluated:

- account + address (`login_max_failures`): the attacker's address is locked out of that account,
  the account itself is not (its owner logs in from another address);
- address (`login_max_failures_per_address`): one address guessing many user names;
- global (`login_max_failures_global`): once that many failures happened in the window across all
  addresses, an address with any recent failure is refused (a distributed flood); addresses
  without failures still log in.

A successful login gives its reservation back and clears its account+address window. With
`RAKUTEN_REDIS_URL` set the windows live in Redis (one Lua script: check and reserve in one
step), so the limits hold across workers and replicas; otherwise they are per process.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

PREFIX = "rakuten:login:"
QUOTA_PREFIX = "rakuten:quota:"


class LimiterUnavailable(RuntimeError):
    """The shared limiter store (Redis) does not answer: refuse rather than let attempts through."""


@dataclass(frozen=True)
class Budget:
    """At most `limit` failures per `key` within the window."""

    key: str
    limit: int


@dataclass(frozen=True)
class Reservation:
    """A reserved attempt (`allowed`), or how long to wait (`retry_after` seconds)."""

    allowed: bool
    retry_after: int
    keys: tuple[str, ...] = ()
    member: str = ""


class _Backend(Protocol):
    def reserve(
        self, budgets: Sequence[Budget], window_s: float, global_key: str, global_limit: int, addr_key: str
    ) -> Reservation: ...

    def release(self, reservation: Reservation, clear: str) -> None: ...


class MemoryWindows:
    """Sliding windows of timestamps per key, in this process (at most `max_keys` keys, LRU)."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._windows: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float, window_s: float) -> deque[tuple[float, str]]:
        times = self._windows.get(key)
        if times is None:
            return deque()
        while times and times[0][0] <= now - window_s:
            times.popleft()
        return times

    def _wait(self, times: deque[tuple[float, str]], limit: int, now: float, window_s: float) -> int:
        return max(1, math.ceil(times[-limit][0] + window_s - now))

    def reserve(
        self, budgets: Sequence[Budget], window_s: float, global_key: str, global_limit: int, addr_key: str
    ) -> Reservation:
        with self._lock:
            now = self.clock()
            wait = 0
            for b in budgets:
                times = self._recent(b.key, now, window_s)
                if len(times) >= b.limit:
                    wait = max(wait, self._wait(times, b.limit, now, window_s))
            glob = self._recent(global_key, now, window_s)
            if len(glob) >= global_limit and self._recent(addr_key, now, window_s):
                wait = max(wait, self._wait(glob, global_limit, now, window_s))
            if wait:
                return Reservation(False, wait)
            member = uuid.uuid4().hex
            keys = (*(b.key for b in budgets), global_key)
            for key in keys:
                times = self._recent(key, now, window_s)
                times.append((now, member))
                self._windows[key] = times
                self._windows.move_to_end(key)
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
            return Reservation(True, 0, keys, member)

    def release(self, reservation: Reservation, clear: str) -> None:
        with self._lock:
            for key in reservation.keys:
                times = self._windows.get(key)
                if times is None:
                    continue
                kept = deque(t for t in times if t[1] != reservation.member)
                if key == clear or not kept:
                    self._windows.pop(key, None)
                else:
                    self._windows[key] = kept

    def hit(self, key: str, cost: int, limit: int, window_s: float) -> int:
        """Fixed-window counter: add `cost`; seconds to wait when over `limit` (nothing added), else 0."""
        with self._lock:
            now = self.clock()
            times = self._recent(key, now, window_s)
            if len(times) + cost > limit:
                return max(1, math.ceil(times[0][0] + window_s - now)) if times else math.ceil(window_s)
            times.extend((now, "") for _ in range(cost))
            self._windows[key] = times
            self._windows.move_to_end(key)
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
            return 0


# KEYS: the budget keys, then the global key, then the address key.
# ARGV: window_ms, member, global_limit, then one limit per budget key.
# Scores are Redis server time in ms, so every worker and replica uses one clock.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local n = #KEYS - 2
local wait = 0
local function oldest_needed(key, limit)
  local items = redis.call('ZRANGE', key, -limit, -limit, 'WITHSCORES')
  return tonumber(items[2]) + window - now
end
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
end
for i = 1, n do
  local limit = tonumber(ARGV[3 + i])
  if redis.call('ZCARD', KEYS[i]) >= limit then
    wait = math.max(wait, oldest_needed(KEYS[i], limit))
  end
end
local glimit = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[n + 1]) >= glimit and redis.call('ZCARD', KEYS[n + 2]) > 0 then
  wait = math.max(wait, oldest_needed(KEYS[n + 1], glimit))
end
if wait > 0 then
  return wait
end
for i = 1, n + 1 do
  redis.call('ZADD', KEYS[i], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
"""

# KEYS[1]: counter; ARGV: cost, limit, window_ms. Returns ms to wait (0: counted).
_HIT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1 then ttl = tonumber(ARGV[3]) end
  return ttl
end
redis.call('INCRBY', KEYS[1], ARGV[1])
if used == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 0
"""


class RedisWindows:
    """The same windows in Redis: shared by every worker and replica using the same Redis."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._reserve = self.client.register_script(_RESERVE)
        self._hit = self.client.register_script(_HIT)

    def reserve(
        self, budgets: Sequence[Budget], window_s: float, global_key: str, global_limit: int, addr_key: str
    ) -> Reservation:
        member = uuid.uuid4().hex
        keys = [*(PREFIX + b.key for b in budgets), PREFIX + global_key, PREFIX + addr_key]
        args: list[int | str] = [int(window_s * 1000), member, global_limit, *(b.limit for b in budgets)]
        try:
            wait_ms = int(self._reserve(keys=keys, args=args))
        except self._errors as exc:
            raise LimiterUnavailable(f"login limiter store unavailable ({exc.__class__.__name__})") from None
        if wait_ms > 0:
            return Reservation(False, max(1, math.ceil(wait_ms / 1000)))
        return Reservation(True, 0, tuple(keys[:-1]), member)

    def release(self, reservation: Reservation, clear: str) -> None:
        try:
            pipe = self.client.pipeline()
            for key in reservation.keys:
                if key == PREFIX + clear:
                    pipe.delete(key)
                else:
                    pipe.zrem(key, reservation.member)
            pipe.execute()
        except self._errors:
            pass  # the reservation expires with its window

    def hit(self, key: str, cost: int, limit: int, window_s: float) -> int:
        try:
            wait_ms = int(self._hit(keys=[QUOTA_PREFIX + key], args=[cost, limit, int(window_s * 1000)]))
        except self._errors as exc:
            raise LimiterUnavailable(f"quota store unavailable ({exc.__class__.__name__})") from None
        return max(1, math.ceil(wait_ms / 1000)) if wait_ms > 0 else 0


class LoginLimiter:
    """The login policy of the module docstring over a memory or Redis backend."""

    def __init__(
        self,
        backend: MemoryWindows | RedisWindows,
        *,
        per_account: int,
        per_address: int,
        global_limit: int,
        window_s: float,
    ) -> None:
        self.backend = backend
        self.per_account = per_account
        self.per_address = per_address
        self.global_limit = global_limit
        self.window_s = window_s

    def reserve(self, username: str, address: str) -> Reservation:
        """Check every budget and reserve one failure in each, in one atomic step."""
        budgets = [
            Budget(login_key(username, address), self.per_account),
            Budget(f"addr|{address}", self.per_address),
        ]
        return self.backend.reserve(budgets, self.window_s, "global", self.global_limit, f"addr|{address}")

    def cancel(self, reservation: Reservation) -> None:
        """The attempt was never evaluated (no hashing slot, database down): give it back."""
        self.backend.release(reservation, "")

    def succeeded(self, reservation: Reservation, username: str, address: str) -> None:
        """A correct password: give the reservation back and clear the account+address window."""
        self.backend.release(reservation, login_key(username, address))


class Quota:
    """Per-user request quota: at most `limit` units per `window_s` (fixed window)."""

    def __init__(self, backend: MemoryWindows | RedisWindows, limit: int, window_s: float) -> None:
        self.backend = backend
        self.limit = limit
        self.window_s = window_s

    def take(self, username: str, cost: int = 1) -> int:
        """Spend `cost` units of `username`'s quota; seconds to wait when it is spent, else 0."""
        if self.limit <= 0:
            return 0
        return self.backend.hit(f"predict|{username}", cost, self.limit, self.window_s)


def login_key(username: str, client_ip: str) -> str:
    """The account+address key of one login attempt."""
    return f"acct|{username.strip().lower()[:128]}|{client_ip}"


def make_backend(redis_url: str | None) -> MemoryWindows | RedisWindows:
    """Redis windows when a URL is configured, else in-memory ones."""
    return RedisWindows(redis_url) if redis_url else MemoryWindows()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> list[Network]:
    """CIDRs or single addresses of trusted proxies."""
    return [ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip()]


def _in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: `X-Forwarded-For` is only believed when the peer is a trusted proxy.

    The header is read from the right, skipping trusted proxies; the first other address is the
    client (entries further left were written by the client and may be forged).
    """
    address = peer or "unknown"
    if not forwarded_for or not _in(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a malformed hop: do not guess, use the proxy's address
        if not _in(hop, trusted):
            return hop
        address = hop
    return address
