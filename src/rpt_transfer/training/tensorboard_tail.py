"""Per-step scalars read from TensorBoard event files while a trainer is still writing them.

OpenRLHF reports its metrics only to W&B or TensorBoard; with `--logger.tensorboard_dir D` it writes, with
torch's `SummaryWriter`, one event file under `D/<run name>/` holding a `train/<key>` scalar per key and
global step (`eval/<key>` for evaluations) and a text `train/generated_samples`. `EventTail` reads every
event file under a folder incrementally (files appearing later included), through TensorBoard's own record
reader, which leaves a partly written last record for the next read. The OpenRLHF backend polls it between
runs of its loop and hands each step to the train job's `on_step`.

A step is handed over once, whole: the scalars of the newest step of a file are held back until the file
shows a later step (or a newer file replaces it), the caller says the step is complete (`through`: OpenRLHF
logs a step before it checkpoints it), or the end (`final`). Names lose the `train/` prefix
(`train/policy_loss` → `policy_loss`, `train/rollout/reward_mean` → `rollout/reward_mean`) and keep any other
(`eval/...`); values that are not finite are dropped; text, histograms and other non-scalars are ignored.

TensorBoard is imported only when a file is first read (`pip install 'tensorboard>=2.19,<3'`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

TRAIN_PREFIX = "train/"
EVENT_FILE_MARK = "tfevents"
"""Event files are named `events.out.tfevents.<time>.<host>.<pid>.<n>`, by every TensorBoard writer."""
SCALARS_PLUGIN = "scalars"


class StepRecord(NamedTuple):
    """One step's scalars, named as `metric_name` gives them."""

    step: int
    metrics: dict[str, float]


def metric_name(tag: str) -> str:
    """The metric's name for a TensorBoard tag: `train/x` → `x`, any other tag as it is (`eval/x`)."""
    return tag.removeprefix(TRAIN_PREFIX)


class EventTail:
    """Reads the scalars of every event file under a folder, each record once, as the files grow."""

    def __init__(self, folder: Path | str) -> None:
        """Tail `folder` and its subfolders; it need not exist yet."""
        self.folder = Path(folder)
        self._files: dict[Path, _EventFile] = {}
        self._scalar_tags: dict[str, bool] = {}
        """Whether a tag holds scalars, from the first value of it that carried its metadata."""

    def poll(self, *, through: int | None = None, final: bool = False) -> list[StepRecord]:
        """The steps completed since the last poll: per file in logging order, files in name order.

        A file's newest step is held back until a later one appears in it or a newer event file appears
        beside it (TensorBoard writers start a new file when reopened, and name files by time); `through`
        releases held steps up to that number (the caller knows they are complete), `final` releases every
        one (the writers are done). A step whose values were all text or not finite gives no record.
        """
        records: list[StepRecord] = []
        for path in self._event_files():
            tracked = self._files.get(path)
            if tracked is None:
                tracked = _EventFile.open(path)
                if tracked is None:  # gone again, or not readable yet: the next poll tries again
                    continue
                self._files[path] = tracked
            try:
                for record in tracked.read(self._scalars):
                    records.append(record)
            except _read_errors():
                if not path.exists():  # removed: what was read of it is all it will ever hold
                    records.extend(self._files.pop(path).release(None, final=True))
        newest = {path.parent: path for path in sorted(self._files)}
        for path, tracked in self._files.items():
            superseded = newest[path.parent] != path  # a writer reopened on a folder starts a new file
            records.extend(tracked.release(through, final or superseded))
        return records

    def _event_files(self) -> list[Path]:
        found = set(self._files)  # a file removed meanwhile is still read to its end
        if self.folder.is_dir():
            found.update(p for p in self.folder.rglob(f"*{EVENT_FILE_MARK}*") if p.is_file())
        return sorted(found)

    def _scalars(self, event: Any) -> tuple[bool, dict[str, float]]:
        """Whether an event holds summary values at all, and its finite scalars by metric name."""
        if not event.HasField("summary") or not event.summary.value:
            return False, {}
        scalars: dict[str, float] = {}
        for value in event.summary.value:
            if value.HasField("metadata"):
                self._scalar_tags[value.tag] = _is_scalar(value.metadata)
            if not self._scalar_tags.get(value.tag, False):
                continue
            number = _scalar_value(value)
            if number is not None and math.isfinite(number):
                scalars[metric_name(value.tag)] = number
        return True, scalars


class _EventFile:
    """One event file's reader and its held-back newest step."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._step: int | None = None
        self._metrics: dict[str, float] = {}

    @staticmethod
    def open(path: Path) -> _EventFile | None:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

        try:
            return _EventFile(EventFileLoader(str(path)))
        except _read_errors():
            return None

    def read(self, scalars: Callable[[Any], tuple[bool, dict[str, float]]]) -> Iterator[StepRecord]:
        """The steps this file completed since the last read (a truncated last record waits in the reader)."""
        for event in self._loader.Load():
            has_values, metrics = scalars(event)
            if not has_values:
                continue
            if event.step != self._step:
                yield from self.release(None, final=True)
                self._step = event.step
            self._metrics.update(metrics)

    def release(self, through: int | None, final: bool) -> Iterator[StepRecord]:
        """The held-back step, when `final` or when it is at most `through`."""
        if self._step is None or not (final or (through is not None and self._step <= through)):
            return
        step, metrics = self._step, self._metrics
        self._step, self._metrics = None, {}
        if metrics:
            yield StepRecord(step, metrics)


def _read_errors() -> tuple[type[BaseException], ...]:
    """What TensorBoard's reader raises for a file gone or unreadable (it reopens the file on every read)."""
    from tensorboard.compat import tf

    return (OSError, tf.errors.OpError)


def _is_scalar(metadata: Any) -> bool:
    from tensorboard.compat.proto import summary_pb2

    if metadata.data_class != summary_pb2.DATA_CLASS_UNKNOWN:
        return metadata.data_class == summary_pb2.DATA_CLASS_SCALAR
    return metadata.plugin_data.plugin_name == SCALARS_PLUGIN


def _scalar_value(value: Any) -> float | None:
    """The number a scalar summary value holds (TensorBoard's reader turns `simple_value` into a tensor)."""
    from tensorboard.util import tensor_util

    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind != "tensor":
        return None
    array = tensor_util.make_ndarray(value.tensor)
    return float(array.item()) if array.size == 1 else None
