"""Tiny models the project builds and trains itself, so every pipeline runs offline on a CPU.

`train_lm` lives in `tiny.train`, which imports torch; it is loaded on first use so that importing
this package (e.g. for `TinyConfig` in a study spec) stays light.
"""

from typing import TYPE_CHECKING, Any

from rpt_transfer.tiny.model import TinyConfig, build_model
from rpt_transfer.tiny.tokenizer import build_tokenizer

if TYPE_CHECKING:
    from rpt_transfer.tiny.train import train_lm

__all__ = ["TinyConfig", "build_model", "build_tokenizer", "train_lm"]


def __getattr__(name: str) -> Any:
    """Import `train_lm` (and with it torch) only when someone asks for it."""
    if name == "train_lm":
        from rpt_transfer.tiny.train import train_lm

        return train_lm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
