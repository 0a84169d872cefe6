"""Prompt tokens of a plan's generate jobs, counted from the real benchmark items.

Each benchmark's items are loaded and rendered once (as the generate job renders them), and counted once
per way of counting: the model's own tokenizer where this machine already has it (never downloaded at plan
time), else a stated approximation. Models that count alike (one vocabulary, or the approximation) share
one pass, so a study with thousands of shards encodes far fewer prompts than it runs.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpt_transfer.errors import RptError
from rpt_transfer.generation.base import PromptMode
from rpt_transfer.generation.prompting import render_prompt
from rpt_transfer.hashing import canonical_json
from rpt_transfer.plan import Job, Plan

BYTES_PER_TOKEN = 4
"""Approximation: UTF-8 bytes per token, the usual rule of thumb for English under BPE vocabularies."""
CHAT_OVERHEAD_TOKENS = 16
"""Approximation: tokens a chat template adds around one user message (role markers, special tokens)."""


def origin(ref: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Where a model's weights start: a Hub commit, a store checkpoint, or a tiny model built here.

    A model trained by the study keeps its base's tokenizer and architecture, so it leads to its base.
    """
    if "job" not in ref:
        return ref
    job = plan.job(ref["job"])
    if job.kind == "train":
        return origin(job.inputs["base"], plan)
    return {"tiny": job.id}


@dataclass
class Counter:
    """One way of counting prompt tokens: a message's tokens, plus what the model adds around every prompt.

    With a tokenizer, the message is encoded on its own and the chat template's tokens (an empty message
    rendered) or the raw mode's special tokens are added: one encoding per vocabulary serves every model and
    template that share it; a merge across the template's edge is ignored (a token or two per prompt at most).
    """

    key: str
    """Equal for counters whose messages count the same (one vocabulary, or the approximation)."""
    label: str
    """What counted, for people."""
    overhead: int
    """Tokens the chat template (chat mode) or the special tokens (raw mode) add to every prompt."""
    tokenizer: Any = None

    def count(self, texts: list[str]) -> list[int]:
        """Tokens of each user message alone (without `overhead`)."""
        if self.tokenizer is None:
            return [math.ceil(len(text.encode()) / BYTES_PER_TOKEN) for text in texts]
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:  # a fast tokenizer: batch encoding in Rust, no offsets
            return [len(found.ids) for found in backend.encode_batch_fast(texts, add_special_tokens=False)]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]


def approximation(prompt_mode: PromptMode) -> Counter:
    """The stated approximation, for models whose tokenizer is not on this machine."""
    chat = prompt_mode == "chat"
    extra = f" + {CHAT_OVERHEAD_TOKENS} per prompt (chat template)" if chat else ""
    return Counter("approx", f"≈ UTF-8 bytes / {BYTES_PER_TOKEN}{extra}", CHAT_OVERHEAD_TOKENS if chat else 0)


def counter_for(source: dict[str, Any], prompt_mode: PromptMode) -> Counter:
    """The best counter this machine has for a model's origin, without touching the network."""
    if "tiny" in source:
        from rpt_transfer.tiny.tokenizer import build_tokenizer

        return _tokenizer_counter(build_tokenizer(), "tiny character tokenizer", prompt_mode)
    if "hub" in source:
        tokenizer = cached_tokenizer(source["hub"], source["revision"])
        if tokenizer is not None:
            label = f"tokenizer of {source['hub']}@{source['revision'][:7]} (local cache)"
            return _tokenizer_counter(tokenizer, label, prompt_mode)
    return approximation(prompt_mode)


def cached_tokenizer(repo: str, revision: str) -> Any:
    """The Hub model's tokenizer from the local huggingface_hub cache, or None when it is not there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "tokenizer_config.json", revision=revision)
    if not isinstance(found, str):
        return None  # not cached: no need to import transformers at all
    from transformers import AutoTokenizer

    try:  # from the snapshot's folder: nothing is looked up, and a snapshot without config.json still loads
        return AutoTokenizer.from_pretrained(str(Path(found).parent))
    except Exception:  # any partial or unusual cache entry: the approximation stands in, and says so
        return None


def _tokenizer_counter(tokenizer: Any, label: str, prompt_mode: PromptMode) -> Counter:
    """A counter keyed by the tokenizer's vocabulary, so models sharing it share one encoding pass."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocabulary = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    digest = hashlib.sha256(vocabulary.encode()).hexdigest()[:16]
    empty = render_prompt(tokenizer, [{"role": "user", "content": ""}], prompt_mode)
    # as generation.prompting.prompt_token_ids: special tokens added once, by the template in chat mode
    overhead = len(tokenizer(empty, add_special_tokens=prompt_mode == "raw")["input_ids"])
    return Counter(f"tokenizer:{digest}", label, overhead, tokenizer)


@dataclass
class PromptTokens:
    """Prompt tokens per generate job; items rendered once per benchmark, counted once per counter."""

    texts: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    """Benchmark name -> why its items could not be rendered (their tokens are left out)."""

    def job_tokens(self, job: Job, counter: Counter) -> int | None:
        """Prompt tokens of one generate job's shard, or None when its benchmark's items cannot be read."""
        items = self._texts(job)
        if items is None:
            return None
        key = (self._items_key(job), counter.key)
        if key not in self.counts:
            self.counts[key] = counter.count(items)
        shard = job.inputs["shard"]
        counts = self.counts[key][shard["start"] : shard["stop"]]
        return sum(counts) + counter.overhead * len(counts)

    def _texts(self, job: Job) -> list[str] | None:
        """The user message of every item up to the job's limit, rendered as the generate job does."""
        from rpt_transfer.jobs.generate import benchmark_for

        key = self._items_key(job)
        identity = job.inputs["benchmark"]
        if key not in self.texts and identity["name"] not in self.problems:
            try:
                bench = benchmark_for(identity)
                items = bench.items(job.inputs["limit"], identity.get("options"))
                self.texts[key] = [bench.render_prompt(item) for item in items]
            except RptError as err:
                self.problems[identity["name"]] = str(err)
        return self.texts.get(key)

    @staticmethod
    def _items_key(job: Job) -> str:
        return canonical_json([job.inputs["benchmark"], job.inputs["limit"]])
