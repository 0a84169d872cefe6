"""Measured vLLM throughputs, model size classes, and the GPU-hours a token count implies.

The figures live in `throughput.yaml`, each with the public source it was copied from; this module only
reads them and does the arithmetic, so a new measurement is a new row there and never a change here.
"""

import functools
import re
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rpt_transfer.errors import RptError

TABLE_FILE = "throughput.yaml"
_SIZE_IN_NAME = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[bB](?![a-zA-Z0-9])")
"""A parameter count in a Hub id such as `Qwen2.5-Coder-7B` or `DeepScaleR-1.5B-Preview` (not `Qwen2.5`)."""
_DENSE_DECODERS = {"llama", "qwen2", "qwen3", "mistral", "olmo2", "olmo"}
"""Config `model_type`s whose parameter count `params_from_config` knows how to add up."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SizeClass(_Strict):
    """A band of model sizes that share one measured figure per GPU."""

    name: str
    min_b: float = Field(ge=0)
    max_b: float = Field(gt=0)


class Prefill(_Strict):
    """A prompt-heavy run's raw numbers, kept as measured so the rate can be checked against the source."""

    input_tokens: int = Field(gt=0)
    seconds: float = Field(gt=0)


class Figure(_Strict):
    """One measured vLLM throughput: a GPU type, a size class, and where the numbers come from."""

    id: str
    gpu: str
    size: str
    model: str
    vllm: str
    gpus: int = Field(ge=1)
    decode_tokens_per_s: float = Field(gt=0)
    prefill: Prefill | None = None
    measured: str
    url: str
    detail: str = ""

    @property
    def prefill_tokens_per_s(self) -> float | None:
        """Input tokens per second of the prompt-heavy run, or None when the source has none."""
        return None if self.prefill is None else self.prefill.input_tokens / self.prefill.seconds


class GpuPeak(_Strict):
    """A GPU type's dense bf16 tensor-core peak, as its maker's datasheet states it."""

    gpu: str
    bf16_dense_tflops: float = Field(gt=0)
    source: str
    url: str


class TrainingCosts(_Strict):
    """Constants of the train jobs' lower bound (`estimate`), each with where it comes from."""

    update_flops_per_param_token: float = Field(gt=0)
    """FLOPs of one policy update per parameter and trained token (forward and backward)."""
    update_flops_source: str
    mfu: float = Field(gt=0, le=1)
    """Share of the GPU's peak the update is assumed to reach (high, so that the hours are a lower bound)."""
    mfu_source: str
    peaks: list[GpuPeak]

    def peak(self, gpu: str) -> GpuPeak | None:
        """The peak of a GPU type, or None when the table has none."""
        return next((p for p in self.peaks if p.gpu == gpu), None)


class ThroughputTable(_Strict):
    """The whole table: GPU types in column order, size classes, the measured figures, training constants."""

    gpus: list[str] = Field(min_length=1)
    size_classes: list[SizeClass] = Field(min_length=1)
    figures: list[Figure]
    training: TrainingCosts | None = None

    def size_class(self, billions: float) -> SizeClass | None:
        """The class whose range holds a model of this many billion parameters, if any."""
        return next((c for c in self.size_classes if c.min_b <= billions <= c.max_b), None)

    def figure(self, gpu: str, size: str) -> Figure | None:
        """The measured figure for one GPU type and size class, or None when no source gives one."""
        return next((f for f in self.figures if f.gpu == gpu and f.size == size), None)


@functools.cache
def load_table() -> ThroughputTable:
    """The packaged table, checked once per process; a malformed row is a bug in the package."""
    text = resources.files("rpt_transfer").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    try:
        return ThroughputTable.model_validate(yaml.safe_load(text))
    except ValidationError as err:
        raise RptError(f"rpt_transfer/{TABLE_FILE}: {err.errors()[0]['msg']}") from None


def gpu_hours(prompt_tokens: float, completion_tokens: float, figure: Figure) -> float:
    """GPU-hours to prefill and decode these tokens at the measured rates, on the measured GPU count.

    A lower bound for any number of GPUs per job: N GPUs are at best N times as fast, so holding more of
    them never takes fewer GPU-hours. Without a prefill figure only decoding is counted (the decode figure
    already includes its own run's prefill).
    """
    seconds = completion_tokens / figure.decode_tokens_per_s
    prefill = figure.prefill_tokens_per_s
    if prefill is not None:
        seconds += prompt_tokens / prefill
    return seconds * figure.gpus / 3600


def params_from_name(repo_id: str) -> float | None:
    """Billions of parameters a Hub id states (`-7B`, `1.5B`, `-7b`), when it states exactly one."""
    found = {float(m) for m in _SIZE_IN_NAME.findall(repo_id.rsplit("/", 1)[-1])}
    return found.pop() if len(found) == 1 else None


def params_from_config(config: dict[str, Any]) -> float | None:
    """Billions of parameters of a dense decoder (Llama, Qwen2/3, Mistral, OLMo) from its config.json.

    Embeddings (twice when untied), attention (q, o and the grouped k, v projections) and the gated MLP
    per layer; norms and biases are left out (well under 0.1%). Other architectures give None.
    """
    if config.get("model_type") not in _DENSE_DECODERS:
        return None
    try:
        hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        vocab, inner = int(config["vocab_size"]), int(config["intermediate_size"])
        heads = int(config["num_attention_heads"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or hidden // heads)
    except (KeyError, TypeError, ValueError):
        return None
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    per_layer = attention + 3 * hidden * inner
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return (embeddings + layers * per_layer) / 1e9
