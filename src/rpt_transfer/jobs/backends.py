"""The loaded generation backend that the generate jobs of one `job run` process share: one load per model.

A pod (or a local executor process) is given a group's jobs (`plan.group_key`); loading the model, and
fetching its checkpoint, happens once for all of them. At most one backend is held at a time: two vLLM
engines in one process would not fit one GPU's memory.
"""

import gc
import sys
from collections.abc import Callable

from rpt_transfer.generation import GenerationBackend


class BackendCache:
    """At most one loaded backend, by group key; `loads` counts the loads it started (failed ones too)."""

    def __init__(self) -> None:
        self.loads = 0
        self._key: str | None = None
        self._backend: GenerationBackend | None = None
        self._error: Exception | None = None

    def get(self, key: str, load: Callable[[], GenerationBackend]) -> GenerationBackend:
        """The backend of group `key`, loading it (after releasing another group's) on first use.

        A load that failed is not tried again for the same group: its later jobs fail with the same error
        at once instead of each spending a load on it.
        """
        if key != self._key:
            self.release()
            self._key = key
            self.loads += 1
            try:
                self._backend = load()
            except Exception as err:
                self._error = err
                raise
        if self._error is not None:
            raise self._error
        assert self._backend is not None
        return self._backend

    def release(self, key: str | None = None) -> None:
        """Drop the held backend (only if it is group `key`'s, when given) and give back its GPU memory."""
        if key is not None and key != self._key:
            return
        backend, self._backend, self._key, self._error = self._backend, None, None, None
        if backend is None:
            return
        close = getattr(backend, "close", None)
        if callable(close):
            close()
        del backend
        gc.collect()
        _empty_cuda_cache()


def _empty_cuda_cache() -> None:
    """Return freed CUDA memory to the device, if torch is loaded at all (never imported just for this)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
