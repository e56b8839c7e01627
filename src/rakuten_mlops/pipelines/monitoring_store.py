"""Where monitoring writes under the home folder, the `latest` files `/metrics` reads, past retrains."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from rakuten_mlops.infra import read_jsonl

RELOADS_LOG = "reloads.jsonl"  # one line per API reload attempt after a promotion (the DAGs' reload_model)


@dataclass(frozen=True)
class MonitoringDir:
    root: Path

    @classmethod
    def of_home(cls, home: Path) -> MonitoringDir:
        return cls(Path(home) / "monitoring")

    @property
    def drift(self) -> Path:
        return self.root / "drift"

    @property
    def latest_drift(self) -> Path:
        return self.drift / "latest.json"

    @property
    def latest_live(self) -> Path:
        return self.root / "live" / "latest.json"

    @property
    def decisions_log(self) -> Path:
        return self.root / "decisions" / "decisions.jsonl"

    @property
    def latest_decision(self) -> Path:
        return self.root / "decisions" / "latest.json"

    @property
    def retrains_log(self) -> Path:
        """One :func:`~rakuten_mlops.pipelines.monitoring.retrain_record` per line, CLI and DAG alike."""
        return self.root / "retrains.jsonl"

    @property
    def reloads_log(self) -> Path:
        """One line per API reload a DAG attempted after a promotion (`reloaded`, `error`)."""
        return self.root / RELOADS_LOG

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    def new_drift_dir(self, label: str) -> Path:
        """A fresh folder for one report: UTC time, then what was compared."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)[:60] or "report"
        path, n = self.drift / f"{stamp}-{safe}", 1
        while path.exists():
            n += 1
            path = self.drift / f"{stamp}-{safe}-{n}"
        return path


def retrain_tried_on(mon: MonitoringDir, data_hash: str | None, champion: str | None) -> str | None:
    """Why not to retrain again: a retrain on `data_hash` already ran and the champion did not change.

    Retrains are found in ``retrains.jsonl`` (every retrain, CLI or DAG) and, for records written
    before the DAG wrote there too, in decision records carrying a `retrained` entry.
    """
    if not data_hash:
        return None
    for past in reversed(read_jsonl(mon.retrains_log)):
        if (
            past.get("data_hash") == data_hash
            and not past.get("promoted")
            and past.get("champion_before") == champion
        ):
            return f"data version {data_hash} gave version {past.get('registered_version')}, not promoted"
    for past in reversed(read_jsonl(mon.decisions_log)):
        done = past.get("retrained") or {}
        same_data = (past.get("data") or {}).get("data_hash") == data_hash
        if done and same_data and not done.get("promoted") and past.get("champion_version") == champion:
            return f"data version {data_hash} gave version {done.get('registered_version')}, not promoted"
    return None
