from pathlib import Path

import pytest

from conftest import tiny_study, write_study
from rpt_transfer.errors import SpecError
from rpt_transfer.spec import ObservationalStudy, load_study, parse_study


def test_tiny_study_loads(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path / "s.yaml", tiny_study(str(tmp_path / "store"))))
    assert isinstance(study, ObservationalStudy)
    assert study.sampling_for("smoke_arith").n == 2


def test_smoke_study_loads() -> None:
    study = load_study(Path(__file__).parents[1] / "studies" / "smoke.yaml")
    assert study.sampling_for("smoke_facts").temperature == 0.0
    assert study.sampling_for("smoke_arith").temperature == 0.5


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sampling": {"temprature": 0.5}}, "s.yaml: sampling.temprature: unknown field"),
        ({"sampling": {"temperature": -1}}, "s.yaml: sampling.temperature: "),
        (
            {"benchmarks": ["smoke_arth"]},
            "benchmarks[0]: unknown benchmark 'smoke_arth' (did you mean smoke_arith",
        ),
        ({"kind": "observatonal"}, "kind: `kind` must be `observational` or `interventional`"),
        ({"study": "Bad Name"}, "study: String should match pattern"),
        (
            {"study": "leaderboard"},
            "study: Value error, 'leaderboard' is reserved: rpt-transfer/leaderboard is the",
        ),
        (
            {"overrides": {"gsm8k": {"n": 4}}},
            "overrides.gsm8k: not a benchmark of this study; accepted: smoke_arith",
        ),
        (
            {
                "pairs": [
                    {"name": "p", "rpt": "nope", "base": "base", "domains": ["math"], "algorithm": "grpo"}
                ]
            },
            "pairs[0].rpt: unknown model 'nope'; accepted: base, rpt",
        ),
        (
            {
                "pairs": [
                    {"name": "p", "rpt": "rpt", "base": "base", "domains": ["chemistry"], "algorithm": "grpo"}
                ]
            },
            "pairs[0].domains[0]: Input should be 'math', 'code' or 'knowledge'",
        ),
        ({"models": {"m": {"hub": "org/model"}}}, "models.m: Value error, a hub model needs `revision`"),
        (
            {"scoring": {"missing_toolchains": "ignore"}},
            "scoring.missing_toolchains: Input should be 'fail' or 'exclude'",
        ),
        ({"scoring": {"toolchains": "exclude"}}, "scoring.toolchains: unknown field"),
        (
            {"models": {"m": {"hub": "org/model", "revision": "abc", "path": "checkpoints/x"}}},
            "models.m: Value error, give exactly one of hub, path or tiny (got hub, path)",
        ),
    ],
)
def test_spec_errors_name_file_field_and_accepted(tmp_path: Path, change: dict, expected: str) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_study("store", **change))
    with pytest.raises(SpecError) as caught:
        load_study(path)
    assert any(expected in line for line in caught.value.problems), caught.value.problems
    assert all(line.startswith(f"{path}: ") for line in caught.value.problems)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    study = tiny_study("store", sampling={"n": 0, "colour": "red"}, benchmarks=["nope"])
    with pytest.raises(SpecError) as caught:
        load_study(write_study(tmp_path / "s.yaml", study))
    # field problems first; of the cross-field checks, unknown benchmark names are reported with them
    assert len(caught.value.problems) == 3
    assert "benchmarks[0]: unknown benchmark 'nope'" in caught.value.problems[-1]
    assert "(and 2 more problems)" in str(caught.value)


def test_cross_field_problems_together(tmp_path: Path) -> None:
    study = tiny_study("store", benchmarks=["nope", "smoke"])
    study["models"]["rpt"]["tiny"]["init"] = "ghost"
    with pytest.raises(SpecError) as caught:
        load_study(write_study(tmp_path / "s.yaml", study))
    text = "\n".join(caught.value.problems)
    assert "benchmarks[0]: unknown benchmark 'nope'" in text
    assert "models.rpt.tiny.init: 'ghost' is not a tiny model; accepted: base" in text


def test_init_cycle_is_refused() -> None:
    study = tiny_study("store")
    study["models"]["base"]["tiny"]["init"] = "rpt"
    import yaml

    with pytest.raises(SpecError, match="cycle"):
        parse_study(yaml.safe_dump(study), "s.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("study: [unclosed\nkind: x\n", "s.yaml: malformed YAML at line 2, column 5"),
        ("- a list", "s.yaml: expected a mapping"),
        ("", "s.yaml: expected a mapping"),
    ],
)
def test_malformed_yaml(text: str, expected: str) -> None:
    with pytest.raises(SpecError, match="^" + expected.replace("(", r"\(")):
        parse_study(text, "s.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such study file"):
        load_study(tmp_path / "absent.yaml")


INTERVENTIONAL = """
study: canary
kind: interventional
models: {base: {tiny: {corpus: {smoke_arith: 10}, steps: 2}}}
base: base
training: {learning_rate: 0.001, steps: 10, max_new_tokens: 8}
train: [{name: math-grpo, domain: math, data: {benchmark: smoke_arith, examples: 64}}]
benchmarks: [smoke]
"""


def test_interventional_study_validates() -> None:
    study = parse_study(INTERVENTIONAL, "i.yaml")
    assert study.kind == "interventional"
    assert study.hyper_for(study.train[0]).rollouts_per_prompt == 8


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "domain: math,",
            "domain: math, algorithm: ppo2,",
            "train[0].algorithm: Input should be 'grpo', 'dr_grpo', 'dapo' or 'reinforce++' (got 'ppo2')",
        ),
        ("steps: 10,", "steps: 10, learning_rat: 0.1,", "training.learning_rat: unknown field"),
        (
            "steps: 10,",
            "steps: 10, epochs: 2,",
            "training: Value error, give exactly one of `steps` or `epochs`",
        ),
        (
            "examples: 64}",
            "examples: 64}, hyperparameters: {lr: 0.1}",
            "train[0].hyperparameters.lr: unknown hyperparameter; accepted: checkpoint_every, clip_epsilon",
        ),
        (
            "examples: 64}",
            "examples: 64}, hyperparameters: {rollouts_per_prompt: 1}",
            "train[0].hyperparameters.rollouts_per_prompt: Input should be greater than or equal to 2",
        ),
        (
            "benchmark: smoke_arith, examples: 64",
            "benchmark: gsm8k, examples: 64",
            "gsm8k has no training split",
        ),
        ("benchmark: smoke_arith, examples: 64", "path: /nonexistent.jsonl, scorer: math", "no such file"),
        (
            "benchmark: smoke_arith, examples: 64",
            "path: /etc/hostname, scorer: maths",
            "unknown scorer 'maths'",
        ),
        (
            "benchmark: smoke_arith, examples: 64",
            "benchmark: smoke_arith",
            "`benchmark` data needs `examples`",
        ),
        ("base: base\n", "base: nope\n", "base: unknown model 'nope'; accepted: base"),
        ("name: math-grpo", "name: base", "train[0].name: 'base' is already a model"),
        ("training: {learning_rate: 0.001, steps: 10, max_new_tokens: 8}\n", "", "training: Field required"),
    ],
)
def test_training_errors_name_the_field_and_what_is_accepted(old: str, new: str, expected: str) -> None:
    assert old in INTERVENTIONAL
    with pytest.raises(SpecError) as err:
        parse_study(INTERVENTIONAL.replace(old, new), "i.yaml")
    assert expected in str(err.value), str(err.value)


def test_unpinned_revision_is_allowed_but_flagged() -> None:
    pinned = parse_study(_hub_study("0123456789abcdef0123456789abcdef01234567"), "h.yaml")
    loose = parse_study(_hub_study("main"), "h.yaml")
    assert pinned.models["r"].pinned() and not loose.models["r"].pinned()


def _hub_study(revision: str) -> str:
    return f"""
study: hub
kind: observational
models:
  r: {{hub: org/rpt, revision: "{revision}"}}
  b: {{hub: org/base, revision: "{revision}"}}
pairs: [{{name: p, rpt: r, base: b, domains: [math], algorithm: grpo}}]
benchmarks: [smoke_arith]
"""
