"""A test double of vLLM's offline API, held to the committed snapshot of the pinned vLLM.

Its callables take exactly the keywords `vllm_api.json` records (any other is a TypeError, as Python
raises), and its objects expose exactly the recorded attributes (any other is an AttributeError), so the
backend cannot pass or read something the pinned vLLM lacks. Its `LLM` really generates, with transformers
on the model path: greedy or seeded sampling, end-of-sequence, stop strings, `max_tokens` and
`max_model_len`, with vLLM's finish and stop reasons. Tests put `tests/fake_vllm` first on `sys.path`.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from rpt_transfer.generation.vllm_surface import load_snapshot

SNAPSHOT = load_snapshot()
__version__: str = SNAPSHOT["vllm_version"]
_MISSING = object()

CALLS: list[tuple[str, dict[str, Any]]] = []
"""Every call the backend made (constructor or method) with the arguments it passed, in order."""
READS: set[tuple[str, str]] = set()
"""(snapshot class, attribute) for every attribute read off the double's objects."""
ENGINE_ENV: list[dict[str, str | None]] = []
"""The reproducibility variables as each LLM found them when it started."""
FINISH_OVERRIDE: list[str | None] = []
"""A test sets this to `[reason]` (e.g. `["abort"]`, `[None]`) to end every sample with that finish reason."""


def _signature(key: str) -> inspect.Signature:
    """The recorded signature of a method, or of a class built from its fields (all keywords)."""
    entry = SNAPSHOT[key]
    if "fields" in entry:
        required = set(entry["required"])
        return inspect.Signature(
            [
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=inspect.Parameter.empty if name in required else _MISSING,
                )
                for name in entry["fields"]
            ]
        )
    kinds = {
        "positional_only": inspect.Parameter.POSITIONAL_ONLY,
        "positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
        "keyword_only": inspect.Parameter.KEYWORD_ONLY,
    }
    params = [
        inspect.Parameter(
            p["name"], kinds[p["kind"]], default=inspect.Parameter.empty if p["required"] else _MISSING
        )
        for p in entry["params"]
    ]
    forwarded = entry.get("var_keyword_forwarded_to")
    if forwarded:  # e.g. LLM(**kwargs) goes to EngineArgs: its fields are the only other keywords
        named = {p.name for p in params}
        params += [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_MISSING)
            for name in SNAPSHOT[forwarded]["fields"]
            if name not in named
        ]
    return inspect.Signature(params)


def _bind(key: str, args: tuple[Any, ...], kwargs: dict[str, Any], record: bool = True) -> dict[str, Any]:
    """Check a call against the snapshot (TypeError naming the keyword otherwise) and record it."""
    try:
        bound = _signature(key).bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"vllm {__version__} {key}: {err} (per vllm_api.json)") from None
    arguments = dict(bound.arguments)
    if record:
        CALLS.append((key, arguments))
    return arguments


class _Strict:
    """An object with exactly one snapshot entry's attributes; reads are recorded."""

    _key = ""
    _allowed: frozenset[str] = frozenset()

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name not in self._allowed:
            raise AttributeError(
                f"vllm {__version__} {self._key} has no attribute {name!r} (per vllm_api.json)"
            )
        READS.add((self._key, name))
        return self._values.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):  # the double's own state
            object.__setattr__(self, name, value)
            return
        if name not in self._allowed:
            raise AttributeError(
                f"vllm {__version__} {self._key} has no attribute {name!r} (per vllm_api.json)"
            )
        self._values[name] = value


def _strict_class(key: str, attributes: list[str]) -> type[_Strict]:
    return type(key, (_Strict,), {"_key": key, "_allowed": frozenset(attributes)})


_ModelConfig = _strict_class("ModelConfig", SNAPSHOT["ModelConfig"]["fields"])
_RequestOutputBase = _strict_class("RequestOutput", SNAPSHOT["RequestOutput"]["attributes"])
_CompletionOutputBase = _strict_class("CompletionOutput", SNAPSHOT["CompletionOutput"]["fields"])
_SamplingParamsBase = _strict_class("SamplingParams", SNAPSHOT["SamplingParams"]["fields"])
_LLMBase = _strict_class("LLM", SNAPSHOT["LLM.__init__"]["attributes"])

SAMPLING_DEFAULTS = {
    "n": 1,
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 0,
    "min_p": 0.0,
    "seed": None,
    "stop": None,
    "max_tokens": 16,
    "min_tokens": 0,
    "ignore_eos": False,
    "detokenize": True,
    "skip_special_tokens": True,
    "include_stop_str_in_output": False,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "repetition_penalty": 1.0,
}
"""vLLM 0.33's defaults for the fields the double acts on (sampling_params.py)."""


class CompletionOutput(_CompletionOutputBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = _bind("CompletionOutput", args, kwargs, record=False)  # built by the double, not the backend
        super().__init__({name: None for name in self._allowed} | values)


class RequestOutput(_RequestOutputBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = _bind("RequestOutput", args, kwargs, record=False)  # built by the double, not the backend
        super().__init__({name: None for name in self._allowed} | values)


class SamplingParams(_SamplingParamsBase):
    """Checks what vLLM's `_verify_args` checks for the fields the double acts on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = SAMPLING_DEFAULTS | _bind("SamplingParams", args, kwargs)
        stop = values["stop"]
        values["stop"] = [] if stop is None else [stop] if isinstance(stop, str) else list(stop)
        if not 0.0 <= values["temperature"] <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {values['temperature']}.")
        if 0 < values["temperature"] < 0.01:
            values["temperature"] = 0.01  # vLLM raises it, with a warning
        if not 0.0 < values["top_p"] <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {values['top_p']}.")
        if values["top_k"] < -1:
            raise ValueError(f"top_k must be 0 (disable), or at least 1, got {values['top_k']}.")
        if values["max_tokens"] is not None and values["max_tokens"] < 1:
            raise ValueError(f"max_tokens must be at least 1, got {values['max_tokens']}.")
        if any(not s for s in values["stop"]):
            raise ValueError("stop cannot contain an empty string.")
        if values["stop"] and not values["detokenize"]:
            raise ValueError("stop strings are only supported when detokenize is True.")
        seed = values["seed"]
        if seed is not None and not -(2**63) <= seed < 2**64:  # msgspec's integer range
            raise ValueError(f"seed {seed} does not fit in 64 bits")
        if values["temperature"] == 0:
            values |= {"top_p": 1.0, "top_k": 0, "min_p": 0.0}
        super().__init__(values)


def TokensPrompt(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """vLLM's TokensPrompt is a TypedDict: calling it builds a dict."""
    return _bind("TokensPrompt", args, kwargs)


class LLM(_LLMBase):
    """Loads the checkpoint with transformers and decodes one prompt at a time, in float32 on CPU."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        arguments = _bind("LLM.__init__", args, kwargs)
        ENGINE_ENV.append({n: os.environ.get(n) for n in SNAPSHOT["env_vars"]})
        model = arguments["model"]
        tokenizer = arguments.get("tokenizer", _MISSING)
        if tokenizer not in (_MISSING, None, model):
            raise ValueError("the double loads the tokenizer from the model path only")
        super().__init__({})
        self._model = AutoModelForCausalLM.from_pretrained(model, local_files_only=True, dtype=torch.float32)
        self._model.eval()
        self._tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
        positions = self._model.config.max_position_embeddings
        max_model_len = arguments.get("max_model_len", _MISSING)
        if max_model_len in (_MISSING, None):
            max_model_len = positions
        elif max_model_len > positions:
            raise ValueError(f"User-specified max_model_len ({max_model_len}) is greater than {positions}")
        dtype = arguments.get("dtype", _MISSING)
        dtype = "auto" if dtype is _MISSING else dtype
        # vLLM's "auto": float16 for a float32 checkpoint, else the checkpoint's dtype.
        checkpoint = self._model.config.dtype or torch.float32
        if dtype == "auto":
            engine_dtype = torch.float16 if checkpoint == torch.float32 else checkpoint
        else:
            engine_dtype = getattr(torch, dtype)
        seed = arguments.get("seed", _MISSING)
        self._max_model_len = max_model_len
        self.model_config = _ModelConfig(
            {"max_model_len": max_model_len, "dtype": engine_dtype, "seed": 0 if seed is _MISSING else seed}
        )
        self.llm_engine = None
        self._eos = self._tokenizer.eos_token_id
        configured = self._model.generation_config.eos_token_id
        self._stop_ids = set(configured if isinstance(configured, list) else [configured]) - {None, self._eos}

    def generate(self, *args: Any, **kwargs: Any) -> list[RequestOutput]:
        arguments = _bind("LLM.generate", args, kwargs)
        prompts = arguments["prompts"]
        params = arguments.get("sampling_params", _MISSING)
        prompts = prompts if isinstance(prompts, list) else [prompts]
        params = params if isinstance(params, list) else [params] * len(prompts)
        if len(params) != len(prompts) or any(not isinstance(p, SamplingParams) for p in params):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        use_tqdm = arguments.get("use_tqdm", True)
        bar = None
        if callable(use_tqdm):  # as vLLM's _run_engine drives it
            bar = use_tqdm(total=len(prompts), desc="Processed prompts", dynamic_ncols=True, postfix="")
        outputs = []
        for index, (prompt, sampling) in enumerate(zip(prompts, params, strict=True)):
            if not isinstance(prompt, dict) or set(prompt) != {"prompt_token_ids"}:
                raise TypeError("the double takes TokensPrompt(prompt_token_ids=...) prompts only")
            ids = list(prompt["prompt_token_ids"])
            if not ids:
                raise ValueError("The decoder prompt cannot be empty")
            if len(ids) >= self._max_model_len:
                raise ValueError(
                    f"The decoder prompt (length {len(ids)}) is longer than the maximum model length"
                )
            completion = self._complete(ids, sampling._values)
            outputs.append(RequestOutput(str(index), None, ids, None, [completion], True))
            if bar is not None:
                _ = bar.format_dict["elapsed"]
                bar.update(1)
        if bar is not None:
            bar.close()
        return outputs

    def _complete(self, ids: list[int], sp: dict[str, Any]) -> CompletionOutput:
        """Decode one sample, ending it the way vLLM does, and say why it ended."""
        import torch

        generator = torch.Generator().manual_seed(sp["seed"] if sp["seed"] is not None else 0)
        limit = self._max_model_len
        tokens: list[int] = []
        text, finish, stop_reason = "", "length", None
        with torch.inference_mode():
            while True:
                logits = self._model(torch.tensor([ids + tokens])).logits[0, -1].float()
                token = _pick(logits, sp, generator)
                tokens.append(token)
                text = self._tokenizer.decode(tokens, skip_special_tokens=sp["skip_special_tokens"])
                if not sp["ignore_eos"] and token == self._eos:
                    finish = "stop"
                    break
                if token in self._stop_ids:
                    finish, stop_reason = "stop", token
                    break
                found = [(text.find(s), s) for s in sp["stop"] if text.find(s) >= 0]
                if found:
                    at, stop_reason = min(found)
                    text, finish = text[:at], "stop"
                    break
                if len(tokens) >= sp["max_tokens"] or len(ids) + len(tokens) >= limit:
                    break
        if FINISH_OVERRIDE:
            finish, stop_reason = FINISH_OVERRIDE[0], None
        return CompletionOutput(
            index=0,
            text=text,
            token_ids=tokens,
            cumulative_logprob=None,
            logprobs=None,
            finish_reason=finish,
            stop_reason=stop_reason,
        )


def _pick(logits: Any, sp: dict[str, Any], generator: Any) -> int:
    """Greedy at temperature 0; else temperature, top-k, top-p, then one seeded multinomial draw."""
    import torch

    if sp["temperature"] == 0:
        return int(logits.argmax())
    logits = logits / sp["temperature"]
    if sp["top_k"] > 0:
        kth = logits.topk(min(sp["top_k"], logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if sp["top_p"] < 1:
        ordered, order = probs.sort(descending=True)
        drop = (ordered.cumsum(-1) - ordered) >= sp["top_p"]
        probs = probs.clone()
        probs[order[drop]] = 0.0
    return int(torch.multinomial(probs, 1, generator=generator))
