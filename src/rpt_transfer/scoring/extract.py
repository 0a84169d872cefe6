"""Final-answer extraction shared by the verifiers: one place decides what counts as "the answer"."""

import re

_ANSWER_LINE = re.compile(r"ANSWER\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


def strip_reasoning(completion: str) -> str:
    """Drop closed `<think>...</think>` blocks, so an answer mentioned while thinking does not count."""
    return _THINK_BLOCK.sub("", completion)


def final_answer(completion: str) -> str | None:
    """The text after the last `ANSWER:` marker, or None when the completion never gives one."""
    matches = _ANSWER_LINE.findall(strip_reasoning(completion))
    return matches[-1].strip() if matches else None
