r"""Math verifier: the final answer of a completion, checked for equivalence with math-verify.

How a completion is scored, in order:

1. Unusable input (not text, over `MAX_COMPLETION_CHARS`) is `parse_error`.
2. Reasoning is hidden (`extract.split_reasoning`). A completion that ends inside an unclosed
   `<think>` is `truncated`: it never gave its answer.
3. The final answer is the last `\boxed{}` / `ANSWER:` / `Final Answer:` / `#### `, else the last
   "the answer is ..." (`extract.math_final_answer`), cleaned of wrappers (`extract.clean_answer`).
   None found is `no_answer`, or `truncated` when the caller says generation hit its length limit
   (`finish_reason="length"`). An answer over `MAX_ANSWER_CHARS` or with control characters or lone
   surrogates is `parse_error`.
4. Answer and reference are normalised alike (`normalise`): Unicode math to LaTeX, LaTeX thousands
   separators (`10{,}080`, `10,\!080`), a currency sign, a number in a sentence ("18 dollars").
5. Two plain decimal numbers are compared exactly, in process ("1,234" = "1234.0", "025" = "25",
   "25" != "5"). Anything else goes to math-verify in a worker process (`math_workers`), gold parsed
   first: `verify(gold, answer)`. It knows fractions, roots, pi, sets, intervals, tuples, matrices,
   degrees, percentages. A worker that passes `timeout` is killed: `timeout`. An answer math-verify
   cannot read is `parse_error`; so is a reference it cannot read (explained as such).

`verify` and `verify_many` share one lazily started pool (`default_pool`); `verify` never runs
math-verify in the calling process, so it is safe from any thread and always bounded in time.
"""

import atexit
import functools
import logging
import os
import re
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from rpt_transfer.cpus import available_cpus
from rpt_transfer.scoring.extract import clean_answer, math_final_answer, split_reasoning
from rpt_transfer.scoring.math_workers import CRASHED, TIMEOUT, Outcome, WorkerPool
from rpt_transfer.scoring.verdict import Verdict

VERSION = "2"
DEFAULT_TIMEOUT = 5.0
"""Seconds of compute one answer may take in a worker (OpenCompass uses 10, Qwen2.5-Math 3)."""
MAX_COMPLETION_CHARS = 1_000_000
"""About 250k tokens: far beyond any generation budget we use; longer input is not a completion."""
MAX_ANSWER_CHARS = 1_000
"""Longer than any real final answer (MATH-500's longest is under 100 characters)."""
MAX_WORKERS = 8

_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_UNICODE = {
    "−": "-",
    "–": "-",
    "×": "\\times ",
    "·": "\\cdot ",
    "÷": "\\div ",
    "π": "\\pi ",
    "∞": "\\infty ",
    "°": "^\\circ",
    "≤": "\\le ",
    "≥": "\\ge ",
    "≠": "\\ne ",
    "±": "\\pm ",
    "∪": "\\cup ",
    "∩": "\\cap ",
    "∈": "\\in ",
    "²": "^2",
    "³": "^3",
    "\u00a0": " ",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_SQRT_SHORT = re.compile(r"√\s*(\d+(?:\.\d+)?|[A-Za-z])")
_PI_WORD = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")
# Digit groups split by a LaTeX or typographic thousands separator: 10{,}080, 10,\!080, 1\,000 (not a
# plain space or comma: "(12,102)" is an interval, and math-verify reads "1,234" itself).
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:(?:\{,\}|,\\!\s?|\\[,!]|[\u2009\u202f])\d{3})+(?!\d)")
_SEPARATOR = re.compile(r"\{,\}|,\\!\s?|\\[,!]|[\u2009\u202f]")
_CURRENCY = re.compile(r"^\\?\$\s*(?=[-+]?\.?\d)")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?|[-+]?\.\d+")
# A sentence ("She makes $18 every day", "18 dollars"): words of 3+ letters, no math notation.
_PROSE_CHARS = re.compile(r"[A-Za-z0-9\s$,.%'/?!-]+")
_WORD = re.compile(r"[A-Za-z]{3,}")
_MATH_WORDS = frozenset({"sqrt", "frac", "cbrt", "root", "infinity", "log", "exp", "sin", "cos", "tan"})
_LETTER_DIGIT = re.compile(r"[A-Za-z]\d|\d[A-Za-z]")
_NUMBER_IN_TEXT = re.compile(
    r"(?<![\w.])(?P<sign>-)?\$?(?P<number>\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?)(?P<percent>\s?(?:%|percent\b))?",
    re.IGNORECASE,
)


class _Job(NamedTuple):
    """An answer that needs math-verify: what goes to the worker, and what the verdict reports."""

    answer: str
    reference: str
    extracted: str


def _number_in_prose(text: str) -> str | None:
    """The one number of a plain-English answer ("18 dollars" -> "18"), or None when it is not one."""
    if not _PROSE_CHARS.fullmatch(text) or _LETTER_DIGIT.search(text):
        return None
    words = {word.lower() for word in _WORD.findall(text)}
    if not words or words & _MATH_WORDS:
        return None
    numbers = list(_NUMBER_IN_TEXT.finditer(text))
    if len(numbers) != 1:
        return None
    found = numbers[0]
    return f"{found['sign'] or ''}{found['number']}{'%' if found['percent'] else ''}"


def normalise(text: str) -> str:
    r"""Rewrite what math-verify misreads into what it reads; applied to answers and references alike.

    Unicode math and a spelled-out "pi" become LaTeX (`√2`, `90°`, `x²`, `∞`, `2 pi`); LaTeX
    thousands separators are dropped (math-verify reads `10\,080` as 90); a leading currency sign
    goes; a sentence with one number and no math notation becomes that number (math-verify reads
    "18 dollars" as a product of symbols).
    """
    text = _SQRT_SHORT.sub(r"\\sqrt{\1}", text.strip()).replace("√", "\\sqrt")
    text = _THOUSANDS.sub(lambda match: _SEPARATOR.sub("", match.group()), text)
    text = _UNICODE_RE.sub(lambda match: _UNICODE[match.group()], text)
    text = _PI_WORD.sub(r"\\pi ", text).strip()
    if text.count("$") == 1:
        text = _CURRENCY.sub("", text)
    return _number_in_prose(text) or text


def _as_decimal(text: str) -> Decimal | None:
    r"""The value of a plain decimal number ("1,234", "-0.5", "025", "\$36"), else None."""
    text = _CURRENCY.sub("", text)
    return Decimal(text.replace(",", "")) if _PLAIN_NUMBER.fullmatch(text) else None


def _unusable(completion: object) -> str | None:
    """Why a completion cannot be scored at all, or None when it can."""
    if not isinstance(completion, str):
        return f"completion is {type(completion).__name__}, not text"
    if len(completion) > MAX_COMPLETION_CHARS:
        return f"completion of {len(completion):,} characters exceeds {MAX_COMPLETION_CHARS:,}"
    return None


def _bad_answer(extracted: str) -> str | None:
    """Why an extracted answer cannot go to math-verify, or None when it can."""
    if len(extracted) > MAX_ANSWER_CHARS:
        return f"answer of {len(extracted):,} characters exceeds {MAX_ANSWER_CHARS:,}"
    if _BAD_CHARS.search(extracted):
        return "answer contains control characters or lone surrogates"
    return None


def _prepare(completion: str, reference: str, finish_reason: str | None) -> Verdict | _Job:
    """Everything that does not need math-verify: a final verdict, or the job for a worker."""
    problem = _unusable(completion)
    if problem:
        return Verdict(0.0, None, "parse_error", problem)
    visible, truncated = split_reasoning(completion)
    if truncated:
        return Verdict(0.0, None, "truncated", "completion ended inside an unclosed <think> block")
    raw = math_final_answer(visible)
    if raw is not None and len(raw) > 4 * MAX_ANSWER_CHARS:  # no need to clean what is garbage anyway
        problem = f"answer of {len(raw):,} characters exceeds {MAX_ANSWER_CHARS:,}"
        return Verdict(0.0, raw[:100], "parse_error", problem)
    extracted = clean_answer(raw) if raw is not None else ""
    if not extracted:
        if finish_reason == "length":
            return Verdict(0.0, None, "truncated", "no final answer before the length limit")
        return Verdict(0.0, None, "no_answer", "no \\boxed{}, 'ANSWER:' or 'the answer is' with an answer")
    problem = _bad_answer(extracted)
    if problem:
        return Verdict(0.0, extracted[:100], "parse_error", problem)
    gold = normalise(str(reference))
    if not gold:
        return Verdict(0.0, extracted, "parse_error", "reference is empty")
    answer = normalise(extracted)
    value, expected = _as_decimal(answer), _as_decimal(gold)
    if value is not None and expected is not None:
        relation = "equals" if value == expected else "differs from"
        explanation = f"{answer} {relation} {gold} (exact decimal)"
        return Verdict(float(value == expected), extracted, None, explanation)
    return _Job(answer, gold, extracted)


def _verdict(job: _Job, outcome: Outcome) -> Verdict:
    """Turn a worker's outcome into the verdict for one answer."""
    status, detail = outcome
    pair = f"{job.answer!r} vs reference {job.reference!r}"
    if status in ("equal", "different"):
        return Verdict(float(status == "equal"), job.extracted, None, f"{pair}: {status} (math-verify)")
    if status == TIMEOUT:
        return Verdict(0.0, job.extracted, "timeout", f"{pair}: {detail}")
    messages = {
        "unparsed": "math-verify found no expression in the answer",
        "bad_reference": "math-verify cannot parse the REFERENCE; fix the benchmark data",
        CRASHED: detail,
        "error": detail,
    }
    return Verdict(0.0, job.extracted, "parse_error", f"{pair}: {messages.get(status, status)}")


@functools.cache
def _config() -> list[Any]:
    """math-verify's extraction targets: LaTeX (box first) and plain expressions."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    # Our pool enforces time limits, so math-verify's "timeout disabled" warning is expected noise.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]


def _parse(text: str) -> list[Any]:
    """math-verify's reading of one answer; boxing it makes math-verify take the whole text as LaTeX."""
    from math_verify import parse

    return parse(f"\\boxed{{{text}}}", _config(), parsing_timeout=None)


_parse_reference = functools.lru_cache(maxsize=4096)(_parse)
"""References repeat across samples; each worker parses one once."""


def _has_expression(parsed: list[Any]) -> bool:
    """Whether math-verify produced an expression, not just its raw-text fallback."""
    return any(not isinstance(item, str) for item in parsed)


def judge(answer: str, reference: str) -> Outcome:
    """Compare one normalised answer with its normalised reference; runs inside a worker process.

    math-verify's own SIGALRM timeouts are off (they fail off the main thread and would report a
    timeout as "different"); the pool's hard kill bounds the time instead.
    """
    from math_verify import verify as math_verify

    gold = _parse_reference(reference)
    if not _has_expression(gold):
        return "bad_reference", ""
    parsed = _parse(answer)
    if math_verify(gold, parsed, timeout_seconds=None):
        return "equal", ""
    return ("different" if _has_expression(parsed) else "unparsed"), ""


def new_pool(workers: int | None = None) -> WorkerPool:
    """A worker pool for `verify_many`; by default one worker per available CPU, at most `MAX_WORKERS`.

    Available CPUs come from `rpt_transfer.cpus` (cgroup limit and affinity, or RPT_CPUS): more workers
    than the pod may run would share the CPU and let answers hit the time limit that alone they would not.
    """
    size = workers or min(MAX_WORKERS, available_cpus())
    return WorkerPool(f"{__name__}:judge", size)


_default: WorkerPool | None = None
_default_lock = threading.Lock()


def default_pool() -> WorkerPool:
    """The process-wide pool that `verify` and `verify_many` use, made on first need (and after fork)."""
    global _default
    with _default_lock:
        if _default is None or _default.pid != os.getpid():
            _default = new_pool()
            atexit.register(_default.close)
        return _default


def verify_many(
    pairs: Sequence[tuple[str, str]],
    *,
    finish_reasons: Sequence[str | None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    pool: WorkerPool | None = None,
) -> list[Verdict]:
    """Score (completion, reference) pairs in parallel, one verdict per pair in order.

    `finish_reasons` (the generation rows' finish reasons) turn a missing answer of a length-capped
    completion into `truncated`. `timeout` bounds the seconds of compute per answer.
    """
    reasons = finish_reasons if finish_reasons is not None else [None] * len(pairs)
    prepared = [
        _prepare(completion, reference, reason)
        for (completion, reference), reason in zip(pairs, reasons, strict=True)
    ]
    jobs = [item for item in prepared if isinstance(item, _Job)]
    if not jobs:
        return [item for item in prepared if isinstance(item, Verdict)]
    outcomes = iter((pool or default_pool()).run([(job.answer, job.reference) for job in jobs], timeout))
    return [_verdict(item, next(outcomes)) if isinstance(item, _Job) else item for item in prepared]


def verify(
    completion: str, reference: str, *, finish_reason: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Verdict:
    """Score one completion against its reference (see the module docstring for every rule)."""
    return verify_many([(completion, reference)], finish_reasons=[finish_reason], timeout=timeout)[0]
