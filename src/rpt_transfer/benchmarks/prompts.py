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

CODE_FUNCTION_PROMPT_V1 = (
    "{question}\n\n"
    "Write the solution in Python 3. Reason first if it helps, then end your answer with a single "
    "```python fenced code block holding the complete function: its full definition (signature and "
    "body, not only the body) and every import it needs."
)
"""Function tasks (HumanEval, MBPP, BigCodeBench): the code verifier runs the last fenced block."""

CODE_STDIO_PROMPT_V1 = (
    "{question}\n\n"
    "Write the solution in Python 3 as a full program that reads the input from standard input and writes "
    "the answer to standard output. Reason first if it helps, then end your answer with a single ```python "
    "fenced code block holding the complete program."
)
"""Contest tasks judged on stdin/stdout (LiveCodeBench, Codeforces, USACO): the whole program is run."""
