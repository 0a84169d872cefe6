"""Choice verifier: one label (a letter, yes/no, a class name) after `ANSWER:`, compared strictly.

Strict means the whole answer must be one label, case-insensitive, optionally wrapped in parentheses or
followed by a period; "A or B" is wrong, never a lucky match.
"""

import re
from collections.abc import Mapping
from typing import Any

from rpt_transfer.scoring.extract import final_answer
from rpt_transfer.scoring.verdict import Verdict

VERSION = "1"
_WRAPPING = re.compile(r"^[\s(\[]*(?P<label>.*?)[\s)\].]*$")


def normalise_label(text: str) -> str:
    """Lower-case label without surrounding brackets, spaces or a trailing period."""
    match = _WRAPPING.match(text)
    return (match.group("label") if match else text).strip().lower()


def verify(completion: str, reference: str, context: Mapping[str, Any] | None = None) -> Verdict:
    """Score a completion whose final answer should be exactly the reference label."""
    answer = final_answer(completion)
    if answer is None:
        return Verdict(0.0, None, "no_answer", "no 'ANSWER:' line")
    return Verdict(float(normalise_label(answer) == normalise_label(reference)), answer)
