"""RL data domains from declared datasets through the curated table: known, other, unknown, malformed."""

import re

import pytest

from rpt_transfer.discovery.rl_domains import (
    TABLE_VERSION,
    declared_datasets,
    infer_domains,
    lookup,
    parse_table,
)


@pytest.mark.parametrize(
    ("dataset_id", "domains"),
    [
        ("agentica-org/DeepScaleR-Preview-Dataset", ("math",)),
        ("PrimeIntellect/verifiable-coding-problems", ("code",)),
        ("likaixin/TACO-verified", ("code",)),
        ("livecodebench/code_generation_lite", ("code",)),
        ("PRIME-RL/Eurus-2-RL-Data", ("code", "math")),
        ("Skywork/Skywork-OR1-RL-Data", ("code", "math")),
        ("FreedomIntelligence/medical-o1-verifiable-problem", ("knowledge",)),
        ("TheFinAI/Fino1_Reasoning_Path_FinQA", ("knowledge",)),
        ("allenai/RLVR-GSM", ("math",)),
        ("BytedTsinghua-SIA/DAPO-Math-17k", ("math",)),
        ("openai/gsm8k", ("math",)),
    ],
)
def test_known_rl_datasets_map_to_their_domains(dataset_id, domains) -> None:
    finding = infer_domains([dataset_id])
    assert (finding.domains, finding.unknown) == (domains, ())
    assert finding.evidence[0][:2] == ("dataset", dataset_id) and TABLE_VERSION in finding.evidence[0].detail


def test_the_deepcoder_card_datasets_are_code() -> None:
    card = {"datasets": ["PrimeIntellect/verifiable-coding-problems", "likaixin/TACO-verified",
                         "livecodebench/code_generation_lite"]}  # fmt: skip
    assert infer_domains(declared_datasets([], card)).domains == ("code",)


def test_domains_of_several_datasets_are_their_sorted_union() -> None:
    finding = infer_domains(
        ["FreedomIntelligence/medical-o1-verifiable-problem", "openai/gsm8k", "BAAI/TACO"]
    )
    assert finding.domains == ("code", "knowledge", "math")
    assert len(finding.evidence) == 3


def test_other_data_is_known_without_a_domain() -> None:
    finding = infer_domains(["allenai/RLVR-IFeval"])
    assert (finding.domains, finding.unknown) == ((), ())
    assert "in no platform domain (instruction following (other))" in finding.evidence[0].detail


def test_a_mix_with_other_data_says_so() -> None:
    finding = infer_domains(["allenai/RLVR-GSM-MATH-IF-Mixed-Constraints"])
    assert finding.domains == ("math",) and "instruction-following" in finding.evidence[0].detail


def test_an_unknown_dataset_stays_unknown_even_when_its_name_says_math() -> None:
    finding = infer_domains(["someone/my-math-rl-prompts", "openai/gsm8k"])
    assert finding == (("math",), ("someone/my-math-rl-prompts", "openai/gsm8k"), ("someone/my-math-rl-prompts",),
                       finding.evidence)  # fmt: skip
    assert [e.value for e in finding.evidence] == ["openai/gsm8k"]


def test_a_case_insensitive_match_is_noted() -> None:
    finding = infer_domains(["prime-rl/eurus-2-rl-data"])
    assert finding.domains == ("code", "math")
    assert "matched PRIME-RL/Eurus-2-RL-Data ignoring letter case" in finding.evidence[0].detail


def test_a_legacy_alias_is_noted() -> None:
    finding = infer_domains(["gsm8k"])
    assert finding.domains == ("math",) and "an alias of openai/gsm8k" in finding.evidence[0].detail
    assert lookup("gsm8k").how == "alias" and lookup("openai/gsm8k").how == "exact"


def test_no_datasets_no_domains() -> None:
    assert infer_domains([]) == ((), (), (), ())


def test_declared_datasets_from_tags_then_card_in_order_without_duplicates() -> None:
    tags = ["transformers", "dataset:AI-MO/NuminaMath-CoT", "dataset:KbsdJames/Omni-MATH", "license:mit"]
    card = {"datasets": ["AI-MO/NuminaMath-CoT", " https://huggingface.co/datasets/hendrycks/competition_math/ ",
                         "ai-mo/numinamath-cot", "", None]}  # fmt: skip
    assert declared_datasets(tags, card) == (
        "AI-MO/NuminaMath-CoT",
        "KbsdJames/Omni-MATH",
        "hendrycks/competition_math",
    )


def test_declared_datasets_reads_a_string_card_field() -> None:
    assert declared_datasets([], {"datasets": "TheFinAI/Fino1_Reasoning_Path_FinQA"}) == (
        "TheFinAI/Fino1_Reasoning_Path_FinQA",
    )


def test_declared_datasets_without_a_card() -> None:
    assert declared_datasets(["dataset:openai/gsm8k"], None) == ("openai/gsm8k",)


def test_infer_domains_normalises_its_input() -> None:
    finding = infer_domains(["https://huggingface.co/datasets/openai/gsm8k", "openai/gsm8k"])
    assert finding.datasets == ("openai/gsm8k",)


def test_the_packaged_table_is_versioned() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.\d+", TABLE_VERSION)


GOOD = """
version: "2026-12-07.1"
datasets:
  org/ok: {domains: [math], why: w, source: s}
"""


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("org/bad: {domains: [science], why: w, source: s}", "datasets.org/bad.domains.0"),
        ("org/bad: {domains: [], why: w, source: s}", "needs a `note`"),
        ("org/bad: {domains: [math, math], why: w, source: s}", "repeat a domain"),
        ("org/bad: {domains: [math], source: s}", "datasets.org/bad.why"),
        ("org/bad: {domains: [math], why: w, source: s, colour: red}", "datasets.org/bad.colour"),
        ("bad: {domains: [math], why: w, source: s}", "'bad' is not a Hub dataset id"),
        (
            "org/bad: {domains: [math], why: w, source: s, aliases: [ORG/OK]}",
            "'ORG/OK' of org/bad is already org/ok",
        ),
    ],
)
def test_a_malformed_table_names_the_entry(entry, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        parse_table(f"{GOOD}  {entry}\n", "rl_datasets.yaml")
    assert str(raised.value).startswith("rl_datasets.yaml: ")


def test_a_table_without_a_dated_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        parse_table(GOOD.replace("2026-12-07.1", "latest"))


def test_the_card_data_object_of_huggingface_hub_is_read_like_a_mapping() -> None:
    from huggingface_hub import ModelCardData

    card = ModelCardData(datasets="Skywork/Skywork-OR1-RL-Data", license="apache-2.0")
    assert declared_datasets([], card) == ("Skywork/Skywork-OR1-RL-Data",)
