"""The challenger's scoring process: a child of the API process at the lowest CPU priority.

The challenger scores in its own process (its own interpreter lock) niced to 19, so the Linux
scheduler gives it only the CPU the champion's requests leave: under load its queue in the API
process fills and new shadow listings are dropped (counted) instead of slowing the answers.

The API process keeps every check: it downloads a version and verifies its signature, then asks
the child to load that verified local copy and make the smoke prediction (`load_checked_copy`).
Messages go over one pipe, one call at a time. The child exits when asked, when the pipe closes
(the API process ended, however it ended) and, as a daemon process, with its parent.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
NICE = 19
KEEP_MODELS = 2  # a batch taken before a swap may still name the previous version


class ShadowProcessError(RuntimeError):
    """The child refused a call (load or score failed there), or it is gone."""


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the child process
    """The child's loop: load verified copies, score batches, answer each call on `conn`."""
    from rakuten_mlops.serving.model_loader import load_checked_copy
    from rakuten_mlops.serving.predictor import predict_rows

    with contextlib.suppress(OSError):  # if refused, the separate interpreter lock still helps
        os.nice(NICE)
    models: OrderedDict[str, Any] = OrderedDict()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the API process is gone
            return
        kind = message[0]
        if kind == "stop":
            return
        try:
            if kind == "load":
                _, key, path = message
                models[key] = load_checked_copy(Path(path))
                models.move_to_end(key)
                while len(models) > KEEP_MODELS:
                    models.popitem(last=False)
                answer: Any = None
            elif kind == "score":
                _, key, rows = message
                if key not in models:
                    raise ShadowProcessError(f"version {key} is not loaded in the scoring process")
                answer = predict_rows(models[key], rows)
            else:
                raise ShadowProcessError(f"unknown call {kind!r}")
        except Exception as exc:
            conn.send(("error", f"{exc.__class__.__name__}: {exc}"[:2000]))
        else:
            conn.send(("ok", answer))


class ShadowProcess:
    """The parent's handle on the scoring process: started on the first load, stopped with the app."""

    def __init__(self, poll_s: float = 0.2) -> None:
        self.poll_s = poll_s
        self._lock = threading.Lock()  # one call at a time on the pipe
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def load(self, key: str, path: Path) -> None:
        """Load the verified copy at `path` in the child (started if needed) under `key`."""
        self._call(("load", key, str(path)), start=True)

    def score(
        self, key: str, rows: list[dict[str, Any]], abandon: Callable[[], bool]
    ) -> list[dict[str, Any]]:
        """The challenger's outputs for `rows`; gives up (ShadowProcessError) once `abandon()` is true."""
        return list(self._call(("score", key, rows), start=False, abandon=abandon))

    def _call(
        self, message: tuple[Any, ...], start: bool, abandon: Callable[[], bool] = lambda: False
    ) -> Any:
        with self._lock:
            if self._process is None or not self._process.is_alive():
                if not start:
                    ended = (
                        "" if self._process is None else f" (it ended, exit code {self._process.exitcode})"
                    )
                    raise ShadowProcessError(f"the scoring process is not running{ended}")
                self._start()
            process, conn = self._process, self._conn
            assert process is not None and conn is not None
            try:
                conn.send(message)
                while not conn.poll(self.poll_s):
                    if not process.is_alive():
                        raise ShadowProcessError(f"the scoring process ended (exit code {process.exitcode})")
                    if abandon():
                        self._stop_locked(0.0)  # the pipe now holds an answer nobody reads
                        raise ShadowProcessError("abandoned: the shadow scorer is stopping")
                status, value = conn.recv()
            except (EOFError, OSError) as exc:
                self._stop_locked(0.0)
                raise ShadowProcessError(f"the scoring process ended ({exc.__class__.__name__})") from None
        if status != "ok":
            raise ShadowProcessError(value)
        return value

    def _start(self) -> None:
        self._stop_locked(0.0)
        context = multiprocessing.get_context("spawn")  # no copy of the API's threads and locks
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child,), name="rakuten-shadow-scorer", daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        log.info("shadow scoring process %s started (nice %d)", process.pid, NICE)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the child to exit; terminate it when it does not within `timeout_s`."""
        with self._lock:
            self._stop_locked(timeout_s)

    def _stop_locked(self, timeout_s: float) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):  # the child may be gone already
                conn.send(("stop",))
            conn.close()
        if process is None:
            return
        process.join(timeout_s)
        if process.is_alive():
            process.terminate()
            process.join(2.0)
        if process.is_alive():
            process.kill()
            process.join(1.0)
