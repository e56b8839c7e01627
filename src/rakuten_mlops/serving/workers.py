"""Several worker processes on one port, each with its own listening socket (`SO_REUSEPORT`).

With one socket shared by every worker (uvicorn's `--workers`), whichever worker wakes first
accepts every connection waiting: 8 keep-alive clients connecting together all landed on one
worker, which then served every request while the other stayed idle (measured: 1.03 cores busy
with 2 workers on 2 cores). With a socket per worker bound with `SO_REUSEPORT`, the kernel hands
each new connection to one of the listening sockets by a hash of its addresses, so connections
spread over the workers whatever their timing — as in nginx's `reuseport` or gunicorn's
`--reuse-port`. Linux only lets sockets of the same user join a port's group.

uvicorn's supervisor (`Multiprocess`: health checks, restarts, SIGHUP/TTIN/TTOU) is kept as is:
it passes a list of sockets to each worker it starts, and `WorkerSockets` is a list that turns
into a freshly bound socket when a worker process unpickles it. The supervisor itself holds no
listening socket, so a worker that dies takes its socket with it instead of leaving a queue
nobody accepts from; its replacement binds a new one.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

# uvicorn's exit code for a worker that cannot start: its supervisor then stops instead of retrying
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("uvicorn.error")


def reuse_port_supported() -> bool:
    """Whether this system spreads connections over sockets bound with SO_REUSEPORT (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _tcp_socket(host: str) -> socket.socket:
    """A TCP socket of the address family of `host` (IPv6 for an address with colons)."""
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def bind_reuse_port(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on host:port that other SO_REUSEPORT sockets of this user may share."""
    sock = _tcp_socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def check_port(host: str, port: int) -> None:
    """Raise OSError (with the address in its message) when something already listens on host:port.

    The probe binds *without* SO_REUSEPORT: such a bind fails next to any listener, SO_REUSEPORT
    or not, so a second `serve --workers N` on the same port is refused instead of silently
    sharing the first one's connections.
    """
    with _tcp_socket(host) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _bind_in_worker(host: str, port: int, backlog: int) -> list[socket.socket]:
    try:
        return [bind_reuse_port(host, port, backlog)]
    except OSError as exc:
        log.error("worker cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)


class WorkerSockets(list):  # type: ignore[type-arg]
    """An empty list in the supervisor; one socket of its own, bound on arrival, in each worker."""

    def __init__(self, host: str, port: int, backlog: int = 2048) -> None:
        super().__init__()
        self.host, self.port, self.backlog = host, port, backlog

    def __reduce__(self) -> tuple[Any, ...]:
        return (_bind_in_worker, (self.host, self.port, self.backlog))


def run_workers(app: str, host: str, port: int, workers: int, **uvicorn_options: Any) -> None:
    """Serve the app factory `app` with `workers` processes, one SO_REUSEPORT socket each.

    Raises OSError when the port cannot be bound (before any worker starts).
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, host=host, port=port, workers=workers, **uvicorn_options)
    check_port(host, port)
    log.info(
        "%d workers on http://%s:%d, each listening on its own socket (SO_REUSEPORT): "
        "the kernel spreads connections over them",
        workers, host, port,
    )  # fmt: skip
    Multiprocess(config, sockets=WorkerSockets(host, port, config.backlog)).run()
