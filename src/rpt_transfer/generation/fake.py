"""A scripted backend for tests of everything downstream of generation (after inspect's mockllm)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rpt_transfer.generation.base import (
    GenRequest,
    GenResult,
    SamplingParams,
    cut_at_stop,
    engine_label,
    raw_prompt,
)

Script = Mapping[str, str | Sequence[str]] | Callable[[GenRequest, int], str]
"""Completions by request id (one for every sample, or one per sample index), or a function of
(request, sample index)."""


class FakeBackend:
    """Return scripted completions instantly, with no model.

    Stop strings and `max_tokens` apply as in a real backend; tokens are whitespace-separated words.

    Args:
        script: By request id, a completion for every sample or a sequence indexed by sample (cycling
            when shorter than `n`); or a callable `(request, sample_index) -> completion`.
        default: Completion for request ids the mapping does not name.
        engine: Engine versions to report besides its own label, to test what the report does with them.
    """

    def __init__(self, script: Script, default: str = "", engine: dict[str, str] | None = None) -> None:
        self.script = script
        self.default = default
        self.engine = {"backend": engine_label("fake"), **(engine or {})}

    def engine_versions(self) -> dict[str, str]:
        """The fake's label, plus whatever engine versions a test asked it to claim (`engine`)."""
        return dict(self.engine)

    def completion(self, request: GenRequest, sample_index: int) -> str:
        """Look up the scripted text for one sample, before stop strings and length limits."""
        if callable(self.script):
            return self.script(request, sample_index)
        scripted = self.script.get(request.request_id, self.default)
        if isinstance(scripted, str):
            return scripted
        return scripted[sample_index % len(scripted)] if scripted else self.default

    def generate(
        self,
        requests: Sequence[GenRequest],
        params: SamplingParams,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[GenResult]:
        """Return scripted samples in protocol order; see `GenerationBackend.generate`."""
        results = []
        for request in requests:
            prompt = raw_prompt(request.messages)
            for sample in range(params.n):
                text, reason = self._limit(self.completion(request, sample), params)
                tokens = (len(prompt.split()), len(text.split()))
                results.append(GenResult(request.request_id, sample, prompt, text, reason, *tokens))
                if on_progress is not None:
                    on_progress(1)
        return results

    @staticmethod
    def _limit(text: str, params: SamplingParams) -> tuple[str, str]:
        """Apply stop strings, then `max_tokens` (in words), the way a real backend would."""
        cut = cut_at_stop(text, params.stop)
        if cut is not None:
            return text[:cut], "stop"
        words = text.split()
        if len(words) > params.max_tokens:
            return " ".join(words[: params.max_tokens]), "length"
        return text, "stop"
