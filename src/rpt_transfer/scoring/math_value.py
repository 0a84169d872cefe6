r"""The numeric value of a simple LaTeX number (`2\sqrt{2}`, `\frac{\pi}{4}`, `3^{2}+1`), computed in process.

Why: parsing LaTeX is most of what math-verify costs (its ANTLR parser takes milliseconds per new text),
and most wrong answers are numbers plainly different from the reference. When both sides are simple
numbers whose values are clearly apart, the verifier settles "different" here; anything else, including
two values that are close, still goes to math-verify. So this module only has to be right when it
answers, and answers None for anything outside a small grammar: digits and decimals, `+ - \cdot \times /`,
`^{...}`, `\frac`/`\dfrac`/`\tfrac`, `\sqrt` (with an optional index), `\pi`, parentheses and braces.
A number directly followed by `\frac` is a mixed number to math-verify (`1\frac{4}{5}` is 9/5), so that
is left to it too.
"""

import math
import re

LIMIT = 1e300
"""Larger intermediate values are left to math-verify (floats would overflow)."""
_TOKEN = re.compile(
    r"\s+|\\[,!;: ]|\\left(?![A-Za-z])|\\right(?![A-Za-z])"  # spacing and sizing: ignored
    r"|(?P<number>\d+(?:\.\d+)?|\.\d+)|(?P<command>\\[A-Za-z]+)|(?P<symbol>[-+*/^(){}\[\]])"
)
_FRACTIONS = frozenset({"\\frac", "\\dfrac", "\\tfrac"})
_MULTIPLY = frozenset({"\\cdot", "\\times", "*"})


class _Unsupported(Exception):
    """The text is outside the grammar: math-verify decides."""


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _Unsupported
        if match.lastgroup:
            tokens.append(match.group())
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens; every rule returns a float or raises `_Unsupported`."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Unsupported
        self.at += 1
        return token

    def expression(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return _checked(value)

    def term(self) -> float:
        value = self.unary()
        while True:
            token = self.peek()
            if token in _MULTIPLY:
                self.take()
                value *= self.unary()
            elif token == "/":
                self.take()
                value /= self.unary()
            elif token in ("\\sqrt", "\\pi", "(", "{"):  # implicit product: 2\sqrt{2}, 3\pi, 2(5)
                value *= self.power()
            elif token in _FRACTIONS:  # "1\frac{4}{5}" is a mixed number to math-verify
                raise _Unsupported
            else:
                return _checked(value)

    def unary(self) -> float:
        if self.peek() in ("+", "-"):
            return -self.unary() if self.take() == "-" else self.unary()
        return self.power()

    def power(self) -> float:
        base = self.primary()
        if self.peek() != "^":
            return base
        self.take()
        if self.peek() == "{":
            exponent = self.group()
        else:
            digit = self.take()
            if not (digit.isdigit() and len(digit) == 1):  # "2^10" is 2^1 then 0 in LaTeX: not ours
                raise _Unsupported
            exponent = float(digit)
        if self.peek() == "^":  # towers: not ours
            raise _Unsupported
        return _checked(math.pow(base, exponent))

    def group(self) -> float:
        self.take("{")
        value = self.expression()
        self.take("}")
        return value

    def argument(self) -> float:
        r"""A command's argument: `{...}` or one digit (`\frac12`)."""
        if self.peek() == "{":
            return self.group()
        token = self.take()
        if not token.isdigit():
            raise _Unsupported
        if len(token) > 1:  # "\frac12": the first digit is this argument, the rest the next
            self.tokens.insert(self.at, token[1:])
        return float(token[0])

    def primary(self) -> float:
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            return float(token)
        if token == "\\pi":
            return math.pi
        if token in _FRACTIONS:
            numerator = self.argument()
            return numerator / self.argument()
        if token == "\\sqrt":
            index = 2.0
            if self.peek() == "[":
                self.take()
                index = self.expression()
                self.take("]")
            return math.pow(self.argument(), 1.0 / index)
        if token in ("(", "{"):
            value = self.expression()
            self.take(")" if token == "(" else "}")
            return value
        raise _Unsupported


def _checked(value: float) -> float:
    if not math.isfinite(value) or abs(value) > LIMIT:
        raise _Unsupported
    return value


def value(text: str) -> float | None:
    """The value of `text` when it is a simple real number in LaTeX, else None."""
    if len(text) > 200:
        return None
    try:
        parser = _Parser(_tokens(text))
        result = parser.expression()
        return result if parser.peek() is None else None
    except (_Unsupported, ArithmeticError, ValueError, RecursionError):  # e.g. 1/0, overflow, sqrt(-1)
        return None


def clearly_apart(first: float, second: float, gap: float = 1e-5) -> bool:
    """Whether two values differ beyond any rounding math-verify applies (absolutely and relatively)."""
    difference = abs(first - second)
    return difference > gap and difference > gap * max(abs(first), abs(second))


_SIZING = re.compile(r"\\(?:left|right)(?![A-Za-z])|\s+")
_MATRIX = re.compile(r"\\begin\{[pbvBV]?matrix\}")


def is_many(text: str) -> bool:
    r"""Whether `text` is plainly several values, which never equal one number (under math-verify too).

    A tuple or interval (`(1, 2)`, `[0, 1) \cup (2, 3]`) or a matrix with more than one entry. Sets
    (`\{3\}`) do not count: math-verify may compare a one-element set with a number.
    """
    bare = _SIZING.sub("", text)
    if _MATRIX.match(bare):
        return "\\\\" in bare or "&" in bare
    return len(bare) > 2 and bare[0] in "([" and bare[-1] in ")]" and "," in bare and "\\{" not in bare
