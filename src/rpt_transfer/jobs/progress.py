"""Progress of one job, shown by whoever runs it.

Under the local executor (RPT_PROGRESS=jsonl) a job prints JSON lines on stdout that the executor turns into
its rich progress bars; run alone (a terminal, an Argo pod) it logs a line every tenth of the way.
"""

import json
import os
import sys
import time

PROGRESS_ENV = "RPT_PROGRESS"
PROGRESS_KEY = "rpt_progress"


class Progress:
    """Counts done units of a job's work and reports them without flooding the output."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.total = 0
        self.done = 0
        self._jsonl = os.environ.get(PROGRESS_ENV) == "jsonl"
        self._last_report = 0.0
        self._last_tenth = -1

    def start(self, total: int, label: str | None = None) -> None:
        """Begin a phase of `total` units."""
        self.total, self.done = total, 0
        self.label = label or self.label
        self._last_tenth = -1
        self._emit(force=True)

    def advance(self, units: int = 1) -> None:
        """Record `units` more done."""
        self.done += units
        self._emit(force=self.done >= self.total)

    def _emit(self, force: bool) -> None:
        now = time.monotonic()
        if self._jsonl:
            if force or now - self._last_report > 0.2:
                print(json.dumps({PROGRESS_KEY: [self.done, self.total, self.label]}), flush=True)
                self._last_report = now
            return
        tenth = (10 * self.done) // max(self.total, 1)
        if force or tenth != self._last_tenth:
            print(f"{self.label}: {self.done}/{self.total}", file=sys.stderr, flush=True)
            self._last_tenth = tenth


def parse_progress(line: str) -> tuple[int, int, str] | None:
    """A progress line as (done, total, label), or None for any other output."""
    if PROGRESS_KEY not in line:
        return None
    try:
        done, total, label = json.loads(line)[PROGRESS_KEY]
    except (ValueError, TypeError, KeyError):
        return None
    return int(done), int(total), str(label)
