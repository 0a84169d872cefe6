"""Which part of a completion is the program, under the strict and the flexible policy.

Both policies first drop `<think>` reasoning (`extract.strip_reasoning`).

**Strict** (the benchmark's stated format; one rule for every code benchmark, as before):

1. If the text has at least one complete Markdown code fence (three or more backticks or tildes at the
   start of a line, an optional language tag such as `python`, the code, a matching closing fence), the
   program is the body of the LAST complete fenced block. Earlier blocks are drafts or examples.
2. Else, if a fence was opened but never closed (the generation hit its token limit), the program is
   everything after that opening fence line.
3. Else (no fence at all, e.g. a base model continuing a function body) the program is the whole text.

The language tag is ignored: a model that labels Python as `py`, `python3` or nothing is not penalised,
and the last block is what the model offered last. Trailing whitespace is stripped; leading indentation
is kept, because a body continuation is indented.

**Format followed**: the prompts ask to end with a ```python block, so the format counts as followed when
the strict program is the last complete fenced block and its tag is a Python tag (`PYTHON_TAGS`).

**Flexible** (where a careful human grader would look when the last block is not the program): the last
complete fenced block, tagged Python or not at all, that holds what the scorer says the program must
have (the entry point's `def f(` or `class Solution` at top level; for a stdin/stdout program, a read of
standard input); else the last block tagged Python, else the last untagged one (`text`, `bash` or
output blocks are skipped). Without any fence, leading prose is dropped up to the first line that looks
like Python (indented, a keyword such as `def`, `for` or `import`, an assignment or a call), and
trailing prose from the first line after it that does not. The verifier counts a flexible pass when
either program passes, so flexible is never below strict.
"""

import re
from typing import NamedTuple

from rpt_transfer.scoring.extract import strip_reasoning

PYTHON_TAGS = frozenset({"python", "python3", "py", "py3"})
"""Fence tags (first word, any case) that label a block as Python."""
_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<tag>[^\n`]*)$", re.MULTILINE)
_CODE_LINE = re.compile(
    r"""[ \t#)\]}"'*@]|$"""
    r"|(?:async|await|def|class|import|from|if|elif|else|for|while|try|except|finally|with|return|raise"
    r"|print|assert|pass|global|nonlocal|del|yield|lambda|not|match|case)\b"
    r"|[\w.]+(?:[ \t]*,[ \t]*\*?[\w.]+)*[ \t]*(?:[-+*/%&|^@]|//|\*\*|>>|<<)?=(?!=)"
    r"|[\w.]+[ \t]*[(\[]"
)
"""A line that continues Python code rather than prose (unfenced flexible extraction)."""


class Code(NamedTuple):
    """The strict program of a completion and whether it came in the stated ```python block."""

    program: str
    format_followed: bool


def extract_code(completion: str) -> str:
    """The strict program in `completion`; "" when there is none."""
    return strict_code(completion).program


def strict_code(completion: str) -> Code:
    """The strict program (module rule) and whether it was the last fenced block with a Python tag."""
    text = strip_reasoning(completion)
    blocks, unclosed = _fenced_blocks(text)
    if blocks:
        tag, body = blocks[-1]
        return Code(body.rstrip(), _is_python(tag))
    if unclosed is not None:
        return Code(unclosed.rstrip(), False)
    return Code(text.rstrip(), False)


def flexible_code(completion: str, defines: str | None = None) -> str:
    """The flexible program (module rule); `defines` is a regex (multiline) for what the program must hold."""
    text = strip_reasoning(completion)
    blocks, unclosed = _fenced_blocks(text)
    if blocks:
        tagged = [body for tag, body in blocks if _is_python(tag)]
        untagged = [body for tag, body in blocks if not tag]
        if defines is not None:
            pattern = re.compile(defines, re.MULTILINE)
            defining = [body for tag, body in blocks if (not tag or _is_python(tag)) and pattern.search(body)]
            if defining:
                return defining[-1].rstrip()
        python = tagged or untagged
        return (python[-1] if python else blocks[-1][1]).rstrip()
    if unclosed is not None:
        return unclosed.rstrip()
    return _without_prose(text).rstrip()


def _is_python(tag: str) -> bool:
    words = tag.split()
    return bool(words) and words[0].lower() in PYTHON_TAGS


def _without_prose(text: str) -> str:
    """Unfenced text from its first line of code up to the prose that follows the code, if any."""
    lines = text.split("\n")
    first = next((index for index, line in enumerate(lines) if line.strip() and _CODE_LINE.match(line)), None)
    if first is None:  # no line looks like code: nothing better than the whole text
        return text
    kept = [lines[first]]
    for line in lines[first + 1 :]:
        if line.strip() and not _CODE_LINE.match(line):
            break
        kept.append(line)
    return "\n".join(kept)


def _fenced_blocks(text: str) -> tuple[list[tuple[str, str]], str | None]:
    """(tag, body) of complete fenced blocks, and the body after a final fence that was never closed."""
    blocks: list[tuple[str, str]] = []
    opening: re.Match[str] | None = None
    for match in _FENCE.finditer(text):
        if opening is None:
            opening = match
            continue
        fence, closing = opening.group("fence"), match.group("fence")
        if closing[0] == fence[0] and len(closing) >= len(fence) and not match.group("tag").strip():
            blocks.append((opening.group("tag").strip(), text[opening.end() + 1 : match.start()]))
            opening = None
    unclosed = text[opening.end() + 1 :] if opening is not None else None
    return blocks, unclosed
