"""The generation protocol every backend implements, and the records it exchanges."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from rpt_transfer.errors import RptError

PromptMode = Literal["chat", "raw"]
"""`chat` renders messages with the tokenizer's chat template; `raw` sends their contents as plain text."""

RAW_SEPARATOR = "\n\n"
"""What joins message contents in raw mode."""

BACKEND_VERSIONS: dict[str, str] = {"fake": "1", "hf": "1", "openai": "1", "vllm": "1"}
"""Version of our own code behind each backend (decode loop, seeding, stop handling, prompt rendering).

It enters generate job ids with the backend's name: bump it when a change to that code can change a
completion, and every generation re-runs. The engine underneath (torch, transformers, vllm, CUDA, GPU)
is not hashed but recorded in every row; see `GenerationBackend.engine_versions`.
"""


class SamplingParams(BaseModel):
    """How completions are sampled; part of a generate job's identity, so every field is explicit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(default=0.0, ge=0.0)
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling: keep the most likely tokens whose probabilities sum to at least this."""
    top_k: int = Field(default=0, ge=0)
    """Keep only the k most likely tokens before sampling; 0 is off (not in ids while off)."""
    max_tokens: int = Field(default=256, ge=1)
    """Most tokens generated per sample; reaching it ends the sample with finish reason `length`."""
    n: int = Field(default=1, ge=1)
    """Samples per prompt (e.g. for pass@k)."""
    seed: int = 0
    """Run-level seed: callers fold it into each `GenRequest.seed`; APIs without per-request seeds use it."""
    stop: list[str] = Field(default_factory=list)
    """Stop strings: the completion is cut before the first one found, with finish reason `stop`."""

    def identity(self) -> dict[str, object]:
        """The fields for job ids; `top_k` only when on, so ids made before it existed stay the same."""
        return self.model_dump(mode="json", exclude={"top_k"} if self.top_k == 0 else set())


class GenRequest(NamedTuple):
    """One prompt to complete, `SamplingParams.n` times."""

    request_id: str
    """Caller's key, e.g. the benchmark item id."""
    messages: list[dict[str, str]]
    """Chat messages (`role`, `content`)."""
    seed: int
    """Per-request seed: sample `i` draws from `sample_seed(seed, i)`, wherever the request is batched."""


class GenResult(NamedTuple):
    """One sample of one request, with what is needed to audit it later."""

    request_id: str
    """The request's id."""
    sample_index: int
    """Which of the request's `n` samples this is."""
    prompt_text: str
    """The exact text sent to the model, after the chat template (raw mode: the joined contents)."""
    completion: str
    """Generated text, without the end-of-sequence token and cut before any stop string."""
    finish_reason: str
    """`stop` (end of sequence or stop string), `length` (hit `max_tokens`) or `error`."""
    prompt_tokens: int
    """Tokens in the prompt as sent, special tokens included."""
    completion_tokens: int
    """Tokens generated, including the end-of-sequence token or the one that completed a stop string."""
    error: str | None = None
    """Why the sample failed, when `finish_reason` is `error`."""
    transient: bool = False
    """The failure may pass (a server overloaded or down after every retry): the generate job then
    commits nothing and fails, so a later attempt generates the sample instead of scoring it 0."""


class GenerationBackend(Protocol):
    """Anything that turns requests into samples: HF transformers, vLLM, an API, or the fake."""

    def generate(
        self,
        requests: Sequence[GenRequest],
        params: SamplingParams,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[GenResult]:
        """Return `len(requests) * params.n` results, ordered by request, then sample index.

        `on_progress(k)` is called whenever `k` more results are done. A failed request is a result
        with finish reason `error`, never an exception that loses the other requests.
        """
        ...

    def engine_versions(self) -> dict[str, str]:
        """What besides our code shaped the samples: `backend` (name@version), libraries, device, dtype.

        Recorded in every generation (and score) row, never hashed into job ids, so a patch upgrade of
        an engine reuses cached generations; the report warns when base and RPT rows differ here.
        """
        ...


def backend_version(name: str) -> str:
    """The version of our code behind backend `name`, for generate job ids."""
    if name not in BACKEND_VERSIONS:
        raise RptError(
            f"generation backend {name!r} is not part of this installation; accepted: "
            f"{', '.join(sorted(BACKEND_VERSIONS))}"
        )
    return BACKEND_VERSIONS[name]


def engine_label(name: str) -> str:
    """`name@version`, the `backend` entry of `engine_versions`."""
    return f"{name}@{backend_version(name)}"


def raw_prompt(messages: Sequence[dict[str, str]]) -> str:
    """Join the messages' contents, in order, by a blank line: the text raw mode sends."""
    return RAW_SEPARATOR.join(message["content"] for message in messages)


def sample_seed(seed: int, sample_index: int) -> int:
    """Derive a 63-bit seed for one sample, stable across processes and machines (unlike `hash`)."""
    digest = hashlib.sha256(f"{seed}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def cut_at_stop(text: str, stop: Sequence[str]) -> int | None:
    """Index of the earliest stop string in `text`, or None when none occurs."""
    found = [index for index in (text.find(s) for s in stop if s) if index >= 0]
    return min(found) if found else None
