"""OpenRLHF rewards from the project's scorers (issue 14): `reward_service.reward_response` and the file
OpenRLHF imports (`openrlhf_reward.py`), with samples shaped exactly as OpenRLHF sends them."""

import asyncio
import importlib.util
import json
import os
import subprocess
import sys

import pytest
from reward_cases import (
    ADD,
    ADD_RIGHT,
    ADD_WRONG,
    CHOICE_PROMPT,
    END,
    PROMPT,
    SUM,
    SUM_RIGHT,
    label,
    openrlhf_agent,
    request,
    sample,
)

from rpt_transfer.scoring import SCORERS, Scorer, Verdict
from rpt_transfer.training import reward_service
from rpt_transfer.training.openrlhf_reward import REWARD_FUNC_PATH
from rpt_transfer.training.reward_label import encode_label
from rpt_transfer.training.reward_service import reward_response


def respond(*samples: tuple[str, str, str], run_programs: bool = True) -> dict:
    body = request(*samples)
    response = reward_response(body["query"], body["prompts"], body["labels"], run_programs=run_programs)
    json.dumps(response, allow_nan=False)  # what the server sends must be plain JSON
    return response


def triples(response: dict) -> list[tuple[float, float, float]]:
    """(reward, strict verdict, failure flag) per sample."""
    logs = response["extra_logs"]
    assert response["scores"] == response["rewards"]
    return list(zip(response["rewards"], logs["reward_correct"], logs["reward_failure"], strict=True))


def test_math_rewards_follow_the_policy_and_log_the_strict_verdict() -> None:
    response = respond(
        sample("So 1 + 1 = \\boxed{2}."),
        sample("So 1 + 1 = \\boxed{3}."),
        sample("So 1 + 1 is 2."),  # no box: strict 0, flexible reads the final value
        sample("So 1 + 1 is 2.", policy="flexible"),
        sample("\\boxed{\\frac{4}{2}}", policy="flexible"),
        ("".join((PROMPT, "\\boxed{2}", END, "<|endoftext|>")), PROMPT, label()),  # two end markers
    )
    assert triples(response) == [
        (1.0, 1.0, 0.0),
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
        (1.0, 0.0, 0.0),
        (1.0, 1.0, 0.0),
        (1.0, 1.0, 0.0),
    ]


def test_the_question_is_never_scored_as_the_answer() -> None:
    """A prompt that itself holds the right boxed value: only what the model wrote after it counts."""
    prompt = "Example: \\boxed{2}. What is 1 + 1?\n"
    assert triples(respond(sample("I do not know.", prompt=prompt))) == [(0.0, 0.0, 0.0)]
    query = "Example: \\boxed{2}. What is 1 + 1? \nI do not know." + END  # tokenizer changed the spacing
    assert triples(respond((query, prompt, label()))) == [(0.0, 0.0, 0.0)]


def test_choice_rewards_strict_and_flexible() -> None:
    def choice(answer: str, policy: str = "strict") -> tuple[str, str, str]:
        return sample(answer, "choice", "B", policy, CHOICE_PROMPT)

    response = respond(
        choice("7 is prime. ANSWER: B"),
        choice("7 is prime, so the answer is B."),
        choice("7 is prime, so the answer is B.", "flexible"),
        choice("ANSWER: A", "flexible"),
    )
    assert triples(response) == [(1.0, 1.0, 0.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 0.0)]


@pytest.mark.usefixtures("sandbox_ready")
def test_code_rewards_run_the_program_in_the_sandbox() -> None:
    response = respond(
        sample(ADD_RIGHT, "code_function", ADD),
        sample(ADD_WRONG, "code_function", ADD),
        sample(SUM_RIGHT, "code_stdio", SUM),
        sample("Let me think.\n" + SUM_RIGHT.split("\n", 1)[1], "code_stdio", SUM, "flexible"),
    )
    assert triples(response) == [(1.0, 1.0, 0.0), (0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (1.0, 1.0, 0.0)]


def test_samples_of_several_scorers_keep_their_order() -> None:
    response = respond(
        sample("\\boxed{3}"),
        sample("ANSWER: B", "choice", "B", prompt=CHOICE_PROMPT),
        sample("\\boxed{2}"),
        sample("ANSWER: B", "choice", "A", prompt=CHOICE_PROMPT),
    )
    assert response["rewards"] == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("given", "reason", "why"),
    [
        ("not json", "bad_label", "label is not JSON"),
        (json.dumps({"scorer": "math", "reference": "2"}), "bad_label", "not a version-1"),
        (None, "bad_label", "label is NoneType"),
        ("[" * 100_000, "bad_label", "nested too deeply"),
        (encode_label("math", "2", "lenient", []), "bad_label", "label policy 'lenient'"),  # type: ignore[arg-type]
        (encode_label("regex", "2", "strict", []), "unknown_scorer", "unknown scorer 'regex'"),
    ],
)
def test_a_bad_label_is_a_counted_failure_with_one_stderr_line(
    given: object, reason: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = sample("\\boxed{2}")
    response = reward_response([good[0], good[0]], [PROMPT, PROMPT], [given, good[2]])
    assert triples(response) == [(0.0, 0.0, 1.0), (1.0, 1.0, 0.0)]  # the good sample is scored still
    (line,) = capsys.readouterr().err.splitlines()
    assert f": {reason}: " in line and why in line


@pytest.mark.parametrize(
    ("queries", "prompts", "labels", "count"),
    [
        (["a", "b"], [PROMPT], [label(), label()], 2),  # lengths differ
        ("a", [PROMPT], [label()], 1),  # not a list
        (None, None, None, 1),
        ({"query": "a"}, [PROMPT, PROMPT, PROMPT], [label()], 3),
    ],
)
def test_a_request_of_the_wrong_shape_fails_every_sample_without_raising(
    queries: object, prompts: object, labels: object, count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    response = reward_response(queries, prompts, labels)
    assert triples(response) == [(0.0, 0.0, 1.0)] * count
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == count and all(": bad_request: " in line for line in lines)


def test_a_sample_that_is_not_text_fails_alone() -> None:
    response = reward_response([3, PROMPT + "\\boxed{2}"], [PROMPT, PROMPT], [label(), label()])
    assert triples(response) == [(0.0, 0.0, 1.0), (1.0, 1.0, 0.0)]


def _broken_scorer(verdict: Verdict | None) -> Scorer:
    """A scorer whose batch form always raises; one by one it raises too (None) or returns `verdict`."""

    def verify(completion: str, reference: str, context: object = None) -> Verdict:
        if verdict is None:
            raise RuntimeError("judge crashed\non two lines")
        return verdict

    def verify_many(*_: object) -> list[Verdict]:
        raise RuntimeError("batch crashed")

    return Scorer(verify, "0", verify_many)


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [(None, "scorer_error"), (Verdict(0.0, None, "toolchain_missing", "no node here"), "toolchain_missing")],
)
def test_a_scorer_that_cannot_decide_gives_a_counted_failure(
    verdict: Verdict | None, reason: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(SCORERS, "broken", _broken_scorer(verdict))
    response = respond(sample("\\boxed{2}", "broken"), sample("\\boxed{2}"))
    assert triples(response) == [(0.0, 0.0, 1.0), (1.0, 1.0, 0.0)]
    (line,) = capsys.readouterr().err.splitlines()  # one line, even for a multi-line explanation
    assert line.startswith(f"reward broken: {reason}: ")


def test_a_bug_outside_the_scorers_is_still_a_counted_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> str:
        raise KeyError("oops")

    monkeypatch.setattr(reward_service, "completion_of", broken)
    assert triples(respond(sample("\\boxed{2}"), sample("\\boxed{2}"))) == [(0.0, 0.0, 1.0)] * 2


def test_any_exception_while_scoring_is_a_counted_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_: object, **__: object) -> list[Verdict]:
        raise MemoryError("out of memory")

    monkeypatch.setattr(reward_service, "score_batch", explode)
    response = respond(sample("\\boxed{2}"), ("q", "p", "not a label"))
    assert triples(response) == [(0.0, 0.0, 1.0), (0.0, 0.0, 1.0)]
    scored = reward_service.outcomes(*request(sample("\\boxed{2}")).values())
    assert [outcome.failure for outcome in scored] == ["exception"]


def test_the_function_file_never_runs_programs() -> None:
    """OpenRLHF calls the file inside GPU processes: code samples fail there, pointing at the service."""
    from rpt_transfer.training.openrlhf_reward import reward_func

    body = request(sample(ADD_RIGHT, "code_function", ADD), sample("\\boxed{2}"))
    response = reward_func(body["query"], body["prompts"], body["labels"])
    assert triples(response) == [(0.0, 0.0, 1.0), (1.0, 1.0, 0.0)]
    scored = reward_service.outcomes(*body.values(), run_programs=False)
    assert scored[0].failure == "runs_programs"


LOAD_AS_OPENRLHF_DOES = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("reward_func", sys.argv[1])
reward_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reward_module)
print(json.dumps(reward_module.reward_func(*json.loads(sys.argv[2]))))
"""


def test_the_function_file_loads_by_path_in_a_fresh_interpreter(tmp_path: object) -> None:
    """As OpenRLHF loads it: by file location, module name `reward_func`, from another working directory."""
    assert REWARD_FUNC_PATH.name == "openrlhf_reward.py" and REWARD_FUNC_PATH.is_absolute()
    args = json.dumps(list(request(sample("\\boxed{2}")).values()))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AS_OPENRLHF_DOES, str(REWARD_FUNC_PATH), args],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rewards"] == [1.0]
    assert importlib.util.find_spec("rpt_transfer.training.openrlhf_reward").origin == str(REWARD_FUNC_PATH)


def test_openrlhf_calls_the_function_file_through_its_own_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenRLHF's SingleTurnAgentExecutor loads `--reward.remote_url <file>.py` and calls it off-thread."""
    agent = openrlhf_agent(monkeypatch)
    executor = agent.SingleTurnAgentExecutor(str(REWARD_FUNC_PATH))
    for answer, expected in (("\\boxed{2}", 1.0), ("\\boxed{5}", 0.0)):
        query, prompt, text = sample(answer)
        (result,) = asyncio.run(executor._fetch_rewards_via_func([query], [prompt], [text]))
        assert result["rewards"] == [expected] and result["extra_logs"]["reward_failure"] == [0.0]
    (result,) = asyncio.run(executor._fetch_rewards_via_func(["q"], ["p"], ["{}"]))
    assert result["rewards"] == [0.0] and result["extra_logs"]["reward_failure"] == [1.0]
