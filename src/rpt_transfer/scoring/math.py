r"""Math verifier: the final answer of a completion, checked for equivalence with math-verify.

Every verdict carries two policies (issue 10; `Verdict`): **strict** reads the answer only in the stated
format, as the benchmark's harness would, and **flexible** also reads it where a careful human grader
would look. Training rewards use strict unless a run declares otherwise.

How a completion is scored, in order:

1. Unusable input (not text, over `MAX_COMPLETION_CHARS`) is `parse_error`.
2. Reasoning is hidden (`extract.split_reasoning`). A completion that ends inside an unclosed
   `<think>` is `truncated`: it never gave its answer (under both policies).
3. Strict: the final answer is the last `\boxed{}` / `ANSWER:` / `Final Answer:` / `#### `, else the
   last "the answer is ..." followed by a value (`extract.math_answer`), cleaned of wrappers
   (`extract.clean_answer`). Boxes listed together on the final line are one answer
   (`\boxed{1}, \boxed{2}, \boxed{3}` is "1, 2, 3"); in a sentence the asserted value counts
   ("Final Answer: The largest $n$ is 34." is 34, not n); "the answer is correct" is no answer. None
   found is `no_answer`, or `truncated` when generation hit its length limit (`finish_reason="length"`).
   An answer over `MAX_ANSWER_CHARS` or with control characters or lone surrogates is `parse_error`.
   `format_followed` is true when a box or an answer marker held the answer (an "answer is" phrase
   counts for strict correctness but is not the stated format).
4. Flexible: the strict answer when there is one (so flexible is never below strict); otherwise, for a
   completion that stopped on its own, the final answer a grader finds at the end
   (`extract.math_flexible_answer`): a last paragraph or line that is only a value ("840", "$$x=5$$",
   "**73**"), or the value the last sentences assert after "is"/"are"/"equals"/"=" ("So there are 840
   ways." is 840, "Thus x = 5." is 5). Text inside `<think>` never counts.
5. Answer and reference are normalised alike (`normalise`): Unicode math to LaTeX, LaTeX thousands
   separators (`10{,}080`, `10,\!080`), a currency sign, ordinal suffixes (`12^{\mathrm{th}}`,
   `2^{\rm nd}`, `21^\text{st}`, `12th`: the number; a following `\text{ grade}` is a unit), a
   percent sign (see below), a number in a sentence ("18 dollars").
6. In process, without math-verify: two plain decimal numbers are compared exactly ("1,234" =
   "1234.0", "025" = "25", "25" != "5"), so are two fractions of integers ("\frac{2}{4}" = "1/2"); an
   answer written exactly as the reference is equal; two simple numbers whose values are clearly apart
   (`math_value`: `2\sqrt{2}` against 3) are different. Anything else goes to math-verify in a worker
   process (`math_workers`), gold parsed first: `verify(gold, answer)`. It knows fractions, roots,
   pi, sets, intervals, tuples, matrices, degrees. A worker that passes `timeout` is killed:
   `timeout`. An answer math-verify cannot read is `parse_error`; so is a reference it cannot read
   (explained as such).

Percentages: a percent sign (`\%`, `%`, "percent") is a unit, dropped on both sides and never read as a
factor 1/100. So `\boxed{10\%}` matches 10 but not 0.1, `\boxed{1000\%}` does not match 10, and
against a gold `10\%` the answer 10 matches and 0.1 does not. One policy fits all four math benchmarks:
MATH-500's golds carry no percent sign and its usual normaliser strips `\%` without rescaling; GSM8K's
"what percentage ...?" golds are the number (60 for 60%); AIME and AMC answers are plain numbers. So no
item context is needed (`contexts` is accepted for the shared verifier convention).

Equations: an equation matches only the same equation rearranged (terms moved across `=`, sides
swapped, so `y - 2x = 3` and `2x + 3 = y` match `y = 2x + 3`), never a multiple of it:
`20x-28y+44z+16=0` does not match `5x-7y+11z+4=0`, since such problems fix the form (A > 0, gcd 1).
A value still matches an assignment's right side (`2x + 3` for `y = 2x + 3`, `5` for `x = 5`).

Throughput: `verify_many` sends each distinct (answer, reference) pair to math-verify once per call,
grouped by reference so a worker parses each reference once (samples of one item repeat answers).
`verify` and `verify_many` share one lazily started pool (`default_pool`); `verify` never runs
math-verify in the calling process, so it is safe from any thread and always bounded in time.
"""

import atexit
import functools
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

from rpt_transfer.cpus import available_cpus
from rpt_transfer.scoring import math_value
from rpt_transfer.scoring.extract import (
    MathAnswer,
    clean_answer,
    math_answer,
    math_flexible_answer,
    split_reasoning,
)
from rpt_transfer.scoring.math_workers import CRASHED, TIMEOUT, Outcome, WorkerPool
from rpt_transfer.scoring.verdict import Verdict

VERSION = "3"
DEFAULT_TIMEOUT = 5.0
"""Seconds of compute one answer may take in a worker (OpenCompass uses 10, Qwen2.5-Math 3)."""
MAX_COMPLETION_CHARS = 1_000_000
"""About 250k tokens: far beyond any generation budget we use; longer input is not a completion."""
MAX_ANSWER_CHARS = 1_000
"""Longer than any real final answer (MATH-500's longest is under 100 characters)."""
MAX_WORKERS = 8

_SPACES = re.compile(r"\s+")
# An integer or a fraction of integers: 3, -7, \frac{3}{4}, \dfrac34, -\frac{-3}{4}, 3/4 (no decimals:
# math-verify rounds those, so 0.333333 = 1/3 stays its call).
_RATIONAL = re.compile(
    r"\s*(?P<sign>-)?\s*(?:"
    r"(?P<whole>\d+)(?P<no_denominator>)"
    r"|\\[dt]?frac\s*\{\s*(?P<num>-?\d+)\s*\}\s*\{\s*(?P<den>\d+)\s*\}"
    r"|\\[dt]?frac\s*(?P<n>\d)\s*(?P<d>\d)"
    r"|(?P<top>\d+)\s*/\s*(?P<bottom>\d+)"
    r")\s*"
)
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
# Ordinal suffixes after a number: 12th, 12^{th}, 12^{\text{th}}, 12^{\mathrm{nd}}, 12^{\rm st}, 12^\text{rd},
# 12\text{th} (a trailing "\text{ grade}" is then a unit, which math-verify drops).
_SUFFIX = r"(?:st|nd|rd|th)"
_STYLE = r"\\(?:text|mathrm|textrm|rm|mbox|textup|textsuperscript)"
_ORDINAL = re.compile(
    rf"(?<=\d)(?:\s*\^\s*(?:\{{\s*{_SUFFIX}\s*\}}|\{{\s*{_STYLE}\s*\{{\s*{_SUFFIX}\s*\}}\s*\}}"
    rf"|\{{\s*\\rm\s+{_SUFFIX}\s*\}}|{_STYLE}\s*\{{\s*{_SUFFIX}\s*\}}|{_SUFFIX})"
    rf"|\s*{_STYLE}\s*\{{\s*{_SUFFIX}\s*\}}|{_SUFFIX})(?![A-Za-z])"
)
_ORDINAL_IN_TEXT = re.compile(r"(?<=\d)(\s*\\(?:text|mathrm|textrm|mbox)\s*\{)\s*(?:st|nd|rd|th)(?![A-Za-z])")
# A percent sign is a unit here, dropped and never rescaled (see "Percentages" in the module docstring).
_PERCENT = re.compile(r"\s*(?:\\%|%|\\text\{\s*(?:\\%|%|percent)\s*\}|\\mathrm\{\s*percent\s*\})")
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
    text = _ORDINAL_IN_TEXT.sub(r"\1", _ORDINAL.sub("", text))
    text = _number_in_prose(text) or text
    return _PERCENT.sub("", text).strip()


def _as_decimal(text: str) -> Decimal | None:
    r"""The value of a plain decimal number ("1,234", "-0.5", "025", "\$36"), else None."""
    text = _CURRENCY.sub("", text)
    return Decimal(text.replace(",", "")) if _PLAIN_NUMBER.fullmatch(text) else None


_PARTS = (("whole", "no_denominator"), ("num", "den"), ("n", "d"), ("top", "bottom"))


def _as_fraction(text: str) -> Fraction | None:
    r"""The exact value of an integer or a fraction of integers ("\frac{3}{4}", "-3/4"), else None."""
    found = _RATIONAL.fullmatch(text)
    if found is None:
        return None
    top, bottom = next((found[a], found[b]) for a, b in _PARTS if found[a])
    numerator, denominator = int(top), int(bottom or 1)
    if denominator == 0:
        return None
    value = Fraction(numerator, denominator)
    return -value if found["sign"] else value


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


def _check(extracted: str, reference: str) -> Verdict | _Job:
    """Everything after extraction that needs no math-verify: a final verdict, or the job for a worker."""
    problem = _bad_answer(extracted)
    if problem:
        return Verdict(0.0, extracted[:100], "parse_error", problem)
    gold = normalise(str(reference))
    if not gold:
        return Verdict(0.0, extracted, "parse_error", "reference is empty")
    answer = normalise(extracted)
    settled = _settle(answer, gold)
    if settled is not None:
        return Verdict(settled[0], extracted, None, settled[1])
    return _Job(answer, gold, extracted)


def _settle(answer: str, gold: str) -> tuple[float, str] | None:
    """(correct, explanation) when plain arithmetic decides, without math-verify; None otherwise."""
    value, expected = _as_decimal(answer), _as_decimal(gold)
    if value is not None and expected is not None:
        return float(value == expected), f"{answer} {_relation(value == expected)} {gold} (exact decimal)"
    if _SPACES.sub(" ", answer) == _SPACES.sub(" ", gold):
        return 1.0, f"{answer!r} is the reference as written"
    fraction, expected_fraction = _as_fraction(answer), _as_fraction(gold)
    if fraction is not None and expected_fraction is not None:
        same = fraction == expected_fraction
        return float(same), f"{answer} {_relation(same)} {gold} (exact fraction)"
    number, expected_number = math_value.value(answer), math_value.value(gold)
    if (
        number is not None
        and expected_number is not None
        and math_value.clearly_apart(number, expected_number)
    ):
        return 0.0, f"{answer} differs from {gold} (values {number:.6g} and {expected_number:.6g})"
    if (number is not None and math_value.is_many(gold)) or (
        expected_number is not None and math_value.is_many(answer)
    ):
        return 0.0, f"{answer} differs from {gold} (one number against a tuple, interval or matrix)"
    return None


def _relation(same: bool) -> str:
    return "equals" if same else "differs from"


def _strict(found: MathAnswer | None, reference: str, finish_reason: str | None) -> Verdict | _Job:
    """The strict policy: the answer in the stated format (box or marker), else an "answer is" phrase."""
    raw = found.raw if found else None
    if raw is not None and len(raw) > 4 * MAX_ANSWER_CHARS:  # no need to clean what is garbage anyway
        problem = f"answer of {len(raw):,} characters exceeds {MAX_ANSWER_CHARS:,}"
        return Verdict(0.0, raw[:100], "parse_error", problem)
    extracted = clean_answer(raw) if raw is not None else ""
    if not extracted:
        if finish_reason == "length":
            return Verdict(0.0, None, "truncated", "no final answer before the length limit")
        return Verdict(0.0, None, "no_answer", "no \\boxed{}, 'ANSWER:' or 'the answer is' with an answer")
    return _check(extracted, reference)


class _Plan(NamedTuple):
    """What one sample needs: its strict verdict or job, its flexible one (None: same as strict)."""

    strict: Verdict | _Job
    flexible: Verdict | _Job | None
    format_followed: bool


def _prepare(completion: str, reference: str, finish_reason: str | None) -> _Plan:
    """Extract under both policies and settle what needs no math-verify."""
    problem = _unusable(completion)
    if problem:
        return _Plan(Verdict(0.0, None, "parse_error", problem), None, False)
    visible, truncated = split_reasoning(completion)
    if truncated:
        verdict = Verdict(0.0, None, "truncated", "completion ended inside an unclosed <think> block")
        return _Plan(verdict, None, False)
    found = math_answer(visible)
    strict = _strict(found, reference, finish_reason)
    followed = bool(found and found.explicit) and not (
        isinstance(strict, Verdict) and strict.extracted is None
    )
    if isinstance(strict, Verdict) and strict.reason == "no_answer":
        candidate = math_flexible_answer(visible)
        if candidate:
            return _Plan(strict, _check(candidate, reference), followed)
    return _Plan(strict, None, followed)


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


_parse_cached = functools.lru_cache(maxsize=4096)(_parse)
"""References repeat across samples, and answers across samples and items: each worker parses a text once."""


def _has_expression(parsed: list[Any]) -> bool:
    """Whether math-verify produced an expression, not just its raw-text fallback."""
    return any(not isinstance(item, str) for item in parsed)


def judge(answer: str, reference: str) -> Outcome:
    """Compare one normalised answer with its normalised reference; runs inside a worker process.

    math-verify's own SIGALRM timeouts are off (they fail off the main thread and would report a
    timeout as "different"); the pool's hard kill bounds the time instead.
    """
    from math_verify import verify as math_verify

    gold = _parse_cached(reference)
    if not _has_expression(gold):
        return "bad_reference", ""
    parsed = _parse_cached(answer)
    gold_equation, equation = _equation(gold), _equation(parsed)
    if gold_equation is not None and equation is not None:
        return ("equal" if _same_equation(gold_equation, equation) else "different"), ""
    if _distinct_numbers(gold, parsed):
        return "different", ""
    if math_verify(gold, parsed, timeout_seconds=None):
        return "equal", ""
    return ("different" if _has_expression(parsed) else "unparsed"), ""


def _distinct_numbers(gold: list[Any], answer: list[Any]) -> bool:
    """Whether both sides are constant real numbers clearly apart, so math-verify need not simplify.

    math-verify tries SymPy's `simplify` on every pair it finds unequal numerically (a third of its time
    on wrong answers); two constants that differ beyond rounding cannot be equal symbolically.
    """
    from sympy import Expr, Float, N

    values = []
    for parsed in (gold, answer):
        expression = next((item for item in parsed if not isinstance(item, str)), None)
        if not isinstance(expression, Expr) or not expression.is_number:
            return False
        number = N(expression, 20)
        if not isinstance(number, Float) or not number.is_finite:
            return False
        values.append(float(number))
    return math_value.clearly_apart(*values)


def _equation(parsed: list[Any]) -> Any:
    """The one equation math-verify read (`y = 2x + 3`), or None for anything else (chains included)."""
    from sympy import Eq

    return next((item for item in parsed if isinstance(item, Eq)), None)


def _same_equation(gold: Any, answer: Any) -> bool:
    """Whether two equations are one equation rearranged: terms moved across `=`, sides swapped.

    Not a multiple of it: `20x-28y+44z+16=0` is not `5x-7y+11z+4=0`, whose problem fixes the form
    (math-verify alone accepts any equation with the same solutions).
    """
    from math_verify.grader import sympy_expr_eq

    difference, other = gold.lhs - gold.rhs, answer.lhs - answer.rhs
    return any(sympy_expr_eq(difference, side, 6, 15) for side in (other, -other))


WARMUP = (
    ("1", "1"),
    ("x^2+1", "(x+1)^2"),
    ("\\frac{\\sqrt{3}}{2}", "\\sin(60^\\circ)"),
    ("(1, 2]", "[1, 2)"),
    ("\\{1, 2\\}", "1, 3"),
    ("y = 2x + 3", "2x - y = -3"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"),
    ("\\text{east}", "\\text{west}"),
)
"""What each worker judges before its first task: SymPy's simplify, sets, intervals, equations and
matrices import lazily and the LaTeX parser builds its tables on first use (about half a second), which
would otherwise count against the first tasks' timeouts."""


def new_pool(workers: int | None = None) -> WorkerPool:
    """A worker pool for `verify_many`; by default one worker per available CPU, at most `MAX_WORKERS`.

    Available CPUs come from `rpt_transfer.cpus` (cgroup limit and affinity, or RPT_CPUS): more workers
    than the pod may run would share the CPU and let answers hit the time limit that alone they would not.
    """
    size = workers or min(MAX_WORKERS, available_cpus())
    return WorkerPool(f"{__name__}:judge", size, warmup=WARMUP)


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


def _combine(strict: Verdict, flexible: Verdict | None, followed: bool) -> Verdict:
    """One verdict with both policies; flexible is never below strict."""
    if flexible is None:
        return strict._replace(
            flexible=strict.correct, flexible_extracted=strict.extracted, format_followed=followed
        )
    return strict._replace(
        explanation=f"{strict.explanation}; flexible: {flexible.explanation}",
        flexible=max(strict.correct, flexible.correct),
        flexible_extracted=flexible.extracted,
        format_followed=followed,
    )


def verify_many(
    pairs: Sequence[tuple[str, str]],
    finish_reasons: Sequence[str | None] | None = None,
    contexts: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    pool: WorkerPool | None = None,
) -> list[Verdict]:
    """Score (completion, reference) pairs in parallel, one verdict per pair in order.

    `finish_reasons` (the generation rows' finish reasons) turn a missing answer of a length-capped
    completion into `truncated`. `contexts` (items' metadata) are accepted for the shared verifier
    convention; math needs none, since one policy fits every math benchmark (module docstring).
    `timeout` bounds the seconds of compute per answer. Each distinct (answer, reference) pair goes to
    math-verify once per call, grouped by reference so a worker parses each reference once.
    """
    reasons = finish_reasons if finish_reasons is not None else [None] * len(pairs)
    if contexts is not None and len(contexts) != len(pairs):
        raise ValueError(f"contexts has {len(contexts)} entries for {len(pairs)} pairs")
    plans = [
        _prepare(completion, reference, reason)
        for (completion, reference), reason in zip(pairs, reasons, strict=True)
    ]
    distinct: dict[tuple[str, str], int] = {}
    for plan in plans:
        for part in (plan.strict, plan.flexible):
            if isinstance(part, _Job):
                distinct.setdefault((part.answer, part.reference), len(distinct))
    outcomes: dict[tuple[str, str], Outcome] = {}
    if distinct:
        tasks = sorted(distinct, key=lambda task: (task[1], distinct[task]))
        results = (pool or default_pool()).run(tasks, timeout)
        outcomes = dict(zip(tasks, results, strict=True))

    def settle(part: Verdict | _Job | None) -> Verdict | None:
        if isinstance(part, _Job):
            return _verdict(part, outcomes[(part.answer, part.reference)])
        return part

    return [_combine(settle(plan.strict), settle(plan.flexible), plan.format_followed) for plan in plans]  # type: ignore[arg-type]


def verify(
    completion: str,
    reference: str,
    context: Mapping[str, Any] | None = None,
    *,
    finish_reason: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Verdict:
    """Score one completion against its reference (see the module docstring for every rule)."""
    return verify_many([(completion, reference)], [finish_reason], [context], timeout=timeout)[0]
