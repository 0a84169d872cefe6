"""The math verifier, one case per behaviour (inspect's test_match.py style), and its worker pool."""

import os
import threading
import time
from pathlib import Path

import pytest

from rpt_transfer.scoring import get_scorer
from rpt_transfer.scoring.math import VERSION, new_pool, verify, verify_many
from rpt_transfer.scoring.math_workers import PoolError, WorkerPool

HERE = Path(__file__).resolve().parent

CASES = [
    # (completion, reference, correct, reason)
    # -- the first cut's cases, still true
    ("7+5=12. ANSWER: 12", "12", 1.0, None),
    ("ANSWER: 25", "5", 0.0, None),  # "25" must not match "5"
    ("ANSWER: 5", "25", 0.0, None),
    ("ANSWER: 1,234", "1234", 1.0, None),
    ("ANSWER: 12.", "12", 1.0, None),
    ("ANSWER: 12.0", "12", 1.0, None),
    ("ANSWER: $12", "12", 1.0, None),
    ("answer: 3\nANSWER: 4", "4", 1.0, None),  # the last answer counts
    ("ANSWER: 4\nANSWER: 3", "4", 0.0, None),
    ("<think>ANSWER: 4</think> ANSWER: 5", "5", 1.0, None),
    ("<think>ANSWER: 4</think>", "4", 0.0, "no_answer"),
    ("the sum is 12", "12", 0.0, "no_answer"),
    ("", "12", 0.0, "no_answer"),
    # v1 said parse_error (it read numbers only); math-verify reads a word as symbols: a wrong answer
    ("ANSWER: twelve", "12", 0.0, None),
    ("ANSWER: -3", "-3", 1.0, None),
    # -- where the answer is
    ("\\boxed{72}", "72", 1.0, None),
    ("First \\boxed{3}, then corrected: \\boxed{4}", "4", 1.0, None),  # several boxes: the last
    ("First \\boxed{4}, then corrected: \\boxed{3}", "4", 0.0, None),
    ("\\fbox{6}", "6", 1.0, None),
    ("\\boxed{\\frac{14}{3}}", "\\frac{14}{3}", 1.0, None),  # nested braces
    ("The answer is 14/3.", "\\frac{14}{3}", 1.0, None),
    ("Final Answer: The final answer is $\\frac{14}{3}$. I hope it is correct.", "\\frac{14}{3}", 1.0, None),
    ("**ANSWER: 12**", "12", 1.0, None),
    ("#### 1,450,000", "1450000", 1.0, None),  # GSM8K's own format
    ("\\boxed{5}\n\nThis answer is consistent with the check.", "5", 1.0, None),
    ("\\boxed{4}\nANSWER: 5", "5", 1.0, None),
    ("\\boxed{}", "12", 0.0, "no_answer"),
    # -- reasoning
    ("<think>\\boxed{4}</think>\\boxed{5}", "5", 1.0, None),
    ("thinking, opened by the prompt \\boxed{4}</think>The answer is 5.", "5", 1.0, None),
    ("<think>so it is \\boxed{5}, let me check", "5", 0.0, "truncated"),  # cut off while thinking
    # -- numbers
    ("ANSWER: 1234", "1,234", 1.0, None),
    ("\\boxed{10{,}080}", "10,\\!080", 1.0, None),  # LaTeX thousands separators
    ("\\boxed{10\\,080}", "10080", 1.0, None),  # math-verify alone reads this as 90
    ("\\boxed{11,111,111,100}", "11,\\! 111,\\! 111,\\! 100", 1.0, None),
    ("\\boxed{27}", "27.0", 1.0, None),  # AMC references are floats
    ("\\boxed{-27}", "27.0", 0.0, None),
    ("\\boxed{25}", "025", 1.0, None),  # AIME references keep leading zeros
    ("\\boxed{25}", "250", 0.0, None),
    ("\\boxed{0.5}", "5", 0.0, None),
    ("ANSWER: −3", "-3", 1.0, None),  # Unicode minus
    ("ANSWER: 50%", "50", 1.0, None),
    ("\\boxed{10\\%}", "10\\%", 1.0, None),
    ("ANSWER: 10 percent", "0.1", 0.0, None),  # a percent sign is a unit, never a factor 1/100 (v3)
    ("ANSWER: 10 percent", "10", 1.0, None),
    ("ANSWER: 18 dollars", "18", 1.0, None),
    ("ANSWER: She makes $18 every day.", "18", 1.0, None),
    ("\\boxed{18 \\text{ dollars}}", "18", 1.0, None),
    ("\\boxed{5.4 \\text{ cents}}", "5.4 \\text{ cents}", 1.0, None),
    ("\\boxed{\\$18.90}", "\\$18.90", 1.0, None),
    ("ANSWER: $32,348", "\\$32,\\!348", 1.0, None),
    ("After 3 days she has 18 eggs.", "18", 0.0, "no_answer"),
    # -- symbolic answers
    ("\\boxed{\\frac{3}{2}}", "1.5", 1.0, None),
    ("\\boxed{\\dfrac{3}{2}}", "\\frac32", 1.0, None),
    ("\\boxed{\\frac{2}{3}}", "\\frac{3}{2}", 0.0, None),
    ("\\boxed{0.333333}", "\\frac{1}{3}", 1.0, None),  # math-verify rounds to 6 places
    # -- settled in process (v3): fractions of integers exactly, numbers clearly apart without simplify
    ("\\boxed{\\frac{2}{4}}", "\\frac12", 1.0, None),
    ("\\boxed{3/4}", "\\dfrac{3}{4}", 1.0, None),
    ("\\boxed{\\frac{6}{2}}", "3", 1.0, None),
    ("\\boxed{-\\frac{1}{3}}", "\\frac{1}{3}", 0.0, None),
    ("\\boxed{\\frac{1}{0}}", "0", 0.0, None),  # no fraction: math-verify's call
    ("\\boxed{2\\sqrt{2}}", "3", 0.0, None),
    ("\\boxed{1.41421356}", "\\sqrt{2}", 1.0, None),  # close numbers still go to math-verify's rounding
    ("\\boxed{0.33}", "\\frac{1}{3}", 0.0, None),
    ("\\boxed{1\\frac{4}{5}}", "\\frac{9}{5}", 1.0, None),  # mixed number
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1.0, None),
    ("\\boxed{2√2}", "2\\sqrt{2}", 1.0, None),
    ("\\boxed{\\sqrt{2}}", "2", 0.0, None),  # the 2 under the root is not the answer
    ("\\boxed{2\\pi}", "2\\pi", 1.0, None),
    ("ANSWER: 2 pi", "2\\pi", 1.0, None),
    ("ANSWER: 2 pi", "2", 0.0, None),
    ("\\boxed{6.28}", "2\\pi", 0.0, None),
    ("\\boxed{x^2+2x+1}", "(x+1)^2", 1.0, None),
    ("\\boxed{6-5i}", "6 - 5i", 1.0, None),
    ("\\boxed{5i-6}", "6 - 5i", 0.0, None),
    ("\\boxed{y = 2x + 3}", "y = 2x + 3", 1.0, None),
    ("\\boxed{5}", "x=5", 1.0, None),
    ("\\boxed{52_8}", "52_8", 1.0, None),
    (
        "\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        1.0,
        None,
    ),
    (
        "\\boxed{\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}}",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        0.0,
        None,
    ),
    # -- intervals, sets, tuples, degrees, words
    ("\\boxed{(3,4]}", "(3,4]", 1.0, None),
    ("\\boxed{(3,4)}", "(3,4]", 0.0, None),
    ("\\boxed{[-2,7]}", "x \\in [-2,7]", 1.0, None),
    ("\\boxed{(-∞, 0]}", "(-\\infty, 0]", 1.0, None),
    ("\\boxed{7, 5, 3}", "3, 5, 7", 1.0, None),
    ("\\boxed{3, 5}", "3, 5, 7", 0.0, None),  # a subset is wrong (math-verify issue #47)
    ("ANSWER: $3$ and $5$", "3, 5", 1.0, None),
    ("\\boxed{3}", "3, 4", 0.0, None),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "(3, \\frac{\\pi}{2})", 1.0, None),
    ("\\boxed{(\\frac{\\pi}{2}, 3)}", "(3, \\frac{\\pi}{2})", 0.0, None),
    ("\\boxed{90^\\circ}", "90^\\circ", 1.0, None),
    ("\\boxed{90°}", "90^\\circ", 1.0, None),
    ("\\boxed{90}", "90^\\circ", 1.0, None),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", 1.0, None),
    ("\\boxed{West}", "\\text{east}", 0.0, None),
    ("ANSWER: (C)", "\\text{(C)}", 1.0, None),
    ("ANSWER: (B)", "\\text{(C)}", 0.0, None),
    # -- what cannot be scored
    ("ANSWER: \\frac{", "12", 0.0, "parse_error"),
    ("\\boxed{5}", "\\frac{", 0.0, "parse_error"),  # a broken reference is reported, not scored
    ("\\boxed{5}", "", 0.0, "parse_error"),
    ("ANSWER: \ud800", "12", 0.0, "parse_error"),  # lone surrogate
    ("ANSWER: 1\x002", "12", 0.0, "parse_error"),
    ("\udcff\udcfe binary noise \\boxed{5}", "5", 1.0, None),  # noise outside the answer is harmless
    ("x" * 5_000_000, "5", 0.0, "parse_error"),  # 5 MB
    ("x" * 900_000 + "\\boxed{5}", "5", 1.0, None),
    ("\\boxed{" + "1" * 5_000 + "}", "5", 0.0, "parse_error"),
]


@pytest.mark.parametrize(("completion", "reference", "correct", "reason"), CASES, ids=range(len(CASES)))
def test_math_verdicts(completion: str, reference: str, correct: float, reason: str | None) -> None:
    verdict = verify(completion, reference)
    assert (verdict.correct, verdict.reason) == (correct, reason), verdict.explanation


def test_verify_many_matches_verify_in_order() -> None:
    verdicts = verify_many([(completion, reference) for completion, reference, _, _ in CASES])
    assert [(v.correct, v.reason) for v in verdicts] == [(correct, reason) for _, _, correct, reason in CASES]


def test_flexible_is_never_below_strict_and_every_field_is_set() -> None:
    verdicts = verify_many([(completion, reference) for completion, reference, _, _ in CASES])
    for (completion, _, _, _), verdict in zip(CASES, verdicts, strict=True):
        assert verdict.flexible is not None and verdict.flexible >= verdict.correct, completion[:60]
        assert verdict.format_followed is not None and verdict.resolved() == verdict


def test_verify_many_of_nothing() -> None:
    assert verify_many([]) == []


@pytest.mark.parametrize("completion", [b"\\boxed{5}", None, 5])
def test_non_text_completions_are_parse_errors(completion: object) -> None:
    verdict = verify(completion, "5")  # type: ignore[arg-type]
    assert (verdict.correct, verdict.reason) == (0.0, "parse_error")


@pytest.mark.parametrize(
    ("completion", "finish_reason", "correct", "reason"),
    [
        ("Let me compute the first term, which", "length", 0.0, "truncated"),
        ("Let me compute the first term, which", "stop", 0.0, "no_answer"),
        ("\\boxed{5} and now a check that ran out of", "length", 1.0, None),  # the answer was given
    ],
)
def test_finish_reason_length(
    completion: str, finish_reason: str, correct: float, reason: str | None
) -> None:
    verdict = verify(completion, "5", finish_reason=finish_reason)
    assert (verdict.correct, verdict.reason) == (correct, reason)
    (batch,) = verify_many([(completion, "5")], finish_reasons=[finish_reason])
    assert batch == verdict


def test_verdict_says_what_was_extracted_and_why() -> None:
    verdict = verify("So \\boxed{\\frac{1}{2}}.", "0.5")
    assert verdict.extracted == "\\frac{1}{2}"
    assert "math-verify" in verdict.explanation and "equal" in verdict.explanation


def test_verify_works_off_the_main_thread() -> None:
    results = []
    thread = threading.Thread(target=lambda: results.append(verify("\\boxed{\\frac{1}{2}}", "0.5")))
    thread.start()
    thread.join(120)
    assert [verdict.correct for verdict in results] == [1.0]


PATHOLOGICAL = [
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{1000000!}",
    "\\boxed{(10^{10^{10}})!}",
    "\\boxed{" + "{" * 400 + "1" + "}" * 400 + "}",  # deeply nested braces
    "\\boxed{" + "(" * 450 + "1" + ")" * 450 + "}",
    "\\boxed{\\sum_{n=1}^{10^{100}} n^{n}}",
]


def test_pool_survives_pathological_answers() -> None:
    pairs = [pair for bad in PATHOLOGICAL for pair in ((bad, "5"), ("\\boxed{\\sqrt{25}}", "5"))]
    pairs.append(("ANSWER: 5", "1000000!"))  # a pathological reference
    with new_pool(2) as pool:
        verdicts = verify_many(pairs, timeout=1.0, pool=pool)
        assert pool.replaced >= 1
        for (completion, _), verdict in zip(pairs, verdicts, strict=True):
            expected = {1.0} if completion.startswith("\\boxed{\\sqrt") else {0.0}
            assert verdict.correct in expected, (completion[:40], verdict)
            assert verdict.reason in ({None} if expected == {1.0} else {"timeout", "parse_error", None})
        assert sum(verdict.reason == "timeout" for verdict in verdicts) >= 3
        (after,) = verify_many([("\\boxed{\\frac{10}{2}}", "5")], pool=pool)
        assert after.correct == 1.0


def fake_judge(answer: str, reference: str) -> tuple[str, str]:
    """A judge for pool tests: it crashes, hangs, raises or hogs memory on request (runs in workers)."""
    if answer == "crash":
        os._exit(3)
    if answer == "hang":
        time.sleep(600)
    if answer == "raise":
        raise ValueError("hostile input")
    if answer == "hog":
        bytearray(8 * 1024**3)  # past the workers' 4 GiB address-space cap
    return ("equal" if answer == reference else "different"), ""


def test_pool_replaces_crashed_and_stuck_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # the workers import this module for fake_judge
    tasks = [("1", "1"), ("hang", ""), ("2", "3"), ("crash", ""), ("raise", ""), ("hog", ""), ("4", "4")]
    with WorkerPool(f"{Path(__file__).stem}:fake_judge", 2) as pool:
        outcomes = pool.run(tasks, timeout=1.0)
        statuses = [status for status, _ in outcomes]
        assert statuses == ["equal", "timeout", "different", "crashed", "error", "error", "equal"]
        assert "exit code 3" in outcomes[3][1] and "ValueError: hostile input" in outcomes[4][1]
        assert "MemoryError" in outcomes[5][1]
        assert pool.replaced == 2
        assert pool.run([("5", "5")], timeout=1.0) == [("equal", "")]


def test_pool_reports_a_judge_that_cannot_load() -> None:
    with (
        WorkerPool("no_such_module_anywhere:judge", 1) as pool,
        pytest.raises(PoolError, match="ModuleNotFound"),
    ):
        pool.run([("1", "1")], timeout=1.0)


def test_pool_refuses_use_in_a_forked_child() -> None:
    pool = WorkerPool("rpt_transfer.scoring.math:judge", 1)
    pool.pid = -1  # as if this process were a fork of the pool's owner
    with pytest.raises(PoolError, match="after fork"):
        pool.run([("1", "1")], timeout=1.0)


def test_registry_knows_versions() -> None:
    scorer = get_scorer("math")
    assert scorer.verify is verify and scorer.version == VERSION == "3"
