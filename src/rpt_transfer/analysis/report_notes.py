"""The report's prose: how each number is made, and why the report shows two scoring policies.

Kept apart from rendering so the text a reader sees next to the numbers is read (and reviewed) in one place;
every constant it quotes comes from the module that uses it, so the text cannot drift from the code.
"""

from rpt_transfer.analysis.answer import ALPHA as ANSWER_ALPHA
from rpt_transfer.analysis.domains import MIN_TRAINED_GAIN
from rpt_transfer.analysis.metrics import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE
from rpt_transfer.analysis.policies import ALPHA
from rpt_transfer.analysis.tables import MAX_TRUNCATED_RATE
from rpt_transfer.analysis.transfer import PERMUTATIONS

NOTES = (
    "Accuracy is pass@1: the mean over items of each item's mean correctness over its samples; "
    "accuracy_se is the standard error over per-item means and accuracy_low/high the item-bootstrap "
    "interval (items resampled with all their samples).",
    "A benchmark is 'seen' for a pair when its domain is among the RPT model's training domains, "
    "else 'unseen'. Delta is RPT accuracy minus base accuracy; relative delta divides by the base "
    "accuracy (n/a where that is 0).",
    "Per-pair seen/unseen means are unweighted over benchmarks; mean_delta_seen and mean_delta_unseen "
    "average those per-pair means, so each pair counts once.",
    f"Effects use the items both models answered: {CONFIDENCE:.0%} intervals are percentile intervals of "
    f"a paired bootstrap that resamples items (each with all its samples; {BOOTSTRAP_RESAMPLES} resamples, "
    f"seed {BOOTSTRAP_SEED}); delta_se is the standard error of the mean per-item difference. Tests are "
    "McNemar's exact test where every item has one 0/1 outcome per model, else a paired permutation "
    f"test ({PERMUTATIONS:,} sign flips, seed 0) on per-item accuracies.",
    "Domain tables: delta_weighted weighs each benchmark by its number of items, delta_unweighted and "
    "mean_relative_delta average benchmarks equally; 'all pairs' rows weigh all cells by items for "
    "delta_weighted and average the per-pair values (each pair once) for the other two. "
    "delta_weighted_se = sqrt(Σ n_b² delta_se_b²) / Σ n_b over the pooled benchmarks b (independent "
    f"samples of items), and delta_weighted_low/high its normal {CONFIDENCE:.0%} interval. It covers item "
    "sampling only: in 'all pairs' rows it also treats pairs as independent, although pairs sharing a base "
    "model share items, so there it may be too narrow.",
    "CMH: one 2x2 table per pair x benchmark (rows RPT/base, columns correct/incorrect), counted over "
    "samples of the shared items; common odds ratio (Mantel-Haenszel, > 1 favours RPT) and the CMH "
    "test without continuity correction. Samples of one item are not independent, so its p-value is "
    "optimistic for benchmarks with several samples per item.",
    "Transferability Index: ΔR_g is the mean over a group's benchmarks of (RPT − base) / base; "
    "TI = ΔR_target / ΔR_trained (trained = seen benchmarks). It is n/a when the trained-domain gain is "
    f"below {MIN_TRAINED_GAIN:.0%} (no gain to transfer; a negative denominator would flip the sign) or "
    "a group has no benchmark with a non-zero base accuracy; 'status' says which.",
    "One comparison, one test: each pair × benchmark and pair × domain is tested once, by the paired "
    "item-level test above, and its p_value is the same number in the effects table, the paired tests and "
    "the transfer matrix (a domain with one benchmark is that benchmark's comparison). cmh_p_value is a "
    "second, differently named test on purpose: it pools benchmarks (and pairs) into one odds ratio, which "
    "the paired test cannot, at the price of treating samples as independent; for one benchmark, read "
    "p_value.",
    "Scoring policies: every sample is scored twice. Strict (accuracy, and every table without "
    "'flexible' in its title) reads the answer only in the benchmark's stated format; flexible reads the "
    "final answer wherever a careful human grader would look. Both exist because reinforcement "
    "post-training changes how a model writes its answer as much as whether it is right, so a strict "
    "delta can be format rather than ability. format_rate is the share of scored samples in the stated "
    "format; format_effect = delta_strict − delta_flexible.",
    "Samples that could not be scored because the scoring machine lacked the language's toolchain "
    "(reason toolchain_missing, accepted by the study) are left out of every number, not counted as "
    "wrong; n_excluded and the 'Excluded samples' section say how many and why.",
    f"Warnings flag missing pair × benchmark cells, cells not compared because base and RPT were "
    f"sampled differently, truncation above {MAX_TRUNCATED_RATE:.0%} of samples, any sample that "
    "failed to score (error or timeout), excluded samples, and cells whose base and RPT rows were "
    "generated or scored by different software versions (engine, device, dtype, scoring toolchain; "
    "compared, but named).",
)
"""Scoring and aggregation policy, printed next to the numbers it shapes."""

ANSWER_NOTE = (
    f"Strict scoring. A gain (or loss) counts only where both tests agree: the CMH test at p < "
    f"{ANSWER_ALPHA:g} with the odds ratio on that side of 1, and the item-weighted delta's "
    f"{1 - ANSWER_ALPHA:.0%} interval on that side of 0. Without a clear gain on the trained domains "
    "there is nothing to transfer; 'no evidence' of transfer is not evidence against it."
)
"""The rule behind the opening sentence, printed under it (`answer.py` has the full decision rules)."""

POLICY_INTRO = (
    "Strict scoring reads the answer only where the benchmark's prompt asks for it, as the benchmark's own "
    "harness would; flexible scoring reads the final answer wherever a careful human grader would look "
    "(last box, answer markers, the final line or sentence, the option letter or its text, <think> "
    "removed). Both are shown because RPT changes a model's output format as much as its ability: a "
    "strict-only delta can be a format effect, and this study exists to tell the two apart. "
    f"A comparison is flagged where the policies disagree: deltas of opposite sign, or a paired test "
    f"significant at {ALPHA:g} under one policy and not under the other."
)
"""Why the report carries two policies; shown above the side-by-side tables."""

EXCLUDED_INTRO = (
    "These samples could not be scored because the scoring machine lacked the toolchain their language "
    "needs, and the study accepted that (reason toolchain_missing). They are left out of every number "
    "above, accuracies, deltas and tests alike, rather than counted as wrong, which would charge the "
    "model for the machine."
)
