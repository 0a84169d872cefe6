"""Prompt templates shared by benchmarks of one answer type; a change bumps the benchmarks' versions."""

MATH_PROMPT_V1 = (
    "Solve the following problem. Reason step by step, then give the final answer on the last line "
    "as \\boxed{{ANSWER}}.\n\n{question}"
)
"""Math: the answer format math models are trained on; the math verifier also reads `ANSWER:` lines."""
