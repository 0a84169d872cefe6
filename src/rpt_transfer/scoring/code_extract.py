"""Which part of a completion is the program: one rule for every code benchmark.

The rule, applied after dropping closed `<think>...</think>` blocks:

1. If the text has at least one complete Markdown code fence (three or more backticks or tildes at the
   start of a line, an optional language tag such as `python`, the code, a matching closing fence), the
   program is the body of the LAST complete fenced block. Earlier blocks are drafts or examples.
2. Else, if a fence was opened but never closed (the generation hit its token limit), the program is
   everything after that opening fence line.
3. Else (no fence at all, e.g. a base model continuing a function body) the program is the whole text.

The language tag is ignored: a model that labels Python as `py`, `python3` or nothing is not penalised,
and the last block is what the model offered last. Trailing whitespace is stripped; leading indentation
is kept, because a body continuation is indented.
"""

import re

from rpt_transfer.scoring.extract import strip_reasoning

_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<tag>[^\n`]*)$", re.MULTILINE)


def extract_code(completion: str) -> str:
    """The program in `completion` by the module's rule; "" when there is none."""
    text = strip_reasoning(completion)
    blocks, unclosed = _fenced_blocks(text)
    if blocks:
        return blocks[-1].rstrip()
    if unclosed is not None:
        return unclosed.rstrip()
    return text.rstrip()


def _fenced_blocks(text: str) -> tuple[list[str], str | None]:
    """Bodies of complete fenced blocks, and the body after a final fence that was never closed."""
    blocks: list[str] = []
    opening: re.Match[str] | None = None
    for match in _FENCE.finditer(text):
        if opening is None:
            opening = match
            continue
        fence, closing = opening.group("fence"), match.group("fence")
        if closing[0] == fence[0] and len(closing) >= len(fence) and not match.group("tag").strip():
            blocks.append(text[opening.end() + 1 : match.start()])
            opening = None
    unclosed = text[opening.end() + 1 :] if opening is not None else None
    return blocks, unclosed
