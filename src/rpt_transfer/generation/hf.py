"""HF transformers backend: batched generation on CPU or one GPU, with per-sample seeds.

The decode loop is our own rather than `model.generate`, because each (request, sample) row needs its
own random stream: a sample must not depend on which batch or shard its request landed in.
"""

from __future__ import annotations

import inspect
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, get_args

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from rpt_transfer.cpus import available_cpus
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


class _Row(NamedTuple):
    """One sample to decode, and the slot its result goes to."""

    slot: int
    request: GenRequest
    sample_index: int
    prompt_text: str
    prompt_ids: list[int]


class HFBackend:
    """Generate with a local HF checkpoint through `AutoModelForCausalLM`.

    Args:
        model_path: Local directory holding the weights and tokenizer; nothing is downloaded.
        prompt_mode: `chat` applies the tokenizer's chat template; `raw` sends the joined contents
            (the tokenizer adds its usual special tokens, such as a leading BOS).
        device: Torch device; None picks CUDA when available (bf16 where supported), else CPU (fp32).
        batch_size: Rows (request samples) decoded together.
    """

    def __init__(
        self, model_path: Path | str, prompt_mode: PromptMode, device: str | None = None, batch_size: int = 16
    ) -> None:
        path = Path(model_path)
        if prompt_mode not in get_args(PromptMode):
            raise RptError(f"HF backend: unknown prompt mode {prompt_mode!r}; accepted: chat, raw")
        if not (path / "config.json").is_file():
            raise RptError(f"HF backend: {path} is not a local HF checkpoint (no config.json)")
        if batch_size < 1:
            raise RptError(f"HF backend: batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cpu":  # torch's default is every core of the node, not the pod's limit
            torch.set_num_threads(available_cpus())
        bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=torch.bfloat16 if bf16 else torch.float32
        )
        self.model.to(self.device).eval()
        self.parameter_count = sum(p.numel() for p in self.model.parameters())
        """Parameters of the loaded model, recorded by the generate job (the leaderboard's model size)."""
        if prompt_mode == "chat" and not self.tokenizer.chat_template:
            raise RptError(f"HF backend: {path} has no chat template; use prompt mode 'raw' for this model")
        self.prompt_mode = prompt_mode
        self.batch_size = batch_size
        self.max_positions = _max_positions(self.model.config)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.pad_id = next(
            i for i in (self.tokenizer.pad_token_id, *sorted(self.eos_ids), 0) if i is not None
        )
        parameters = inspect.signature(self.model.forward).parameters
        # transformers 5 renamed `past_key_values` to `cache`; 4.x only knows the old name.
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"
        self._keeps_last_logits = "logits_to_keep" in parameters

    def engine_versions(self) -> dict[str, str]:
        """torch, transformers, the device (GPU model, or CPU and its architecture), CUDA and dtype."""
        engine = {
            "backend": engine_label("hf"),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "dtype": str(self.model.dtype).removeprefix("torch."),
        }
        if self.device.type == "cuda":
            engine |= {"device": torch.cuda.get_device_name(self.device), "cuda": torch.version.cuda or "?"}
        else:
            engine["device"] = f"{self.device.type} ({platform.machine()})"
        return engine

    def prompt_text(self, messages: Sequence[dict[str, str]]) -> str:
        """Render the exact text sent for these messages in this backend's prompt mode."""
        return render_prompt(self.tokenizer, messages, self.prompt_mode)

    def generate(
        self,
        requests: Sequence[GenRequest],
        params: SamplingParams,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[GenResult]:
        """Generate `params.n` samples per request; see `GenerationBackend.generate`."""
        results: list[GenResult | None] = [None] * (len(requests) * params.n)
        rows: list[_Row] = []
        for index, request in enumerate(requests):
            text = self.prompt_text(request.messages)
            ids = prompt_token_ids(self.tokenizer, text, self.prompt_mode)
            problem = self._prompt_problem(len(ids), params.max_tokens)
            for sample in range(params.n):
                slot = index * params.n + sample
                if problem is None:
                    rows.append(_Row(slot, request, sample, text, ids))
                else:
                    results[slot] = _error(request, sample, text, len(ids), problem)
        if on_progress is not None and len(rows) < len(results):
            on_progress(len(results) - len(rows))
        rows.sort(key=lambda row: len(row.prompt_ids))  # similar lengths share a batch: less padding
        for start in range(0, len(rows), self.batch_size):
            for row, result in self._decode(rows[start : start + self.batch_size], params, on_progress):
                results[row.slot] = result
        return [result for result in results if result is not None]

    def _prompt_problem(self, prompt_tokens: int, max_tokens: int) -> str | None:
        """Why a prompt cannot be generated from, or None when it fits."""
        if prompt_tokens == 0:
            return "empty prompt: nothing to condition on"
        if self.max_positions is not None and prompt_tokens + max_tokens > self.max_positions:
            return (
                f"prompt has {prompt_tokens} tokens; with max_tokens={max_tokens} it exceeds the model's "
                f"{self.max_positions} positions"
            )
        return None

    @torch.inference_mode()
    def _decode(
        self, rows: list[_Row], params: SamplingParams, on_progress: Callable[[int], None] | None
    ) -> list[tuple[_Row, GenResult]]:
        """Decode one left-padded batch with a KV cache until every row has finished."""
        width = max(len(row.prompt_ids) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            attention_mask[i, width - len(row.prompt_ids) :] = 1
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        generators = [
            torch.Generator().manual_seed(sample_seed(row.request.seed, row.sample_index)) for row in rows
        ]
        generated: list[list[int]] = [[] for _ in rows]
        finished: dict[int, GenResult] = {}
        cache = None
        while len(finished) < len(rows):
            logits, cache = self._forward(input_ids, attention_mask, position_ids, cache)
            tokens = _pick(logits, params, generators).tolist()
            newly = 0
            for i, token in enumerate(tokens):
                if i in finished:
                    continue
                generated[i].append(token)
                result = self._finish(rows[i], generated[i], params)
                if result is not None:
                    finished[i] = result
                    newly += 1
            if on_progress is not None and newly:
                on_progress(newly)
            input_ids = torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(rows), 1))], dim=-1)
            position_ids = position_ids[:, -1:] + 1
        return [(row, finished[i]) for i, row in enumerate(rows)]

    def _forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache: object
    ) -> tuple[torch.Tensor, object]:
        """One forward pass; returns the next-token logits (float32) and the updated KV cache."""
        kwargs: dict[str, object] = {self._cache_arg: cache} if cache is not None else {}
        if self._keeps_last_logits:
            kwargs["logits_to_keep"] = 1
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            **kwargs,
        )
        return out.logits[:, -1, :].float(), out[self._cache_arg]

    def _finish(self, row: _Row, generated: list[int], params: SamplingParams) -> GenResult | None:
        """Return the row's result if its latest token ended it (end of sequence, stop string, length)."""
        ended = generated[-1] in self.eos_ids
        if not (params.stop or ended or len(generated) >= params.max_tokens):
            return None  # nothing can have ended it: skip decoding
        # Decoding the whole text (not the new token alone) finds stop strings that span tokens.
        text = self.tokenizer.decode(generated[:-1] if ended else generated, skip_special_tokens=True)
        cut = cut_at_stop(text, params.stop)
        if cut is not None:
            reason, text = "stop", text[:cut]
        elif ended:
            reason = "stop"
        elif len(generated) >= params.max_tokens:
            reason = "length"
        else:
            return None
        request = row.request
        return GenResult(
            request_id=request.request_id,
            sample_index=row.sample_index,
            prompt_text=row.prompt_text,
            completion=text,
            finish_reason=reason,
            prompt_tokens=len(row.prompt_ids),
            completion_tokens=len(generated),
        )


def _error(
    request: GenRequest, sample_index: int, prompt_text: str, prompt_tokens: int, error: str
) -> GenResult:
    """Build the result row of a sample that could not be generated."""
    return GenResult(request.request_id, sample_index, prompt_text, "", "error", prompt_tokens, 0, error)


def _pick(logits: torch.Tensor, params: SamplingParams, generators: list[torch.Generator]) -> torch.Tensor:
    """Next token per row: argmax at temperature 0, else top-k and top-p sampling by inverse CDF.

    When sampling, every row draws exactly one uniform number per step from its own CPU generator,
    so its samples are the same in any batch and on any device (up to float noise in the probabilities).
    """
    if params.temperature == 0:
        return logits.argmax(dim=-1)
    uniforms = torch.stack([torch.rand((), generator=g) for g in generators]).to(logits.device)
    probs = torch.softmax(logits / params.temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    if 0 < params.top_k < sorted_probs.shape[-1]:  # top-p then applies to the kept tokens, renormalised
        sorted_probs[:, params.top_k :] = 0.0
        sorted_probs = sorted_probs / sorted_probs.sum(dim=-1, keepdim=True)
    if params.top_p < 1:
        before = sorted_probs.cumsum(dim=-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(before >= params.top_p, 0.0)
    cdf = sorted_probs.cumsum(dim=-1)
    index = torch.searchsorted(cdf, (uniforms * cdf[:, -1])[:, None], right=True)
    return order.gather(-1, index.clamp(max=logits.shape[-1] - 1)).squeeze(-1)


def _max_positions(config: object) -> int | None:
    """Read the model's context length, when its config states one."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text_config, "max_position_embeddings", None)


def _eos_ids(model: torch.nn.Module, tokenizer: object) -> set[int]:
    """Every token id that ends a sample: the generation config's (often several) and the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(getattr(tokenizer, "eos_token_id", None))
    ids.discard(None)
    return ids
