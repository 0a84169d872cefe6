import pytest
from pydantic import ValidationError

from rpt_transfer.errors import RptError
from rpt_transfer.generation import FakeBackend, GenRequest, SamplingParams, load_backend
from rpt_transfer.generation.base import sample_seed


def ask(request_id: str, content: str = "Q", seed: int = 0) -> GenRequest:
    return GenRequest(request_id, [{"role": "user", "content": content}], seed)


def test_script_by_request_and_sample() -> None:
    backend = FakeBackend({"a": "always", "b": ["first", "second"]}, default="unknown")
    results = backend.generate([ask("a"), ask("b"), ask("c")], SamplingParams(n=3))
    assert [(r.request_id, r.sample_index, r.completion) for r in results] == [
        ("a", 0, "always"),
        ("a", 1, "always"),
        ("a", 2, "always"),
        ("b", 0, "first"),
        ("b", 1, "second"),
        ("b", 2, "first"),
        ("c", 0, "unknown"),
        ("c", 1, "unknown"),
        ("c", 2, "unknown"),
    ]
    assert {r.finish_reason for r in results} == {"stop"}


def test_callable_script_sees_request_and_index() -> None:
    backend = FakeBackend(lambda request, i: f"{request.request_id}:{request.seed}:{i}")
    results = backend.generate([ask("x", seed=5)], SamplingParams(n=2))
    assert [r.completion for r in results] == ["x:5:0", "x:5:1"]


def test_prompt_text_and_word_counts() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    result = FakeBackend({"q": "It is 4"}).generate([GenRequest("q", messages, 0)], SamplingParams())[0]
    assert result.prompt_text == "Be brief.\n\nWhat is 2+2?"
    assert (result.prompt_tokens, result.completion_tokens, result.error) == (5, 3, None)


def test_stop_strings_and_max_tokens_apply() -> None:
    backend = FakeBackend({"q": "one two three ANSWER: 4"})
    stopped = backend.generate([ask("q")], SamplingParams(stop=["ANSWER", "two"]))[0]
    assert (stopped.completion, stopped.finish_reason) == ("one ", "stop")
    cut = backend.generate([ask("q")], SamplingParams(max_tokens=2))[0]
    assert (cut.completion, cut.finish_reason, cut.completion_tokens) == ("one two", "length", 2)


def test_progress_counts_every_result() -> None:
    seen: list[int] = []
    results = FakeBackend({}).generate([ask("a"), ask("b")], SamplingParams(n=2), on_progress=seen.append)
    assert sum(seen) == len(results) == 4


def test_load_backend() -> None:
    backend = load_backend("fake", script={"a": "x"})
    assert backend.generate([ask("a")], SamplingParams())[0].completion == "x"
    with pytest.raises(RptError, match="accepted: fake, hf"):
        load_backend("vllm-typo")


@pytest.mark.parametrize(
    "bad",
    [{"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_tokens": 0}, {"n": 0}, {"temp": 1.0}],
)
def test_sampling_params_reject_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        SamplingParams(**bad)


def test_sampling_params_are_frozen() -> None:
    with pytest.raises(ValidationError):
        SamplingParams().n = 2


def test_sample_seed_is_stable() -> None:
    assert sample_seed(0, 0) == sample_seed(0, 0)
    assert len({sample_seed(s, i) for s in range(10) for i in range(10)}) == 100
    assert 0 <= sample_seed(123, 4) < 2**63
