"""Generation backends behind one protocol; heavy libraries load only with the backend that needs them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rpt_transfer.errors import RptError
from rpt_transfer.generation.base import (
    BACKEND_VERSIONS,
    GenerationBackend,
    GenRequest,
    GenResult,
    PromptMode,
    SamplingParams,
    backend_version,
)
from rpt_transfer.generation.fake import FakeBackend
from rpt_transfer.runnable import Needs

__all__ = [
    "BACKENDS",
    "BACKEND_VERSIONS",
    "NEEDS",
    "FakeBackend",
    "GenRequest",
    "GenResult",
    "GenerationBackend",
    "PromptMode",
    "SamplingParams",
    "backend_version",
    "load_backend",
]


def _load_hf(**kwargs: Any) -> GenerationBackend:
    """HF transformers on CPU or one GPU (imports torch and transformers now, not before)."""
    try:
        from rpt_transfer.generation.hf import HFBackend
    except ImportError as err:  # a slim install without torch: say which package is missing
        raise RptError(
            f"the 'hf' backend needs torch and transformers ({err}); pip install rpt-transfer"
        ) from err
    return HFBackend(**kwargs)


def _load_openai(**kwargs: Any) -> GenerationBackend:
    """An OpenAI-compatible server (vLLM, SGLang, `transformers serve`, a hosted API) over HTTP."""
    from rpt_transfer.generation.openai import OpenAIBackend

    return OpenAIBackend(**kwargs)


def _load_vllm(**kwargs: Any) -> GenerationBackend:
    """The offline vLLM engine on one or more GPUs (vllm itself is imported when the backend is built)."""
    from rpt_transfer.generation.vllm import VLLMBackend

    return VLLMBackend(**kwargs)


def _load_fake(**kwargs: Any) -> GenerationBackend:
    """Scripted completions for tests."""
    return FakeBackend(**kwargs)


BACKENDS: dict[str, Callable[..., GenerationBackend]] = {
    "fake": _load_fake,
    "hf": _load_hf,
    "openai": _load_openai,
    "vllm": _load_vllm,
}
"""Backend name → loader; each loader imports its backend's libraries only when called."""
NEEDS: dict[str, Needs] = {
    "hf": Needs(("torch", "transformers")),
    "openai": Needs(("httpx",)),
    "vllm": Needs(("vllm",), extra="gpu"),
}
"""Backend name → the packages its loader imports and the extra that installs them (e.g. vllm: `gpu`);
`validate`, `plan` and `run` look them up, without importing, to refuse a backend this installation lacks."""


def load_backend(name: str, **kwargs: Any) -> GenerationBackend:
    """Build the backend called `name` with its keyword arguments (e.g. `model_path`, `prompt_mode`)."""
    if name not in BACKENDS:
        raise RptError(f"unknown generation backend {name!r}; accepted: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](**kwargs)
