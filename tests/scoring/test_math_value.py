"""The in-process value of simple LaTeX numbers: right when it answers, None outside its small grammar."""

import math

import pytest

from rpt_transfer.scoring.math_value import clearly_apart, is_many, value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3.0),
        ("-2.5", -2.5),
        ("2\\sqrt{2}", 2 * math.sqrt(2)),
        ("\\frac{\\sqrt{3}}{2}", math.sqrt(3) / 2),
        ("\\dfrac{3}{2}", 1.5),
        ("\\frac12", 0.5),
        ("\\sqrt2", math.sqrt(2)),
        ("\\sqrt[3]{8}", 2.0),
        ("\\frac{\\pi}{4}", math.pi / 4),
        ("10\\pi", 10 * math.pi),
        ("3^{2}+1", 10.0),
        ("-2^2", -4.0),
        ("2\\cdot 3 \\times 4", 24.0),
        ("2(3+4)", 14.0),
        ("\\left( 3 \\right)", 3.0),
        ("1 + \\sqrt{5}", 1 + math.sqrt(5)),
    ],
)
def test_values(text: str, expected: float) -> None:
    assert value(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "1\\frac{4}{5}",  # a mixed number: math-verify reads 9/5
        "2^10",  # LaTeX's 2^1 followed by 0
        "9^{9^{9}}",
        "\\frac{1}{0}",
        "\\sqrt{-4}",
        "(1,2)",
        "x+1",
        "90^\\circ",
        "\\$36",
        "52_8",
        "5!",
        "3 4",
        "{" * 150 + "1" + "}" * 150,
        "",
    ],
)
def test_outside_the_grammar_is_none(text: str) -> None:
    assert value(text) is None


def test_clearly_apart_leaves_rounding_to_math_verify() -> None:
    assert clearly_apart(2.0, 3.0) and clearly_apart(1e-3, 2e-3)
    assert not clearly_apart(1 / 3, 0.333333) and not clearly_apart(1e-9, 2e-9)
    assert not clearly_apart(1e12, 1e12 + 1)


@pytest.mark.parametrize(
    ("text", "many"),
    [
        ("(1,2)", True),
        ("\\left( \\frac{3}{2}, -13 \\right)", True),
        ("[0, 1) \\cup (2, 3]", True),
        ("\\begin{pmatrix} -7 \\\\ 16 \\end{pmatrix}", True),
        ("\\begin{pmatrix} 5 \\end{pmatrix}", False),  # one entry
        ("\\{1, 2\\}", False),  # sets are math-verify's call
        ("1, 2", False),
        ("(1)", False),
    ],
)
def test_is_many(text: str, many: bool) -> None:
    assert is_many(text) == many
