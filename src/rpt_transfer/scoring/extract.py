r"""Final-answer extraction shared by the verifiers: one place decides what counts as "the answer".

Reasoning first: `split_reasoning` hides `<think>` blocks, so an answer mentioned while thinking never
counts. Then each verifier asks for its answer: `final_answer` (the last `ANSWER:` line, for labels) or
`math_final_answer` (the last `\boxed{}` or answer marker, for math). Everything here is linear in the
length of the completion, so an enormous or adversarial completion cannot stall a scorer.
"""

import re
from typing import NamedTuple

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
PARAGRAPH_LIMIT = 4_000
"""How much text after a marker may be its answer; longer is garbage, and the bound keeps regexes cheap."""
MARKERS_TRIED = 100
"""How many markers, from the last, may be skipped for being empty before we give up."""

_ANSWER_LINE = re.compile(r"ANSWER\s*:\s*(.*)", re.IGNORECASE)  # no lazy `.+?\s*$`: quadratic on long lines
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*")
_BRACE = re.compile(r"(?<!\\)[{}]")
_BARE_BOX_ARG = re.compile(r"[^\s$]+")
# Explicit markers: "ANSWER: 12", "**Final Answer:** 5", and GSM8K's "#### 72" (only before a number, so a
# markdown heading such as "#### Step 2" is not taken for an answer).
_COLON_MARKER = re.compile(
    r"(?<![A-Za-z])(?:final[ \t]+)?answer[ \t]*(?:\*\*)?[ \t]*:|####[ \t]*(?=[-+$\\\d.])", re.IGNORECASE
)
_PHRASE_MARKER = re.compile(r"(?<![A-Za-z])answer[ \t]+is(?![A-Za-z])[ \t]*:?", re.IGNORECASE)
_HOPE = re.compile(r"I hope it is correct\W{0,3}$", re.IGNORECASE)
_LEADING_PHRASE = re.compile(
    r"^(?:(?:the[ \t]+)?(?:final[ \t]+)?answer[ \t]+)?is\b[ \t]*:?[ \t]*", re.IGNORECASE
)
_TRAILING = ".,;:"  # not "!": "5!" is a factorial
_WRAPPERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"), ("`", "`"))
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_MATH_SEGMENT = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$", re.DOTALL)
_JOINERS = re.compile(r"(?:[\s,;]|\band\b|\bor\b)*", re.IGNORECASE)


class Reasoning(NamedTuple):
    """A completion split into what the model showed and whether it stopped while still thinking."""

    visible: str
    """The text outside `<think>` blocks: where a final answer may be."""
    truncated: bool
    """True when a `<think>` was never closed: the completion was cut off while reasoning."""


def split_reasoning(completion: str) -> Reasoning:
    """Hide reasoning blocks so only what the model finally says can be scored.

    Closed `<think>...</think>` blocks are dropped. A `</think>` with no opener before it (the prompt
    opened the block, as DeepSeek-R1's template does) drops everything before it. An unclosed `<think>`
    drops everything after it and marks the completion truncated.
    """
    pieces, position = [], 0
    first_close, first_open = completion.find(THINK_CLOSE), completion.find(THINK_OPEN)
    if first_close != -1 and (first_open == -1 or first_close < first_open):
        position = first_close + len(THINK_CLOSE)
    while True:
        start = completion.find(THINK_OPEN, position)
        if start == -1:
            pieces.append(completion[position:])
            return Reasoning("".join(pieces), truncated=False)
        pieces.append(completion[position:start])
        end = completion.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end == -1:
            return Reasoning("".join(pieces), truncated=True)
        position = end + len(THINK_CLOSE)


def strip_reasoning(completion: str) -> str:
    """The completion without its reasoning, so an answer mentioned while thinking does not count."""
    return split_reasoning(completion).visible


def final_answer(completion: str) -> str | None:
    """The text after the last `ANSWER:` marker, or None when the completion never gives one."""
    matches = _ANSWER_LINE.findall(strip_reasoning(completion))
    return matches[-1].strip() if matches else None


def _box_content(text: str, match: re.Match[str], limit: int) -> str | None:
    r"""The argument of one `\boxed`, or None when its braces do not close before `limit`."""
    start = match.end()
    if start >= len(text) or text[start] != "{":
        bare = _BARE_BOX_ARG.match(text, start)
        return bare.group() if bare else ""
    depth = 0
    for brace in _BRACE.finditer(text, start, limit):
        depth += 1 if brace.group() == "{" else -1
        if depth == 0:
            return text[start + 1 : brace.start()]
    return None


def last_boxed(text: str) -> tuple[int, str] | None:
    r"""Position and content of the last `\boxed{...}` (or `\fbox`) whose braces close.

    Nested braces are balanced; a box cut off before its closing brace is skipped. Each character is
    scanned at most once: a box that does not close makes every box enclosing it fail too, so the
    scan of an earlier box stops where the failed one began.
    """
    limit = len(text)
    for match in reversed(list(_BOX.finditer(text))):
        content = _box_content(text, match, limit)
        if content is None:
            limit = match.start()
        elif content.strip():
            return match.start(), content
    return None


def _text_after(text: str, position: int) -> str:
    r"""The rest of the marker's line, or the next paragraph when the line is empty ("Answer:\n$$x$$")."""
    line_end = text.find("\n", position)
    line = text[position : len(text) if line_end == -1 else line_end][:PARAGRAPH_LIMIT]
    if line.strip() or line_end == -1:
        return line
    rest = text[line_end : line_end + PARAGRAPH_LIMIT].lstrip()
    paragraph_end = rest.find("\n\n")
    return rest if paragraph_end == -1 else rest[:paragraph_end]


def _last_marked(text: str, marker: re.Pattern[str]) -> tuple[int, str] | None:
    """Position and text of the last marker followed by something."""
    for match in list(marker.finditer(text))[::-1][:MARKERS_TRIED]:
        content = _text_after(text, match.end())
        if clean_answer(content):
            return match.start(), content
    return None


def math_final_answer(visible: str) -> str | None:
    r"""The raw final answer of a math completion (reasoning already hidden), or None.

    Explicit answers come first: the last `\boxed{}`/`\fbox{}` or `ANSWER:` / `Final Answer:` /
    `#### ` marker, whichever starts last (so "ANSWER: \boxed{5}" gives the box, and a box written
    while working that is followed by "ANSWER: 7" gives 7). Only without one of those does a phrase
    "the answer is ..." count, since that phrase also appears in chatty text after a boxed answer.
    """
    explicit = [found for found in (last_boxed(visible), _last_marked(visible, _COLON_MARKER)) if found]
    if explicit:
        return max(explicit)[1]
    phrase = _last_marked(visible, _PHRASE_MARKER)
    return phrase[1] if phrase else None


def _unwrap(text: str) -> str:
    r"""Remove one layer of delimiters that wrap the whole text (`$..$`, `\(..\)`, a whole box)."""
    for opener, closer in _WRAPPERS:
        if len(text) > len(opener) + len(closer) and text.startswith(opener) and text.endswith(closer):
            inner = text[len(opener) : -len(closer)]
            if opener not in inner and closer not in inner:  # "$a$ and $b$" is not one wrapped answer
                return inner
    boxed = _BOX.match(text)
    if boxed:
        content = _box_content(text, boxed, len(text))
        braces = 2 if text.startswith("{", boxed.end()) else 0
        if content is not None and boxed.end() + len(content) + braces == len(text):
            return content
    return text


def _strip_once(text: str) -> str:
    """One round of removing what surrounds an answer: spaces, bold, a trailing period, wrappers."""
    text = _HOPE.sub("", text.strip()).strip().strip("*").strip()
    text = _LEADING_PHRASE.sub("", text)
    return _unwrap(text.rstrip(_TRAILING).rstrip())


def clean_answer(raw: str) -> str:
    r"""The answer without what models put around it.

    Removes surrounding spaces, markdown bold, a trailing period or comma, Minerva's "I hope it is
    correct.", a leading "The final answer is", and `$...$`, `$$...$$`, `\(...\)`, `\[...\]` or
    `\boxed{}` wrapping the whole answer. When words and math are mixed ("the probability is
    $\frac{1}{2}$."), the last `$...$` segment is the answer, unless only commas, "and" or "or" join
    the segments ("$2$ and $3$" is the list "2, 3"). A lone `$` is a currency sign and stays.
    """
    text = raw
    for _ in range(8):  # wrappers nest at most a few deep; the bound keeps hostile input cheap
        cleaned = _strip_once(text)
        if cleaned == text:
            break
        text = cleaned
    dollars = len(_UNESCAPED_DOLLAR.findall(text))
    if dollars >= 2 and dollars % 2 == 0:
        segments = ["".join(groups) for groups in _MATH_SEGMENT.findall(text)]
        if segments and _JOINERS.fullmatch(_MATH_SEGMENT.sub("", text)):
            return ", ".join(clean_answer(segment) for segment in segments)
        if segments:
            return clean_answer(segments[-1])
    return text
