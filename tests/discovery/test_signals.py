"""RL evidence from tags, card fields, card text and names: one behaviour per test, on Hub-shaped inputs."""

import pytest

from rpt_transfer.discovery.signals import Evidence, prefilter, rl_finding

HUB_TAGS = ["transformers", "safetensors", "qwen2", "text-generation", "conversational", "autotrain_compatible",
            "text-generation-inference", "endpoints_compatible", "region:us"]  # fmt: skip
BASE = "Qwen/Qwen2.5-1.5B-Instruct"
LINEAGE = [f"base_model:{BASE}", f"base_model:finetune:{BASE}"]


def trl_card(trainer: str, paper: str | None) -> str:
    """A README as TRL 1.16's lm_model_card.md template renders it (hf-hub.md §5.1)."""
    cited = (
        f", a method introduced in [{paper[0]}](https://huggingface.co/papers/{paper[1]})" if paper else ""
    )
    return (
        f"---\nbase_model: {BASE}\nlibrary_name: transformers\nmodel_name: out\ntags:\n- generated_from_trainer\n"
        f"- trl\n- {trainer.lower()}\nlicence: license\n---\n\n# Model Card for out\n\n"
        f"This model is a fine-tuned version of [{BASE}](https://huggingface.co/{BASE}).\n"
        "It has been trained using [TRL](https://github.com/huggingface/trl).\n\n## Quick start\n\n"
        '```python\nfrom transformers import pipeline\ngenerator = pipeline("text-generation", model="x/out")\n```\n\n'
        f"## Training procedure\n\nThis model was trained with {trainer}{cited}.\n\n### Framework versions\n\n"
        "- TRL: 1.16.0\n- Transformers: 5.1.0\n\n## Citations\n\n```bibtex\n@article{x, title={DAPO and PPO}}\n```\n"
    )


GRPO_CARD = trl_card("GRPO", ("DeepSeekMath: Pushing the Limits of Mathematical Reasoning", "2402.03300"))
DPO_CARD = trl_card("DPO", ("Direct Preference Optimization", "2305.18290"))
DEEPSCALER_CARD = (
    "## DeepScaleR Overview\nDeepScaleR-1.5B-Preview is a language model fine-tuned from "
    "DeepSeek-R1-Distilled-Qwen-1.5B using distributed reinforcement learning (RL) to scale up to long context "
    "lengths.\n\n## Training Recipe\nWe employ Deepseek's Group Relative Policy Optimization (GRPO), a "
    "simplified RL algorithm that extends PPO.\n"
)


def kinds(evidence: tuple[Evidence, ...]) -> set[tuple[str, str]]:
    return {(e.kind, e.value) for e in evidence}


def test_a_trl_grpo_card_is_high_confidence_grpo() -> None:
    tags = [*HUB_TAGS, "generated_from_trainer", "trl", "grpo", "arxiv:2402.03300", *LINEAGE]
    finding = rl_finding("someone/Qwen2.5-1.5B-Math", tags, {"tags": ["trl", "grpo"]}, GRPO_CARD)
    assert (finding.rl, finding.algorithm, finding.confidence) == (True, "grpo", "high")
    assert {("tag", "grpo"), ("arxiv", "arxiv:2402.03300")} <= kinds(finding.evidence)
    assert any(e.value.startswith("This model was trained with GRPO") for e in finding.evidence)
    assert finding.against == ()


def test_the_trl_card_sentence_alone_is_high() -> None:
    finding = rl_finding("someone/model", HUB_TAGS, None, trl_card("RLOO", ("Back to Basics", "2402.14740")))
    assert (finding.rl, finding.algorithm, finding.confidence) == (True, "rloo", "high")


def test_a_trl_trainer_tag_without_trl_is_a_hand_added_tag_and_medium() -> None:
    finding = rl_finding("someone/model", [*HUB_TAGS, "grpo"], None, None)
    assert (finding.rl, finding.algorithm, finding.confidence) == (True, "grpo", "medium")
    assert "added by the author" in finding.evidence[0].detail


def test_ppo_with_trl_is_high() -> None:
    finding = rl_finding("someone/model", [*HUB_TAGS, "trl", "ppo"], None, None)
    assert (finding.rl, finding.algorithm, finding.confidence) == (True, "ppo", "high")


@pytest.mark.parametrize(
    ("tag", "kind", "algorithm"),
    [
        ("verl", "library", None),
        ("openrlhf", "library", None),
        ("rlvr", "tag", "rlvr"),
        ("dapo", "tag", "dapo"),
    ],
)
def test_an_rl_library_or_method_tag_alone_is_medium_and_confirms(tag, kind, algorithm) -> None:
    finding = rl_finding("someone/Qwen2.5-7B-Math", [*HUB_TAGS, tag], None, None)
    assert (finding.rl, finding.confidence, finding.algorithm) == (True, "medium", algorithm)
    assert finding.evidence[0].kind == kind


@pytest.mark.parametrize(
    ("arxiv", "algorithm"),
    [("2402.03300", "grpo"), ("2402.14740", "rloo"), ("2503.14476", "dapo"), ("2502.01456", "prime"),
     ("2501.03262", "reinforce++")],
)  # fmt: skip
def test_an_rl_arxiv_id_alone_is_medium_with_its_algorithm(arxiv, algorithm) -> None:
    finding = rl_finding("someone/model", [*HUB_TAGS, f"arxiv:{arxiv}"], None, None)
    assert (finding.rl, finding.confidence, finding.algorithm) == (True, "medium", algorithm)
    assert finding.evidence[0].kind == "arxiv"


def test_citing_the_deepseek_r1_paper_is_no_evidence() -> None:
    finding = rl_finding("someone/model", [*HUB_TAGS, "arxiv:2501.12948"], None, None)
    assert (finding.rl, finding.confidence, finding.evidence) == (False, "none", ())


def test_a_name_pattern_alone_never_confirms() -> None:
    finding = rl_finding("someone/Qwen2.5-7B-GRPO", HUB_TAGS, None, None)
    assert (finding.rl, finding.confidence, finding.algorithm) == (False, "low", "grpo")
    assert finding.evidence == (Evidence("name", "GRPO", finding.evidence[0].detail),)


@pytest.mark.parametrize(
    "name", ["MiMo-7B-RL", "Qwen2.5-Math-7B-Oat-Zero", "Eurus-2-7B-PRIME", "ppo_math_7b"]
)
def test_name_patterns_are_low(name) -> None:
    assert rl_finding(f"org/{name}", HUB_TAGS, None, None).confidence == "low"


@pytest.mark.parametrize("name", ["DeepSeek-R1-Distill-Qwen-7B", "Light-R1-7B-DS", "Prime-Intellect-7B"])
def test_r1_and_other_near_misses_in_a_name_are_no_evidence(name) -> None:
    finding = rl_finding(f"org/{name}", HUB_TAGS, None, None)
    assert (finding.rl, finding.confidence) == (False, "none")
    assert not prefilter(f"org/{name}", HUB_TAGS)


def test_a_trl_dpo_model_is_not_rl() -> None:
    tags = [*HUB_TAGS, "generated_from_trainer", "trl", "dpo", "arxiv:2305.18290", *LINEAGE]
    finding = rl_finding("someone/Qwen2.5-1.5B-DPO", tags, None, DPO_CARD)
    assert (finding.rl, finding.confidence, finding.evidence) == (False, "none", ())
    assert ("tag", "dpo") in kinds(finding.against)
    assert any("trained with DPO" in e.detail for e in finding.against)


@pytest.mark.parametrize("tag", ["dpo", "kto", "orpo", "cpo", "simpo", "sft", "online-dpo"])
def test_a_tag_against_keeps_a_medium_signal_from_confirming(tag) -> None:
    finding = rl_finding("someone/model", [*HUB_TAGS, "trl", tag, "arxiv:2402.03300"], None, None)
    assert (finding.rl, finding.confidence, finding.algorithm) == (False, "low", "grpo")
    assert finding.against[0].value == tag


def test_a_high_signal_confirms_despite_a_preference_tag() -> None:
    finding = rl_finding("someone/model", [*HUB_TAGS, "trl", "dpo", "grpo"], None, None)
    assert (finding.rl, finding.confidence) == (True, "high")
    assert ("tag", "dpo") in kinds(finding.against)


def test_the_reinforcement_learning_pipeline_tag_counts_against() -> None:
    tags = [
        "stable-baselines3",
        "LunarLander-v2",
        "deep-reinforcement-learning",
        "reinforcement-learning",
        "ppo",
    ]
    finding = rl_finding("sb3/ppo-LunarLander-v2", tags, None, None)
    assert (finding.rl, finding.confidence) == (False, "low")
    assert finding.against[0].value == "reinforcement-learning"
    assert "game and robotics agents" in finding.against[0].detail


def test_a_positive_card_sentence_is_high_and_takes_the_algorithm_named_elsewhere() -> None:
    finding = rl_finding("agentica-org/DeepScaleR-1.5B-Preview", HUB_TAGS, None, DEEPSCALER_CARD)
    assert (finding.rl, finding.confidence, finding.algorithm) == (True, "high", "grpo")
    assert finding.evidence[0].value.startswith("DeepScaleR-1.5B-Preview is a language model fine-tuned")


@pytest.mark.parametrize(
    "text",
    [
        "Unlike GRPO-trained models, this model is trained with supervised fine-tuning only.",
        "We did not use reinforcement learning; the model was trained on distilled traces.",
        "The model was trained with SFT rather than GRPO.",
        "Our SFT model outperforms RL-trained models such as DeepScaleR.",
    ],
)
def test_a_negated_or_comparative_sentence_does_not_confirm(text) -> None:
    finding = rl_finding("someone/model", HUB_TAGS, None, f"# Model\n\n{text}\n")
    assert (finding.rl, finding.confidence) == (False, "none")
    assert "negated or comparative" in finding.against[0].detail


def test_a_negated_sentence_does_not_undo_a_medium_tag() -> None:
    card = "We train with GRPO without a KL penalty."
    finding = rl_finding("someone/model", [*HUB_TAGS, "verl"], None, card)
    assert (finding.rl, finding.confidence) == (True, "medium")


def test_an_rl_method_named_without_a_training_verb_is_low() -> None:
    finding = rl_finding(
        "someone/model", HUB_TAGS, None, "| Model | AIME |\n|---|---|\n| Open-RS (GRPO) | 28.9 |\n"
    )
    assert (finding.rl, finding.confidence, finding.algorithm) == (False, "low", "grpo")


@pytest.mark.parametrize(
    "text",
    [
        "We trained on BytedTsinghua-SIA/DAPO-Math-17k and DAPO-Math prompts with supervised learning.",
        "We fine-tuned the model to approach prime number problems step by step.",
        "Fine-tuned with the train_grpo.py script's SFT mode.",
    ],
)
def test_method_names_inside_other_words_do_not_count(text) -> None:
    assert rl_finding("someone/model", HUB_TAGS, None, text).confidence == "none"


def test_code_blocks_and_front_matter_are_not_card_prose() -> None:
    card = "---\ntags:\n- text\n---\n# Model\n\n```bash\npython train.py --algo grpo --trainer ppo\n```\n"
    assert rl_finding("someone/model", HUB_TAGS, None, card).confidence == "none"


@pytest.mark.parametrize(
    ("text", "algorithm"),
    [
        ("We train Qwen2.5-Math-7B with Dr. GRPO on MATH level 3-5.", "dr_grpo"),
        ("The policy was trained with REINFORCE++ in OpenRLHF.", "reinforce++"),
        ("Eurus-2-7B-PRIME is trained using PRIME, with RLOO advantages and a PPO loss.", "prime"),
        ("We trained it with RLVR on GSM8K and MATH.", "rlvr"),
    ],
)
def test_card_text_names_the_algorithm(text, algorithm) -> None:
    finding = rl_finding("someone/model", HUB_TAGS, None, text)
    assert (finding.confidence, finding.algorithm) == ("high", algorithm)


def test_the_most_specific_algorithm_wins() -> None:
    finding = rl_finding("someone/model", [*HUB_TAGS, "trl", "grpo", "dapo"], None, None)
    assert finding.algorithm == "dapo"


def test_a_declared_rl_dataset_is_medium_evidence() -> None:
    card = {"datasets": ["BytedTsinghua-SIA/DAPO-Math-17k"], "base_model": BASE}
    finding = rl_finding("someone/model", HUB_TAGS, card, None)
    assert (finding.rl, finding.confidence) == (True, "medium")
    assert finding.evidence[0][:2] == ("dataset", "BytedTsinghua-SIA/DAPO-Math-17k")


def test_a_general_dataset_is_no_rl_evidence() -> None:
    finding = rl_finding(
        "someone/model", [*HUB_TAGS, "dataset:openai/gsm8k"], {"datasets": "openai/gsm8k"}, None
    )
    assert (finding.rl, finding.confidence) == (False, "none")


def test_nothing_known_is_none() -> None:
    assert rl_finding("Qwen/Qwen2.5-7B-Instruct", [*HUB_TAGS, *LINEAGE], None, "") == (
        False,
        None,
        "none",
        (),
        (),
    )


@pytest.mark.parametrize(
    ("model_id", "tags"),
    [
        ("someone/model", ["trl", "grpo"]),
        ("someone/model", ["verl"]),
        ("someone/model", ["arxiv:2402.03300"]),
        ("someone/model", ["dataset:agentica-org/DeepScaleR-Preview-Dataset"]),
        ("someone/Qwen2.5-7B-GRPO", []),
    ],
)
def test_prefilter_passes_any_rl_signal_in_a_list_result(model_id, tags) -> None:
    assert prefilter(model_id, [*HUB_TAGS, *tags])


@pytest.mark.parametrize(
    ("model_id", "tags"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", LINEAGE),
        ("someone/model", ["trl", "dpo", "dataset:openai/gsm8k"]),
        ("sb3/ppo-LunarLander-v2", ["stable-baselines3", "reinforcement-learning"]),
    ],
)
def test_prefilter_skips_models_without_an_rl_signal(model_id, tags) -> None:
    assert not prefilter(model_id, [*HUB_TAGS, *tags])
