r"""Final-answer extraction shared by the verifiers: one place decides what counts as "the answer".

Reasoning first: `split_reasoning` hides `<think>` blocks, so an answer mentioned while thinking never
counts. Then each verifier asks for its answer: `final_answer` (the last `ANSWER:` line, for labels),
`math_answer` / `math_final_answer` (the last `\boxed{}` or answer marker, for math: the strict policy) or
`math_flexible_answer` (the final line or sentence when there is no marker: the flexible policy).
Everything here is linear in the length of the completion, so an enormous or adversarial completion
cannot stall a scorer.
"""

import itertools
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
# What may stand between boxes of one listed answer ("$\boxed{1}$, $\boxed{2}$ and $\boxed{3}$"); no
# newline and no other word, so a box written while working and the final one never merge.
_BOX_GAP = re.compile(
    r"(?:[ \t,;$]|\\[()]|\\q?quad|\\[,;]|\\text\{\s*(?:and|or|,)?\s*\}|\band\b|\bor\b)*",
    re.IGNORECASE,
)
BOX_GAP_LIMIT = 80
"""A longer gap between two boxes is prose, not a list separator (and the bound keeps the check cheap)."""
# A sentence asserts its answer after a copula: "The largest $n$ is 34." ("=" only outside math).
_COPULA = re.compile(r"(?<![A-Za-z\\])(?:is|are|was|were|equals|be)(?![A-Za-z])|=", re.IGNORECASE)
_WORD_COPULA = re.compile(r"(?<![A-Za-z\\])(?:is|are|was|were|equals)(?![A-Za-z])", re.IGNORECASE)
_VARIABLE = re.compile(r"\s*[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?'?\s*")
"""A bare variable name (`n`, `x_1`): what a sentence is about, not its value."""
_VALUE_MARK = re.compile(r"[\d\\]")
_PROSE_WORD = re.compile(r"[A-Za-z]{2,}")
_LATEX_TEXT = re.compile(
    r"\\(?:text|mathrm|textbf|mbox|operatorname|begin|end|mathbf|mathit)\s*\{[^{}]*\}|\\[A-Za-z]+"
)
"""LaTeX commands, environment names and `\\text{}` units: not prose, when telling a value from a sentence."""
_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)")
_NEXT_SENTENCE = re.compile(r"[.?]\s+(?=[A-Z])")
SENTENCES_TRIED = 3
"""How many sentences, from the last, the flexible policy reads for an asserted value."""
_LIST_ITEM = re.compile(r"^\s*(?:[-*>]|#+|\d+[.)](?=\s))\s*")


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


def final_boxes(text: str) -> tuple[int, str] | None:
    r"""Like `last_boxed`, but boxes that end the text as one list ("\boxed{1}, \boxed{2}") come as "1, 2".

    Boxes joined only by commas, "and"/"or", spaces or math delimiters on one line are one answer
    written box by box; any other word or a line break between them leaves only the last box.
    """
    found = last_boxed(text)
    if found is None:
        return None
    start, contents = found[0], [found[1]]
    matches = list(_BOX.finditer(text, max(0, start - 100 * BOX_GAP_LIMIT), start))
    for match in reversed(matches):
        content = _box_content(text, match, start)
        if content is None or not content.strip():
            break
        end = match.end() + len(content) + (2 if text.startswith("{", match.end()) else 0)
        if start - end > BOX_GAP_LIMIT or not _BOX_GAP.fullmatch(text, end, start):
            break
        start = match.start()
        contents.append(content)
    return start, ", ".join(reversed(contents))


def _first_sentence(content: str) -> str:
    """The answer's own sentence: "5. I checked: the answer is correct." is "5." (not inside `$...$`)."""
    masked = _MATH_SEGMENT.sub(lambda match: "#" * len(match.group()), content)
    end = _NEXT_SENTENCE.search(masked)
    return content[: end.start() + 1] if end else content


def _words_only(content: str) -> bool:
    """Whether a phrase's content is words with no number or math ("correct", "consistent with ...")."""
    cleaned = clean_answer(content)
    return not _VALUE_MARK.search(content) and "$" not in content and bool(_PROSE_WORD.search(cleaned))


def _last_marked(text: str, marker: re.Pattern[str], *, words_ok: bool = True) -> tuple[int, str] | None:
    """Position and text of the last marker followed by something (by a value, unless `words_ok`)."""
    for match in list(marker.finditer(text))[::-1][:MARKERS_TRIED]:
        content = _first_sentence(_text_after(text, match.end()))
        if clean_answer(content) and (words_ok or not _words_only(content)):
            return match.start(), content
    return None


class MathAnswer(NamedTuple):
    """The raw final answer the strict policy found, and how it was marked."""

    raw: str
    explicit: bool
    r"""True for a `\boxed{}` or answer marker (the stated format); False for an "answer is" phrase."""


def math_answer(visible: str) -> MathAnswer | None:
    r"""The raw final answer of a math completion under the strict policy (reasoning hidden), or None.

    Explicit answers come first: the last `\boxed{}`/`\fbox{}` (with the boxes listed just before it
    on its line, `final_boxes`) or `ANSWER:` / `Final Answer:` / `#### ` marker, whichever starts last
    (so "ANSWER: \boxed{5}" gives the box, and a box written while working that is followed by
    "ANSWER: 7" gives 7). Only without one of those does a phrase "the answer is ..." count, since that
    phrase also appears in chatty text after a boxed answer; and only before a value ("the answer is
    correct" is no answer).
    """
    explicit = [found for found in (final_boxes(visible), _last_marked(visible, _COLON_MARKER)) if found]
    if explicit:
        return MathAnswer(max(explicit)[1], explicit=True)
    phrase = _last_marked(visible, _PHRASE_MARKER, words_ok=False)
    return MathAnswer(phrase[1], explicit=False) if phrase else None


def math_final_answer(visible: str) -> str | None:
    """The raw final answer under the strict policy (see `math_answer`), or None."""
    found = math_answer(visible)
    return found.raw if found else None


def _is_value(text: str) -> bool:
    r"""Whether cleaned text is a bare value: math or a number, no prose words (`\text{}` allowed)."""
    if not text or len(text) > PARAGRAPH_LIMIT:
        return False
    return not _PROSE_WORD.search(_LATEX_TEXT.sub(" ", text)) and any(ch.isalnum() for ch in text)


def _asserted(sentence: str) -> str | None:
    """The value a sentence asserts after its last copula ("So there are 840 ways." -> "840 ways")."""
    masked = _MATH_SEGMENT.sub(lambda match: "#" * len(match.group()), sentence)
    copulas = list(_COPULA.finditer(masked))
    if not copulas:
        return None
    tail = sentence[copulas[-1].end() :]
    cleaned = clean_answer(tail)
    return cleaned if cleaned and _VALUE_MARK.search(cleaned) else None


def _sentences(line: str) -> list[str]:
    """The sentences of one line, last first (a period inside `$...$` or a decimal does not end one)."""
    masked = _MATH_SEGMENT.sub(lambda match: "#" * len(match.group()), line)
    ends = [0, *(match.end() for match in _SENTENCE_END.finditer(masked))]
    if ends[-1] < len(line):
        ends.append(len(line))
    pieces = [line[start:end] for start, end in itertools.pairwise(ends)]
    return [piece for piece in reversed(pieces) if piece.strip()][:SENTENCES_TRIED]


def math_flexible_answer(visible: str) -> str | None:
    r"""Where a careful grader finds a final answer that has no box or marker (reasoning already hidden).

    The last paragraph or the last line when it is a bare value (a completion that is only "840",
    "$$x = 5$$"); else, in the last line's final sentences, the value asserted after the last "is",
    "are", "equals" or "=" ("So there are 840 ways." gives "840 ways", "Thus x = 5." gives "5").
    Only the end of the completion is read, so this stays linear.
    """
    text = visible[-PARAGRAPH_LIMIT:].rstrip()
    if not text.strip():
        return None
    paragraph = text[text.rfind("\n\n") + 1 :]
    line = _LIST_ITEM.sub("", text[text.rfind("\n") + 1 :])
    for block in (paragraph, line):
        cleaned = clean_answer(block)
        if _is_value(cleaned):
            return cleaned
    for sentence in _sentences(line):
        found = _asserted(sentence)
        if found:
            return found
    return None


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
            return _sentence_value(text, segments)
    elif "\\" not in text and "{" not in text:
        copulas = list(_WORD_COPULA.finditer(text))
        if copulas and _VALUE_MARK.search(text[copulas[-1].end() :]):
            return clean_answer(text[copulas[-1].end() :])
    return text


def _sentence_value(text: str, segments: list[str]) -> str:
    """The answer of a sentence mixing words and math ("The largest $n$ is 34." gives 34, not n).

    What follows the last copula when that holds a value, else the last math segment that is not a
    bare variable.
    """
    masked = _MATH_SEGMENT.sub(lambda match: "#" * len(match.group()), text)
    copulas = list(_COPULA.finditer(masked))
    if copulas:
        tail = text[copulas[-1].end() :]
        tail_segments = _MATH_SEGMENT.findall(tail)
        valued = any(not _VARIABLE.fullmatch("".join(groups)) for groups in tail_segments)
        if valued or _VALUE_MARK.search(_MATH_SEGMENT.sub("", tail)):
            return clean_answer(tail)
    values = [segment for segment in segments if not _VARIABLE.fullmatch(segment)]
    return clean_answer((values or segments)[-1])
