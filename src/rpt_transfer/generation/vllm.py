"""vLLM backend: offline `LLM.generate`, one engine request per sample, prompts tokenized as HF's are.

Each (request, sample) goes to vLLM as its own request with `n=1` and seed `sample_seed(request.seed, i)`,
so sample i does not depend on `n`, the batch or the shard (bit-for-bit only with `batch_invariant`: vLLM's
kernels otherwise vary with batch shape). Prompts go in as token ids rendered by `prompting.py` with the
model's own HF tokenizer, so they are exactly the HF backend's; completions are decoded with that tokenizer
by the HF backend's rules (end-of-sequence token dropped, text cut before the first stop string).

`vllm`, torch and transformers are imported when a backend is built, never with this module, so the API
surface tests can read it where vLLM cannot be installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

from rpt_transfer.errors import RptError
from rpt_transfer.generation.base import (
    GenRequest,
    GenResult,
    PromptMode,
    SamplingParams,
    cut_at_stop,
    engine_label,
    sample_seed,
)
from rpt_transfer.generation.prompting import prompt_token_ids, render_prompt
from rpt_transfer.generation.weights import safetensors_parameters

DTYPES = ("auto", "bfloat16", "float16", "float32")
BATCH_INVARIANT = "VLLM_BATCH_INVARIANT"
MULTIPROCESSING = "VLLM_ENABLE_V1_MULTIPROCESSING"
GENERATION_CONFIG = "vllm"
"""Never apply the model's generation_config.json sampling defaults: every sampling field is sent explicitly.

(vLLM still reads that file's end-of-sequence ids, as the HF backend does.)"""
MIN_TEMPERATURE = 0.01
"""vLLM silently raises a temperature in (0, 0.01) to 0.01; refusing it keeps recorded and used equal."""
MAX_TEMPERATURE = 2.0
"""vLLM refuses temperatures above 2."""
SEED_RULE = "sample_seed(request seed, sample index)"
"""How each sample's vLLM seed is derived (`base.sample_seed`), recorded beside the engine seed."""
LENGTH_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
"""config.json keys vLLM derives a model's context length from (it takes the smallest)."""


class VLLMBackend:
    """Generate with a local HF checkpoint through vLLM's offline engine.

    Args:
        model_path: Local directory holding the weights and tokenizer; nothing is downloaded.
        prompt_mode: `chat` applies the tokenizer's chat template; `raw` sends the joined contents.
        tensor_parallel_size: GPUs the model is split across.
        gpu_memory_utilization: Share of each GPU's memory vLLM may take (weights, activations, KV cache).
        max_model_len: Context length (prompt plus completion); None takes the model's.
        dtype: Weights and activations: auto (vLLM: fp16 for fp32 checkpoints), bfloat16, float16, float32.
        enforce_eager: Skip CUDA graphs (slower, less memory, faster start).
        enable_prefix_caching: Reuse the KV cache of shared prompt prefixes (the n samples of a prompt).
        batch_invariant: Set `VLLM_BATCH_INVARIANT=1` so a sample's tokens do not depend on its batch
            (beta in vLLM; needs compute capability 8.0 or more).
        seed: The engine's seed; each sample draws from its own per-request seed regardless.
    """

    def __init__(
        self,
        model_path: Path | str,
        prompt_mode: PromptMode,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        enforce_eager: bool = False,
        enable_prefix_caching: bool = True,
        batch_invariant: bool = False,
        seed: int = 0,
    ) -> None:
        path = Path(model_path)
        _check_settings(prompt_mode, tensor_parallel_size, gpu_memory_utilization, max_model_len, dtype)
        positions = _model_positions(path, max_model_len)
        if find_spec("vllm") is None:
            raise RptError(
                "vLLM backend: vllm is not installed; pip install 'rpt-transfer[gpu]' (needs CUDA)"
            )
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if prompt_mode == "chat" and not self.tokenizer.chat_template:
            raise RptError(f"vLLM backend: {path} has no chat template; use prompt mode 'raw' for this model")
        _check_gpus(tensor_parallel_size, batch_invariant)
        env = _set_env(batch_invariant)
        self._vllm = _import_vllm()
        try:
            self._llm = self._vllm.LLM(
                model=str(path),
                tokenizer=str(path),
                tensor_parallel_size=tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=max_model_len,
                dtype=dtype,
                enforce_eager=enforce_eager,
                enable_prefix_caching=enable_prefix_caching,
                seed=seed,
                generation_config=GENERATION_CONFIG,
            )
        except ValueError as err:  # vLLM's refusals of a setting (memory, context length) are ValueErrors
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RptError(f"vLLM backend: the engine refused to start: {first}") from err
        self.prompt_mode: PromptMode = prompt_mode
        self.parameter_count = safetensors_parameters(path)
        """Parameters of the checkpoint vLLM serves (its safetensors headers), for the leaderboard's size."""
        model_config = self._llm.model_config
        effective_len = model_config.max_model_len
        self.max_model_len = effective_len if isinstance(effective_len, int) else (max_model_len or positions)
        settings = {
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": self.max_model_len,
            "dtype": _dtype_name(model_config.dtype) or dtype,
            "enforce_eager": enforce_eager,
            "enable_prefix_caching": enable_prefix_caching,
            "engine_seed": seed,
            "generation_config": GENERATION_CONFIG,
        }
        self._engine = _engine_versions(self._vllm, tensor_parallel_size) | {
            name: str(value) for name, value in settings.items()
        }
        self._engine |= env | {"sample_seeds": SEED_RULE}

    def engine_versions(self) -> dict[str, str]:
        """vLLM, torch, transformers, CUDA, driver, GPU, the engine settings and reproducibility switches."""
        return dict(self._engine)

    def prompt_text(self, messages: Sequence[dict[str, str]]) -> str:
        """Render the exact text sent for these messages in this backend's prompt mode."""
        return render_prompt(self.tokenizer, messages, self.prompt_mode)

    def effective_sampling(self, params: SamplingParams) -> dict[str, Any]:
        """The vLLM SamplingParams fields sent for every sample, all explicit; the seed is per sample.

        Each sample also gets `seed` = `sample_seed(request.seed, sample_index)` (see `SEED_RULE`).
        """
        if 0 < params.temperature < MIN_TEMPERATURE or params.temperature > MAX_TEMPERATURE:
            raise RptError(
                f"vLLM backend: temperature={params.temperature} is outside what vLLM uses as given; "
                f"accepted: 0 (greedy) or {MIN_TEMPERATURE} to {MAX_TEMPERATURE}"
            )
        greedy = params.temperature == 0  # vLLM resets top_p and top_k when greedy; say so
        top_k = getattr(params, "top_k", 0)
        return {
            "n": 1,
            "temperature": params.temperature,
            "top_p": 1.0 if greedy else params.top_p,
            "top_k": 0 if greedy or top_k <= 0 else top_k,
            "min_p": 0.0,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "repetition_penalty": 1.0,
            "max_tokens": params.max_tokens,
            "min_tokens": 0,
            "stop": [s for s in params.stop if s],
            "ignore_eos": False,
            "detokenize": True,
            "skip_special_tokens": True,
            "include_stop_str_in_output": False,
        }

    def generate(
        self,
        requests: Sequence[GenRequest],
        params: SamplingParams,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[GenResult]:
        """Generate `params.n` samples per request; see `GenerationBackend.generate`.

        A prompt that cannot fit raises `RptError` before anything is generated (one line naming the item).
        """
        sampling = self.effective_sampling(params)
        prompts = [self.prompt_text(request.messages) for request in requests]
        ids = [prompt_token_ids(self.tokenizer, text, self.prompt_mode) for text in prompts]
        self._check_lengths(requests, ids, params.max_tokens)
        engine_prompts, engine_params = [], []
        for request, prompt_ids in zip(requests, ids, strict=True):
            for sample in range(params.n):
                engine_prompts.append(self._vllm.TokensPrompt(prompt_token_ids=prompt_ids))
                seed = sample_seed(request.seed, sample)
                engine_params.append(self._vllm.SamplingParams(**sampling, seed=seed))
        if not engine_prompts:
            return []
        bar = _progress_bar(on_progress) if on_progress is not None else False
        request_outputs = self._llm.generate(engine_prompts, engine_params, use_tqdm=bar)
        if len(request_outputs) != len(engine_prompts):
            raise RuntimeError(
                f"vLLM returned {len(request_outputs)} outputs for {len(engine_prompts)} prompts"
            )
        results = []
        for index, request_output in enumerate(request_outputs):
            request = requests[index // params.n]
            prompt = (prompts[index // params.n], len(ids[index // params.n]))
            results.append(self._result(request, index % params.n, prompt, request_output, sampling["stop"]))
        return results

    def _check_lengths(self, requests: Sequence[GenRequest], ids: list[list[int]], max_tokens: int) -> None:
        """Refuse, on one line, an empty prompt or the longest prompt plus max_tokens beyond max_model_len."""
        for request, prompt_ids in zip(requests, ids, strict=True):
            if not prompt_ids:
                raise RptError(f"vLLM backend: item {request.request_id!r} has an empty prompt")
        if not ids or self.max_model_len is None:
            return
        longest = max(range(len(ids)), key=lambda i: len(ids[i]))
        tokens, limit = len(ids[longest]), self.max_model_len
        if tokens + max_tokens > limit:
            fix = f"lower max_tokens to {limit - tokens} or less, or " if tokens < limit else ""
            raise RptError(
                f"vLLM backend: item {requests[longest].request_id!r} has {tokens} prompt tokens; with "
                f"max_tokens={max_tokens} that is {tokens + max_tokens}, beyond max_model_len={limit}: "
                f"{fix}raise max_model_len (up to the model's context length), or leave the item out"
            )

    def _result(
        self, request: GenRequest, sample: int, prompt: tuple[str, int], request_output: Any, stop: list[str]
    ) -> GenResult:
        """Turn one vLLM RequestOutput (n=1) into a GenResult, decoded by the HF backend's rules."""
        text, prompt_tokens = prompt
        completions = request_output.outputs
        if len(completions) != 1:
            problem = f"vLLM returned {len(completions)} completions for a request of n=1"
            return GenResult(request.request_id, sample, text, "", "error", prompt_tokens, 0, problem)
        completion = completions[0]
        tokens = list(completion.token_ids)
        reason = completion.finish_reason
        if reason not in ("stop", "length"):
            problem = f"vLLM finished the sample with reason {reason!r} ({completion.stop_reason!r})"
            return GenResult(
                request.request_id, sample, text, "", "error", prompt_tokens, len(tokens), problem
            )
        # `stop` with no stop string: an end-of-sequence token (None) or a stop token id ended it; not shown.
        ended = reason == "stop" and not isinstance(completion.stop_reason, str) and bool(tokens)
        decoded = self.tokenizer.decode(tokens[:-1] if ended else tokens, skip_special_tokens=True)
        cut = cut_at_stop(decoded, stop)
        if cut is not None:
            decoded, reason = decoded[:cut], "stop"
        return GenResult(request.request_id, sample, text, decoded, reason, prompt_tokens, len(tokens))


def _check_settings(
    prompt_mode: str,
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
    max_model_len: int | None,
    dtype: str,
) -> None:
    """Refuse a bad setting on one line that names it, before anything is loaded."""
    if prompt_mode not in get_args(PromptMode):
        raise RptError(f"vLLM backend: unknown prompt_mode {prompt_mode!r}; accepted: chat, raw")
    if tensor_parallel_size < 1:
        raise RptError(f"vLLM backend: tensor_parallel_size must be at least 1, got {tensor_parallel_size}")
    if not 0 < gpu_memory_utilization <= 1:
        raise RptError(
            f"vLLM backend: gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}"
        )
    if dtype not in DTYPES:
        raise RptError(f"vLLM backend: unknown dtype {dtype!r}; accepted: {', '.join(DTYPES)}")
    if max_model_len is not None and max_model_len < 1:
        raise RptError(f"vLLM backend: max_model_len must be at least 1 (or unset), got {max_model_len}")


def _model_positions(path: Path, max_model_len: int | None) -> int | None:
    """The model's context length from config.json; refuse a max_model_len beyond it."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise RptError(f"vLLM backend: {path} is not a local HF checkpoint (no config.json)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise RptError(f"vLLM backend: {config_file} is not readable JSON ({err})") from err
    text_config = config.get("text_config") or config
    found = [text_config[key] for key in LENGTH_KEYS if isinstance(text_config.get(key), int)]
    positions = min(found) if found else None
    if max_model_len is not None and positions is not None and not _rope_scaled(text_config):
        _check_model_len(max_model_len, positions, config_file)
    return positions


def _rope_scaled(config: dict[str, Any]) -> bool:
    """Whether RoPE scaling stretches the context (vLLM then allows more than the positions; it checks)."""
    rope = config.get("rope_scaling") or config.get("rope_parameters") or {}
    kind = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    return kind not in (None, "default")


def _check_model_len(max_model_len: int, positions: int, config_file: Path) -> None:
    """Refuse a max_model_len beyond the model's positions."""
    if max_model_len > positions:
        raise RptError(
            f"vLLM backend: max_model_len={max_model_len} is beyond the model's {positions} positions "
            f"({config_file}); lower max_model_len or leave it unset"
        )


def _check_gpus(tensor_parallel_size: int, batch_invariant: bool) -> None:
    """Refuse, before the engine starts, more GPUs than visible or batch invariance on an old GPU."""
    import torch

    if not torch.cuda.is_available():
        return  # vLLM says so itself, naming its platform
    count = torch.cuda.device_count()
    if tensor_parallel_size > count:
        raise RptError(
            f"vLLM backend: tensor_parallel_size={tensor_parallel_size} but {count} GPU(s) are visible"
        )
    if batch_invariant and torch.cuda.get_device_capability(0) < (8, 0):
        major, minor = torch.cuda.get_device_capability(0)
        raise RptError(
            f"vLLM backend: batch_invariant needs compute capability 8.0 or more; "
            f"{torch.cuda.get_device_name(0)} has {major}.{minor}"
        )


def _set_env(batch_invariant: bool) -> dict[str, str]:
    """Set vLLM's reproducibility switches before it is imported; return what is in force.

    `VLLM_ENABLE_V1_MULTIPROCESSING=0` runs the engine core in this process (exact offline scheduling)
    unless the user set it; `batch_invariant` sets `VLLM_BATCH_INVARIANT=1`, else the user's value stands.
    """
    if batch_invariant:
        os.environ[BATCH_INVARIANT] = "1"
    os.environ.setdefault(MULTIPROCESSING, "0")
    return {name: os.environ.get(name, "unset") for name in (BATCH_INVARIANT, MULTIPROCESSING)}


def _import_vllm() -> ModuleType:
    """Import vllm, or say how to install it."""
    try:
        import vllm
    except ImportError as err:
        raise RptError(f"vLLM backend: cannot import vllm ({err}); pip install 'rpt-transfer[gpu]'") from err
    return vllm


def _engine_versions(vllm: ModuleType, tensor_parallel_size: int) -> dict[str, str]:
    """Library versions, CUDA, the driver and the GPU model(s) the engine runs on."""
    import torch
    import transformers

    gpus = "unknown"
    if torch.cuda.is_available():
        count = min(tensor_parallel_size, torch.cuda.device_count())
        gpus = ", ".join(sorted({torch.cuda.get_device_name(i) for i in range(count)}))
    return {
        "backend": engine_label("vllm"),
        "vllm": str(getattr(vllm, "__version__", "unknown")),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda or "none",
        "driver": _driver_version(),
        "device": gpus,
    }


def _driver_version() -> str:
    """The NVIDIA driver's version, through NVML (a vLLM dependency) or nvidia-smi; else `unknown`."""
    with contextlib.suppress(Exception):
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            query = [smi, "--query-gpu=driver_version", "--format=csv,noheader"]
            out = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout
            if out.strip():
                return out.strip().splitlines()[0]
    return "unknown"


def _dtype_name(dtype: object) -> str | None:
    """`bfloat16` for torch.bfloat16 or "bfloat16"; None when the engine did not say."""
    return str(dtype).removeprefix("torch.") if dtype is not None else None


class _Discard:
    """A file that drops what is written: the progress bar reports through `on_progress`, not stderr."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


def _progress_bar(on_progress: Callable[[int], None]) -> Callable[..., Any]:
    """A tqdm factory for `LLM.generate(use_tqdm=...)` that forwards each finished request to on_progress."""
    from tqdm import tqdm

    class _Forward(tqdm):  # type: ignore[misc]
        def update(self, n: float | None = 1) -> bool | None:
            if n:
                on_progress(int(n))
            return super().update(n)

    return partial(_Forward, file=_Discard(), mininterval=3600)
