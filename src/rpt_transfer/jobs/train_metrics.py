"""A train job's per-step metrics, kept in the store with its checkpoints so MLflow can be rebuilt from them.

`metrics.jsonl` holds one line per optimiser step, `{"step": N, "timestamp": ms, "metrics": {...}}`, in step
order. Each resumable checkpoint (`training/<job>/step-N/`) carries the lines up to step N, so a resumed job
starts from them and the final file, committed with the trained weights, holds every step exactly once.
`summary.json` holds the trainer's end-of-run metrics and the reward counts.
"""

import json
import time
from collections.abc import Iterable
from typing import NamedTuple

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


class StepRow(NamedTuple):
    """One step's metrics and when they were logged (milliseconds since the epoch)."""

    step: int
    timestamp: int
    metrics: dict[str, float]


class StepLog:
    """Metrics per step, each step once: a step logged twice (a trainer's second log call) is merged."""

    def __init__(self, rows: Iterable[StepRow] = ()) -> None:
        """Start from the rows of a resumed checkpoint, if any."""
        self._rows: dict[int, StepRow] = {}
        for row in rows:
            self._rows[row.step] = row

    def add(self, step: int, metrics: dict[str, float]) -> None:
        """Record one step's metrics now."""
        old = self._rows.get(step)
        merged = {**(old.metrics if old else {}), **{k: float(v) for k, v in metrics.items()}}
        self._rows[step] = StepRow(step, old.timestamp if old else int(time.time() * 1000), merged)

    def rows(self, upto: int | None = None) -> list[StepRow]:
        """The steps in order, only those up to `upto` when given."""
        return [self._rows[s] for s in sorted(self._rows) if upto is None or s <= upto]

    def __len__(self) -> int:
        return len(self._rows)


def to_jsonl(rows: Iterable[StepRow]) -> bytes:
    """Rows as `metrics.jsonl` bytes."""
    lines = [json.dumps({"step": r.step, "timestamp": r.timestamp, "metrics": r.metrics}) for r in rows]
    return "".join(f"{line}\n" for line in lines).encode()


def from_jsonl(data: bytes) -> list[StepRow]:
    """Rows of a `metrics.jsonl` written by `to_jsonl`."""
    rows = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            rows.append(StepRow(int(item["step"]), int(item["timestamp"]), item["metrics"]))
    return rows
