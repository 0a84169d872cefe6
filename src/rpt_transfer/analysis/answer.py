"""The study's answer in one plain sentence: did RPT gains on trained domains carry over to other domains.

`answer_for` reads a `domains.domain_effects` frame: the "all pairs" seen and unseen rows when there are
several pairs, else the only pair's. It knows nothing of reports, so the report and the leaderboard open
with the same sentence for the same numbers.

A group (seen = the domains the RPT data covered, unseen = the others) counts as a **significant gain**
when both of its tests agree: the CMH test rejects an odds ratio of 1 (p < alpha) with the odds ratio
above 1, and the (1 - alpha) normal interval of the item-weighted delta lies entirely above 0 (see
`domains.py`; at alpha = 0.05 it is the table's `delta_weighted_low` / `_high`). A **significant loss**
mirrors it (p < alpha, odds ratio below 1, interval below 0). Anything else, NaN included, is neither.
Requiring both keeps the sentence from resting on the CMH test alone, which counts samples of one item as
independent.

Decision rules, in order (`verdict` keys):

- `no_data`: neither a seen nor an unseen row: nothing was compared.
- `no_seen`: no seen row (no benchmark of a trained domain was compared): no trained gain to transfer.
- `no_unseen`: no unseen row (every benchmark is in a trained domain): transfer cannot be asked here.
- `no_trained_gain`: seen is not a significant gain: there was no clear gain to transfer, whatever the
  other domains did (a significant change there is reported, not called transfer).
- `transferred`: seen and unseen are both significant gains.
- `hurt`: seen is a significant gain and unseen a significant loss: the gains did not transfer, and the
  other domains got worse.
- `not_transferred`: seen is a significant gain and unseen neither: no evidence the gains transferred
  (which is not evidence that they did not).

Numbers: points are deltas x 100 with one decimal and a sign; odds ratios two decimals; p as
"p = 0.04" (two significant digits, more where rounding would cross alpha) or "p < 0.001".
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import pandas as pd

from rpt_transfer.analysis.domains import ALL_PAIRS
from rpt_transfer.analysis.tables import SEEN, UNSEEN

ALPHA = 0.05
"""The default significance level of both tests behind a verdict."""

VERDICTS = (
    "transferred",
    "hurt",
    "not_transferred",
    "no_trained_gain",
    "no_unseen",
    "no_seen",
    "no_data",
)
"""Every `Answer.verdict`, most informative first; the module docstring says when each applies."""


class Answer(NamedTuple):
    """The plain answer, the numbers behind it, and a short key for code (one of `VERDICTS`)."""

    sentence: str
    evidence: str
    verdict: str


class Pooled(NamedTuple):
    """The rows an answer rests on: the seen and unseen rows (None when absent) and the pairs they pool."""

    pairs: tuple[str, ...]
    seen: pd.Series | None
    unseen: pd.Series | None


def pooled_rows(domains: pd.DataFrame) -> Pooled:
    """The "all pairs" seen/unseen rows when present, else the only pair's.

    Raises:
        ValueError: several pairs and no "all pairs" rows (not a `domain_effects` frame).
    """
    if domains.empty:  # also a bare `pd.DataFrame()`: nothing compared
        return Pooled((), None, None)
    pairs = tuple(name for name in dict.fromkeys(domains["pair"]) if name != ALL_PAIRS)
    rows = domains[domains["pair"] == ALL_PAIRS] if (domains["pair"] == ALL_PAIRS).any() else domains
    if len(pairs) > 1 and rows is domains:
        raise ValueError(f"domains of several pairs {list(pairs)} lack the {ALL_PAIRS!r} rows")

    def one(group: str) -> pd.Series | None:
        chosen = rows[rows["group"] == group]
        return chosen.iloc[0] if len(chosen) else None

    return Pooled(pairs, one(SEEN), one(UNSEEN))


def answer_for(domains: pd.DataFrame, *, alpha: float = ALPHA, scope: str = "this study") -> Answer:
    """Did the gains transfer? One sentence, its evidence and a verdict (rules in the module docstring).

    `scope` names what was compared in the sentence ("these studies" for a leaderboard pooling several).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    pooled = pooled_rows(domains)
    seen, unseen = pooled.seen, pooled.unseen
    models = "the RPT model" if len(pooled.pairs) == 1 else "the RPT models"
    evidence = _evidence(pooled, alpha)
    if seen is None and unseen is None:
        return Answer(
            f"No RPT model was compared with its base, so {scope} cannot say whether gains transferred.",
            "No pair × benchmark comparison.",
            "no_data",
        )
    if seen is None:
        return Answer(
            f"No compared benchmark lies in a domain the RPT data covered, so {scope} has no "
            "trained-domain gain to check for transfer.",
            evidence,
            "no_seen",
        )
    if unseen is None:
        return Answer(
            f"Every compared benchmark lies in a domain the RPT data covered, so {scope} cannot say "
            "whether the gains transferred to other domains.",
            evidence,
            "no_unseen",
        )
    trained, other = _direction(seen, alpha), _direction(unseen, alpha)
    if trained <= 0:
        return Answer(_no_gain_sentence(models, trained, other, scope), evidence, "no_trained_gain")
    if other > 0:
        sentence = (
            f"The gains transferred in {scope}: {models} gained on the domains "
            "the RPT data covered and also on the other domains."
        )
        return Answer(sentence, evidence, "transferred")
    if other < 0:
        sentence = (
            f"The gains did not transfer in {scope}: {models} gained on the "
            "domains the RPT data covered and lost accuracy on the other domains."
        )
        return Answer(sentence, evidence, "hurt")
    sentence = (
        f"{_upper(models)} gained on the domains the RPT data covered, but there is no evidence that the "
        f"gains transferred to other domains in {scope}."
    )
    return Answer(sentence, evidence, "not_transferred")


def _no_gain_sentence(models: str, trained: int, other: int, scope: str) -> str:
    """No significant trained gain: say so, and what the other domains did only where it was significant."""
    if trained < 0:
        sentence = f"{_upper(models)} lost accuracy on the domains the RPT data covered, so there was no gain"
    else:
        sentence = f"{_upper(models)} showed no clear gain on the domains the RPT data covered, so there was"
        sentence += " no clear gain"
    sentence += f" to transfer in {scope}."
    they = "It" if models.endswith("model") else "They"
    if other < 0:
        sentence += f" {they} lost accuracy on the other domains{' too' if trained < 0 else ''}."
    elif other > 0:
        sentence += f" {they} did gain on the other domains, but without a clear trained-domain gain"
        sentence += " that is not evidence of transfer."
    return sentence


def _upper(text: str) -> str:
    """The text with its first letter capitalised (and nothing else changed), to start a sentence."""
    return text[:1].upper() + text[1:]


def _direction(row: pd.Series, alpha: float) -> int:
    """+1 a significant gain, -1 a significant loss, 0 neither (both tests must agree; NaN is neither)."""
    low, high = _interval(row, alpha)
    if not row["cmh_p_value"] < alpha:
        return 0
    if row["cmh_odds_ratio"] > 1 and low > 0:
        return 1
    if row["cmh_odds_ratio"] < 1 and high < 0:
        return -1
    return 0


def _interval(row: pd.Series, alpha: float) -> tuple[float, float]:
    """The (1 - alpha) normal interval of the item-weighted delta, from its standard error."""
    half = NormalDist().inv_cdf(1 - alpha / 2) * float(row["delta_weighted_se"])
    delta = float(row["delta_weighted"])
    return delta - half, delta + half


def _evidence(pooled: Pooled, alpha: float) -> str:
    """The numbers: scope, then each present group's points, interval, odds ratio and p-value."""
    if len(pooled.pairs) == 1:
        scope = f"Pair {pooled.pairs[0]}, item-weighted RPT − base accuracy"
    else:  # no pair names: a frame cut down to its "all pairs" rows
        scope = f"{len(pooled.pairs) or 'All'} pairs pooled, item-weighted RPT − base accuracy"
    parts = []
    for name, row in (("trained domains", pooled.seen), ("other domains", pooled.unseen)):
        if row is None:
            continue
        low, high = _interval(row, alpha)
        odds = "odds ratio" if parts else "CMH odds ratio"  # the test is named once
        parts.append(
            f"{name} {points(row['delta_weighted'])} points ({1 - alpha:.0%} CI {points(low)} to "
            f"{points(high)}), {odds} {odds_ratio(row['cmh_odds_ratio'])}, "
            f"{p_text(row['cmh_p_value'], alpha)}"
        )
    return f"{scope}: {'; '.join(parts)}."


def points(delta: float) -> str:
    """A delta in accuracy points, signed, one decimal ('+3.2'); 'n/a' for NaN; never '-0.0'."""
    if not math.isfinite(delta):
        return "n/a"
    return f"{round(delta * 100, 1) + 0.0:+.1f}"


def odds_ratio(value: float) -> str:
    """Two decimals; 'infinite' where base never beat RPT's failures; 'n/a' for NaN."""
    if math.isnan(value):
        return "n/a"
    return "infinite" if math.isinf(value) else f"{value:.2f}"


def p_text(p: float, alpha: float = ALPHA) -> str:
    """'p = 0.04' with two significant digits (more where rounding would cross alpha), or 'p < 0.001'."""
    if math.isnan(p):
        return "p n/a"
    if p < 0.001:
        return "p < 0.001"
    for digits in range(2, 7):
        text = f"{p:.{digits}g}"
        if (float(text) < alpha) == (p < alpha):
            return f"p = {text}"
    return f"p = {p}"
