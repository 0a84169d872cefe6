"""Final-answer extraction, one case per behaviour (inspect's test_match.py style)."""

import time

import pytest

from rpt_transfer.scoring.extract import (
    clean_answer,
    final_answer,
    final_boxes,
    last_boxed,
    math_answer,
    math_final_answer,
    math_flexible_answer,
    split_reasoning,
)


@pytest.mark.parametrize(
    ("completion", "visible", "truncated"),
    [
        ("no tags at all", "no tags at all", False),
        ("<think>4</think>5", "5", False),
        ("a<think>x</think>b<think>y</think>c", "abc", False),
        ("the prompt opened the block</think>5", "5", False),  # DeepSeek-R1 template
        ("<think>cut off while thinking", "", True),
        ("<think>x</think>5<think>again, cut", "5", True),
        ("", "", False),
    ],
)
def test_split_reasoning(completion: str, visible: str, truncated: bool) -> None:
    assert split_reasoning(completion) == (visible, truncated)


@pytest.mark.parametrize(
    ("text", "content"),
    [
        (r"\boxed{5}", "5"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),  # nested braces
        (r"\boxed{1} then \boxed{2}", "2"),  # several boxes: the last
        (r"\fbox{3}", "3"),
        (r"$\boxed 7$", "7"),  # brace-less form
        (r"\boxed{2} and then \boxed{3", "2"),  # a box cut off is skipped
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),  # escaped braces do not count
        (r"\boxed{a}{b}", "a"),
        (r"\boxed{\boxed{4}}", "4"),  # a box in a box: the inner one starts last
        (r"\boxed{}", None),
        (r"\boxedx{5}", None),  # another command
        ("no box", None),
    ],
)
def test_last_boxed(text: str, content: str | None) -> None:
    found = last_boxed(text)
    assert (found[1] if found else None) == content


def extract(visible: str) -> str | None:
    raw = math_final_answer(visible)
    return None if raw is None else clean_answer(raw)


@pytest.mark.parametrize(
    ("visible", "answer"),
    [
        ("ANSWER: 12", "12"),
        ("7+5=12. ANSWER: 12", "12"),
        ("answer: 3\nANSWER: 4", "4"),
        ("The answer is 12.", "12"),
        ("So the final answer is $\\frac{1}{2}$.", r"\frac{1}{2}"),
        ("the answer is: 3", "3"),
        ("Final Answer: The final answer is $5$. I hope it is correct.", "5"),  # Minerva format
        ("**Final Answer:** 7", "7"),
        ("**Answer**: 7", "7"),
        ("#### 72", "72"),  # GSM8K format
        ("Solve it.\n#### Step 2\nANSWER: 9", "9"),  # a markdown heading is not an answer
        ("\\boxed{4}\nANSWER: 5", "5"),  # whichever explicit answer comes last
        ("ANSWER: 5\nCheck: \\boxed{4}", "4"),
        ("ANSWER: \\boxed{5}", "5"),
        ("\\boxed{5}\n\nThe answer is consistent with the check.", "5"),  # a phrase never beats a box
        ("**Final Answer**\n\\[\n\\boxed{\\frac{1}{2}}\n\\]", r"\frac{1}{2}"),
        ("Answer:\n$$\n\\frac{1}{2}\n$$", r"\frac{1}{2}"),  # the answer on the next lines
        ("\\boxed{5}. ANSWER:", "5"),  # an empty marker is skipped
        ("The solutions are $2$ and $3$. ANSWER: $2$ and $3$", "2, 3"),
        ("Final Answer: The largest $n$ is 34.", "34"),  # the value the sentence asserts, not n
        ("Final Answer: $34$ is the largest value of $n$.", "34"),
        ("Final Answer: The value of $x$ is $\\frac{1}{2}$ here.", r"\frac{1}{2}"),
        ("ANSWER: the smallest x is 7", "7"),
        ("$\\boxed{1}, \\boxed{2}, \\boxed{3}$", "1, 2, 3"),  # boxes listed on one line are one answer
        ("The answer is 5. I checked that the answer is correct.", "5"),  # the phrase's own sentence
        ("the answer is correct", None),  # words after "answer is" are no answer
        ("So the answer is (C).", "(C)"),
        ("the sum is 12", None),
        ("ANSWER:", None),
        ("**73**", None),
        ("", None),
    ],
)
def test_math_final_answer(visible: str, answer: str | None) -> None:
    assert extract(visible) == answer


@pytest.mark.parametrize(
    ("text", "content"),
    [
        (r"\boxed{1}, \boxed{2}, \boxed{3}", "1, 2, 3"),
        (r"$\boxed{1}$ and $\boxed{2}$", "1, 2"),
        (r"\boxed{1} or \boxed{2}", "1, 2"),
        (r"\boxed{1}; \quad \boxed{2}", "1, 2"),
        (r"\boxed{1} then \boxed{2}", "2"),  # a word between: only the last
        ("\\boxed{1},\n\\boxed{2}", "2"),  # a line break between: only the last
        (r"\boxed{\boxed{4}}", "4"),
        (r"\boxed{2} and then \boxed{3", "2"),
        ("no box", None),
    ],
)
def test_final_boxes(text: str, content: str | None) -> None:
    found = final_boxes(text)
    assert (found[1] if found else None) == content


@pytest.mark.parametrize(
    ("visible", "explicit"),
    [("\\boxed{5}", True), ("ANSWER: 5", True), ("#### 5", True), ("The answer is 5.", False), ("5", None)],
)
def test_math_answer_says_whether_the_format_was_followed(visible: str, explicit: bool | None) -> None:
    found = math_answer(visible)
    assert (found.explicit if found else None) == explicit


@pytest.mark.parametrize(
    ("visible", "answer"),
    [
        ("840", "840"),
        ("  **840**  \n", "840"),
        ("We count the ways.\n\n$$\n840\n$$", "840"),
        ("So there are 840 ways.", "840 ways"),
        ("Thus x = 5.", "5"),
        ("Thus $x = 5$.", "x = 5"),
        ("So $x = 5$. Hope this helps!", "x = 5"),
        ("The largest $n$ is $34$.", "34"),
        ("- The total is 12 apples", "12 apples"),
        ("Step 3 is done. Now the rest.", None),
        ("I could not solve it.", None),
        ("", None),
    ],
)
def test_math_flexible_answer(visible: str, answer: str | None) -> None:
    assert math_flexible_answer(visible) == answer


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("  12. ", "12"),
        ("**73**", "73"),
        ("`42`", "42"),
        ("$\\frac{1}{2}$", r"\frac{1}{2}"),
        ("$$x$$", "x"),
        ("\\(x+1\\)", "x+1"),
        ("\\[3\\]", "3"),
        ("\\boxed{\\boxed{4}}", "4"),
        ("\\boxed 4", "4"),
        ("\\(x\\) or \\(y\\)", "\\(x\\) or \\(y\\)"),  # two wrapped parts are not one wrapped answer
        ("The final answer is $5$. I hope it is correct.", "5"),
        ("the probability is $\\frac{1}{2}$.", r"\frac{1}{2}"),
        ("$2$, $3$ or $5$", "2, 3, 5"),
        ("$12", "$12"),  # a lone dollar is currency, left for the math normaliser
        ("5!", "5!"),  # a factorial keeps its "!"
        ("\\frac{3}{4};", r"\frac{3}{4}"),
        ("", ""),
    ],
)
def test_clean_answer(raw: str, cleaned: str) -> None:
    assert clean_answer(raw) == cleaned


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("ANSWER: B", "B"),
        ("answer: a\nANSWER: C ", "C"),
        ("<think>ANSWER: A</think>ANSWER: B", "B"),
        ("<think>ANSWER: A", None),  # cut off while thinking: no answer
        ("no marker", None),
    ],
)
def test_final_answer_for_labels(completion: str, answer: str | None) -> None:
    assert final_answer(completion) == answer


@pytest.mark.parametrize(
    "completion",
    [
        "{" * 2_000_000,
        "\\boxed{" * 300_000,
        "<think>" * 300_000,
        "</think>" * 300_000,
        "ANSWER:" + " " * 2_000_000 + "x",
        "ANSWER: **\n" * 200_000,
        "the answer is " * 200_000,
        "$" * 2_000_000,
    ],
    ids=[
        "braces",
        "open-boxes",
        "think-opens",
        "think-closes",
        "spaces",
        "empty-markers",
        "phrases",
        "dollars",
    ],
)
def test_extraction_is_linear_on_hostile_input(completion: str) -> None:
    start = time.perf_counter()
    visible, _ = split_reasoning(completion)
    extract(visible)
    final_answer(completion)
    assert time.perf_counter() - start < 3.0
