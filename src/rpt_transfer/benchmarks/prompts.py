"""Prompt templates shared by benchmarks of one answer type; a change bumps the benchmarks' versions."""

MATH_PROMPT_V1 = (
    "Solve the following problem. Reason step by step, then give the final answer on the last line "
    "as \\boxed{{ANSWER}}.\n\n{question}"
)
"""Math: the answer format math models are trained on; the math verifier also reads `ANSWER:` lines."""

CHOICE_PROMPT_V1 = (
    "{question}\n\n"
    "Reason step by step if it helps, then give your final answer on the last line as "
    "'ANSWER: <label>', where <label> is exactly one of: {labels}."
)
"""Classification and multiple choice: the item supplies the question text and its accepted labels."""
