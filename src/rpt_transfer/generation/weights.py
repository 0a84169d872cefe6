"""How many parameters a checkpoint holds, read from its safetensors headers without loading a tensor.

The leaderboard shows each model's size. The HF backend counts the parameters it loaded; vLLM keeps its
weights inside engine workers (on other GPUs, other processes), so for it the count comes from the files
vLLM reads: every `*.safetensors` in the model folder, each tensor's shape from the file's header.
"""

from __future__ import annotations

import math
from pathlib import Path


def safetensors_parameters(model_dir: Path) -> int | None:
    """Total elements of every tensor in the folder's safetensors files; None when it has none.

    Reads headers only (`safe_open` maps the file; `get_slice(...).get_shape()` touches no tensor data).
    """
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(str(file), framework="numpy") as opened:
            total += sum(math.prod(opened.get_slice(name).get_shape()) for name in opened.keys())  # noqa: SIM118 - not a dict
    return total
