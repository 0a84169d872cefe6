r"""Choice verifier (multiple choice, yes/no, class labels): a strict and a flexible verdict per completion.

Reinforcement post-training changes how models write answers as much as what they answer, so each
completion gets two verdicts (docs/scoring-policies.md); the item's `metadata["choices"]` (a list of
[label, text] pairs in the order the prompt lists them) tells the flexible policy what the options are.

**Strict** (the prompt's stated format; what RL rewards use): the text after the last `ANSWER:` must be
exactly one label, case-insensitive, optionally in brackets or followed by a period. `ANSWER: (b).` is B;
`ANSWER: A or B`, `ANSWER: **B**` and `so the answer is B.` are not (the last is `no_answer`).
`format_followed` is true when strict read one of the item's labels (without choices: any one-word answer).

**Flexible** (the final answer wherever a careful human grader would look), with `<think>` blocks removed:
1. the last `ANSWER:` line ("Final answer: **yes**", "ANSWER: B. London is ..."); a line that is only the
   format's placeholder (`ANSWER: <label>`) is skipped;
2. else the last `\boxed{}` or bold `**Answer**:` marker, whichever comes last;
3. else the last phrase "the answer is", "the correct option/choice is", "I choose": "so the answer is
   B.", "the answer is (D).", "The correct option is B since ...";
4. else the final line, or its final sentence, when it is only an option ("Therefore, B.", "**B**", "Yes."),
   unless the line before it is only another option (a list of the options is no answer).
What a step finds is the answer, even when it names no option (then it is wrong), unless a later step finds
an answer stated after it that names one: "ANSWER: not sure\nThe answer is B." is B.
What was read names one option when it is, after markdown, LaTeX wrappers, brackets, a trailing period and
a leading "option"/"the answer is" are removed: the option's label; its letter by position when the labels
are not letters (PubMedQA lists yes, no, maybe, so "A" means yes); its text ("ANSWER: London" for B); a
letter with its own text ("B) London", "B (London)"); or one of these followed by a reason ("yes, because
..."). Anything else is wrong, never a lucky match: "A or B", "not B", "A, B", "probably B", "B) Paris"
when B is London. Flexible is correct whenever strict is. Every step is linear in the completion's length.
"""

import functools
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from rpt_transfer.scoring.extract import final_answer, split_reasoning
from rpt_transfer.scoring.verdict import Verdict

VERSION = "2"
SPAN_LIMIT = 1_000
"""Longest text that can name one option; longer is not an answer, and the bound keeps hostile input cheap."""
MARKERS_TRIED = 100
"""How many markers, from the last, may be skipped for being empty before giving up."""

_WRAPPING = re.compile(r"^[\s(\[]*(?P<label>.*?)[\s)\].]*$")
_ANSWER_LINE = re.compile(r"ANSWER\s*:[ \t]*", re.IGNORECASE)  # as strict reads it (extract.final_answer)
_PLACEHOLDER = re.compile(r"<[^<>]*>\W*")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOLD_MARKER = re.compile(r"(?<![A-Za-z])(?:final[ \t]+)?answer[ \t]*(?:\*\*|__)[ \t]*:", re.IGNORECASE)
_PHRASE = re.compile(
    r"(?<![A-Za-z])(?:answer|(?:correct|right|best)[ \t]+(?:option|choice|label))[ \t]+"
    r"(?:is|would[ \t]+be|will[ \t]+be|should[ \t]+be|must[ \t]+be)(?![A-Za-z])[ \t]*:?"
    r"|(?<![A-Za-z])I(?:[ \t]+(?:would|will)|'d|'ll)?[ \t]+(?:choose|go[ \t]+with)(?![A-Za-z])",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_LATEX_WRAPPER = re.compile(r"^\\(?:boxed|fbox|text|textbf|mathrm|mathbf|mathit|textit|texttt)\s*\{(.*)\}$")
_MATH_WRAPPER = re.compile(r"^(?:\$\$(.*)\$\$|\$(.*)\$|\\\((.*)\\\)|\\\[(.*)\\\])$", re.DOTALL)
_BRACKETED = re.compile(r"^[(\[{]([^()\[\]{}]*)[)\]}]$")
_LEADING = re.compile(
    r"^(?:(?:so|thus|therefore|hence|overall|finally|in[ \t]+conclusion)(?![a-z])[\s,:]*)?"
    r"(?:(?:(?:the|my|our)[ \t]+)?(?:(?:final|correct|right|best)[ \t]+)?"
    r"(?:answer|option|choice|letter|label)(?:[ \t]+(?:is|would[ \t]+be))?(?![a-z])[ \t]*[:\-]?[ \t]*)?"
)
_AFFIRMED = re.compile(
    r"[ \t]+is[ \t]+(?:the[ \t]+)?(?:correct|right|best)(?:[ \t]+(?:answer|option|choice))?$"
)
_REASON = re.compile(
    r"[\s,;:]+(?:because|since|as|given|due[ \t]+to|which|considering)(?![a-z])"
    r"|[ \t]*\((?:because|since|as)(?![a-z])"
)
_ASIDE = re.compile(r",|[ \t]+[-–—][ \t]+")
_PAIR = re.compile(r"^[(\[]?(?P<head>[^\s()\[\].:,;]+)[)\]]?[ \t]*(?:[.:,;\-–—][ \t]*)?(?P<rest>\S.*)$")
_PUNCTUATION = ".,;:!?"
_MARKDOWN = "*_`\"'“”‘’ \t\n"


class Options(NamedTuple):
    """An item's options as the flexible policy matches them."""

    labels: tuple[str, ...]
    """Labels in the order the prompt lists them."""
    by_label: dict[str, int]
    """Normalised label (strict's normalisation) -> option index."""
    by_text: dict[str, int]
    """Normalised option text -> option index, for texts that name one option only."""
    by_letter: bool
    """Whether letters name options by position (A = first): true when the labels are not letters."""
    known: bool
    """Whether the item's choices were given; without them only the reference is known."""


def normalise_label(text: str) -> str:
    """Lower-case label without surrounding brackets, spaces or a trailing period (the strict policy)."""
    match = _WRAPPING.match(text)
    return (match.group("label") if match else text).strip().lower()


def verify(completion: str, reference: str, context: Mapping[str, Any] | None = None) -> Verdict:
    """Score a completion against the reference label under the strict and the flexible policy."""
    options = options_of(context, reference)
    gold = normalise_label(reference)
    answer = final_answer(completion)
    if answer is None:
        strict = Verdict(0.0, None, "no_answer", "no 'ANSWER:' line")
        followed = False
    else:
        strict = Verdict(float(normalise_label(answer) == gold), answer)
        followed = _is_label(normalise_label(answer), options)
    index, read = flexible_answer(split_reasoning(completion).visible, options)
    flexible = index is not None and normalise_label(options.labels[index]) == gold
    if strict.correct and not flexible:  # only when the reference is not among the item's choices
        flexible, index, read = True, None, reference
    label = options.labels[index] if index is not None else read
    return strict._replace(flexible=float(flexible), flexible_extracted=label, format_followed=followed)


def options_of(context: Mapping[str, Any] | None, reference: str) -> Options:
    """The item's options from `context["choices"]`; without them, the reference is the only label known."""
    choices = (context or {}).get("choices")
    if choices is None:
        return Options((reference,), {normalise_label(reference): 0}, {}, by_letter=False, known=False)
    try:
        options = _options(tuple(tuple(pair) for pair in choices)) if not isinstance(choices, str) else None
    except TypeError:  # not a list of lists, or unhashable parts
        options = None
    if options is None:
        raise ValueError(
            f"metadata['choices'] must be a non-empty list of [label, text] pairs, got {choices!r}"
        )
    return options


@functools.lru_cache(maxsize=4096)
def _options(choices: tuple[tuple[Any, ...], ...]) -> Options | None:
    """Options built once per distinct choice list (a benchmark repeats a few); None when malformed."""
    if not choices or not all(
        len(pair) == 2 and all(isinstance(part, str) for part in pair) for pair in choices
    ):
        return None
    labels = tuple(label for label, _ in choices)
    by_label: dict[str, int] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(normalise_label(label), index)
    texts: dict[str, list[int]] = {}
    for index, (_, text) in enumerate(choices):
        texts.setdefault(_plain(text), []).append(index)
    by_text = {text: found[0] for text, found in texts.items() if len(found) == 1 and text}
    by_letter = not all(re.fullmatch(r"[a-z]", key) for key in by_label)
    return Options(labels, by_label, by_text, by_letter, known=True)


def _is_label(answer: str, options: Options) -> bool:
    """Whether strict's reading is one of the labels (without the choices, any one-word answer)."""
    if not options.known:
        return re.fullmatch(r"[\w'-]+", answer) is not None
    return answer in options.by_label


def flexible_answer(visible: str, options: Options) -> tuple[int | None, str | None]:
    """The option the flexible policy reads (None if none) and the text it read (None if it found none)."""
    return _read(visible, options, 0)


def _read(text: str, options: Options, stage: int) -> tuple[int | None, str | None]:
    """Steps `stage`..4 of the flexible policy on `text`.

    A candidate that names no one option is the answer, and a wrong one, unless an answer of a later step
    stated after it names one (the model went on to commit). Each stage finds the last candidate of its
    kind, so the text after it holds none of that kind: at most four scans of the text.
    """
    for position in range(stage, len(_STAGES)):
        found = _STAGES[position](text)
        if found is not None:
            span, end = found
            index = resolve(span, options)
            if index is not None:
                return index, span.strip()
            later = _read(text[end:], options, position + 1)
            return later if later[0] is not None else (None, span.strip())
    return _final_option(text, options)


def _last_answer_line(text: str) -> tuple[str, int] | None:
    """Text after the last `ANSWER:` with something other than the format's placeholder, and where it ends."""
    for match in list(_ANSWER_LINE.finditer(text))[::-1][:MARKERS_TRIED]:
        span, end = _text_after(text, match.end())
        if span.strip(_MARKDOWN) and not _PLACEHOLDER.fullmatch(span.strip()):
            return span, end
    return None


def _explicit_marker(text: str) -> tuple[str, int] | None:
    r"""Content of the last `\boxed{}` or text after the last bold `**Answer**:`, whichever is last."""
    found = [hit for hit in (_last_box(text), _last_marked(text, _BOLD_MARKER)) if hit is not None]
    return max(found)[1:] if found else None


def _last_phrase(text: str) -> tuple[str, int] | None:
    """The text after the last answer phrase ("the answer is") and where it ends."""
    found = _last_marked(text, _PHRASE)
    return found[1:] if found else None


def _last_box(text: str) -> tuple[int, str, int] | None:
    r"""Start, content and end of the last `\boxed{...}` that closes within SPAN_LIMIT characters."""
    for match in list(_BOX.finditer(text))[::-1][:MARKERS_TRIED]:
        depth, start = 1, match.end()
        for position in range(start, min(len(text), start + SPAN_LIMIT)):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            if depth == 0:
                if text[start:position].strip():
                    return match.start(), text[start:position], position + 1
                break
    return None


def _last_marked(text: str, marker: re.Pattern[str]) -> tuple[int, str, int] | None:
    """Start of the last marker followed by something, the text after it, and where that text ends."""
    for match in list(marker.finditer(text))[::-1][:MARKERS_TRIED]:
        span, end = _text_after(text, match.end())
        if span.strip(_MARKDOWN):
            return match.start(), span, end
    return None


def _text_after(text: str, position: int) -> tuple[str, int]:
    """The rest of the marker's line, or the next non-empty line when it is empty; at most SPAN_LIMIT."""
    limit = min(len(text), position + SPAN_LIMIT)
    end = text.find("\n", position, limit)
    end = limit if end == -1 else end
    if text[position:end].strip(_MARKDOWN) or end == limit:
        return text[position:end], end
    start = end + 1
    while start < limit:
        end = text.find("\n", start, limit)
        end = limit if end == -1 else end
        if text[start:end].strip():
            return text[start:end], end
        start = end + 1
    return "", limit


_STAGES = (_last_answer_line, _explicit_marker, _last_phrase)
"""Steps 1-3 of the flexible policy, in order; step 4 (the final line) closes `_read`."""


def _final_option(text: str, options: Options) -> tuple[int | None, str | None]:
    """Step 4: the last line, or its last sentence, when it is only an option.

    Not when the line before it is only another option: that is a list of the options, not an answer.
    """
    stripped = text.rstrip()
    start = stripped.rfind("\n") + 1
    line = stripped[start:]
    sentences = [sentence for sentence in _SENTENCE_END.split(line[-SPAN_LIMIT:]) if sentence.strip()]
    for span in ([line] if len(line) <= SPAN_LIMIT else []) + sentences[-1:]:
        index = resolve(span, options, reasons=False)
        if index is not None:
            before = stripped[max(0, start - SPAN_LIMIT) : start].rstrip()
            previous = resolve(before[before.rfind("\n") + 1 :], options, reasons=False) if before else None
            return (index, span.strip()) if previous in (None, index) else (None, None)
    return None, None


def resolve(span: str, options: Options, reasons: bool = True) -> int | None:
    """The one option a piece of answer text names, or None when it names none or hedges between several.

    With `reasons`, the option may be followed by a reason: any after "because", "since", "as" ...; one that
    names no other option after a comma or dash ("yes, the trial shows ...", not "B - Paris" when Paris is
    A). Without, the text must be only the option (the final-line step).
    """
    if normalise_label(span) in options.by_label:
        return options.by_label[normalise_label(span)]
    text = _clean(span)
    found = _one_option(text, options)  # the whole text first: an option's text may hold sentences
    if found is None:
        text = _clean(_SENTENCE_END.split(span.strip(), maxsplit=1)[0])
        found = _one_option(text, options)
    if found is not None or not reasons:
        return found
    head = _REASON.split(text, maxsplit=1)[0]
    if head != text:
        return _one_option(_clean(head), options)
    aside = _ASIDE.search(text)
    found = _one_option(_clean(text[: aside.start()]), options) if aside else None
    return found if found is not None and not _names_another(text[aside.end() :], found, options) else None


def _names_another(text: str, index: int, options: Options) -> bool:
    """Whether `text` names an option other than `index`, by its label or its text."""
    words = re.findall(r"[\w'-]+", text)
    if any(options.by_label.get(word, index) != index for word in words):
        return True
    return any(
        other != index and re.search(rf"(?<!\w){re.escape(option)}(?!\w)", text)
        for option, other in options.by_text.items()
    )


def _one_option(text: str, options: Options) -> int | None:
    """The option all of `text` names: a label, a letter, a text, or a letter (or label) with its text."""
    found = _single(text, options)
    if found is not None:
        return found
    affirmed = _AFFIRMED.sub("", text)
    if affirmed != text:
        return _single(_clean(affirmed), options)
    pair = _PAIR.match(text)
    if pair is None:
        return None
    head, rest = _single(pair["head"], options), _single(_clean(pair["rest"]), options)
    return head if head is not None and head == rest else None


def _single(text: str, options: Options) -> int | None:
    """The option `text` names on its own: its label, its text, or its letter by position."""
    if text in options.by_label:
        return options.by_label[text]
    if text in options.by_text:
        return options.by_text[text]
    if options.by_letter and len(text) == 1 and "a" <= text <= "z":
        index = ord(text) - ord("a")
        return index if index < len(options.labels) else None
    return None


def _clean(text: str) -> str:
    r"""Lower-case answer text without markdown, LaTeX or bracket wrappers, and "option"/"the answer is"."""
    text = " ".join(text.split()).lower()
    for _ in range(8):  # wrappers nest at most a few deep; the bound keeps hostile input cheap
        before = text
        text = text.strip(_MARKDOWN).rstrip(_PUNCTUATION).strip(_MARKDOWN)
        for pattern in (_LATEX_WRAPPER, _MATH_WRAPPER, _BRACKETED):
            match = pattern.match(text)
            if match:
                text = next(group for group in match.groups() if group is not None)
        text = _LEADING.sub("", text, count=1)
        if text == before:
            break
    return text.strip()


def _plain(text: str) -> str:
    """An option text as answers are compared with it: lower-case, single spaces, no trailing period."""
    return " ".join(text.split()).lower().strip(_MARKDOWN).rstrip(_PUNCTUATION).strip()
