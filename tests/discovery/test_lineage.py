"""The declared base and relation: the pairing rule of hf-hub.md §1.8, one behaviour per test."""

import pytest

from rpt_transfer.discovery.lineage import hub_id, parentage

MODEL = "agentica-org/DeepScaleR-1.5B-Preview"
BASE = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
OTHER = "Qwen/Qwen2.5-Math-1.5B"
HUB_TAGS = ["transformers", "safetensors", "qwen2", "text-generation", "license:mit", "region:us"]


def test_base_models_as_the_hub_serves_it_decides_first() -> None:
    base_models = {"relation": "finetune", "models": [{"_id": "678e0d1b", "id": BASE}]}
    found = parentage(MODEL, base_models, [*HUB_TAGS, f"base_model:quantized:{OTHER}"], {"base_model": OTHER})
    assert found[:3] == ("finetune", (BASE,), "baseModels")
    assert found.evidence[0].kind == "relation" and BASE in found.evidence[0].value


def test_base_models_as_a_list_of_groups() -> None:
    base_models = [{"relation": "adapter", "models": [{"id": BASE}]}]
    assert parentage(MODEL, base_models, HUB_TAGS, None)[:3] == ("adapter", (BASE,), "baseModels")


def test_base_models_as_a_list_of_ids_takes_the_relation_from_the_relation_tags() -> None:
    found = parentage(MODEL, [BASE], [*HUB_TAGS, f"base_model:quantized:{BASE}"], None)
    assert found[:3] == ("quantized", (BASE,), "baseModels")
    assert any("relation tags" in e.detail for e in found.evidence)


def test_base_models_as_id_dicts_without_a_relation_is_a_finetune_of_one_parent() -> None:
    found = parentage(MODEL, [{"id": BASE}], HUB_TAGS, None)
    assert found[:3] == ("finetune", (BASE,), "baseModels")
    assert any(e.detail.startswith("no relation stated") for e in found.evidence)


def test_several_parents_without_a_relation_are_a_merge() -> None:
    assert parentage(MODEL, [BASE, OTHER], HUB_TAGS, None)[:2] == ("merge", (BASE, OTHER))


def test_an_explicit_relation_holds_for_several_parents() -> None:
    base_models = {"relation": "finetune", "models": [{"id": BASE}, {"id": OTHER}]}
    assert parentage(MODEL, base_models, HUB_TAGS, None)[:2] == ("finetune", (BASE, OTHER))


def test_relation_tags_decide_without_base_models() -> None:
    tags = ["transformers", "roberta", "dataset:squad_v2", "base_model:FacebookAI/roberta-base",
            "base_model:finetune:FacebookAI/roberta-base", "license:cc-by-4.0"]  # fmt: skip
    found = parentage("deepset/roberta-base-squad2", None, tags, None)
    assert found[:3] == ("finetune", ("FacebookAI/roberta-base",), "relation tag")
    assert (
        found.evidence == (found.evidence[0],)
        and found.evidence[0].value == "base_model:finetune:FacebookAI/roberta-base"
    )


def test_quantized_relation_tags() -> None:
    tags = [*HUB_TAGS, "gguf", f"base_model:{BASE}", f"base_model:quantized:{BASE}"]
    assert parentage("someone/DeepSeek-R1-Distill-Qwen-1.5B-GGUF", {}, tags, None)[:3] == (
        "quantized",
        (BASE,),
        "relation tag",
    )


def test_merge_relation_tags_list_every_parent() -> None:
    tags = [
        f"base_model:{BASE}",
        f"base_model:{OTHER}",
        f"base_model:merge:{BASE}",
        f"base_model:merge:{OTHER}",
    ]
    assert parentage("someone/merged", None, tags, None)[:2] == ("merge", (BASE, OTHER))


def test_conflicting_relation_tags_keep_the_most_cautious() -> None:
    tags = [f"base_model:finetune:{BASE}", f"base_model:adapter:{BASE}"]
    found = parentage(MODEL, None, tags, None)
    assert found.relation == "adapter"
    assert any("most cautious" in e.detail for e in found.evidence)


def test_a_bare_tag_takes_the_cards_base_model_relation() -> None:
    found = parentage(MODEL, None, [f"base_model:{BASE}"], {"base_model_relation": "adapter"})
    assert found[:3] == ("adapter", (BASE,), "base_model tag")
    assert ("card_field", "base_model_relation: adapter") in {(e.kind, e.value) for e in found.evidence}


def test_a_bare_tag_alone_is_assumed_a_finetune() -> None:
    found = parentage(MODEL, None, [f"base_model:{BASE}"], None)
    assert found[:3] == ("finetune", (BASE,), "base_model tag")


def test_an_unknown_base_model_relation_is_ignored_and_said() -> None:
    found = parentage(MODEL, None, [f"base_model:{BASE}"], {"base_model_relation": "distilled"})
    assert found.relation == "finetune"
    assert any("'distilled' is not one of" in e.detail for e in found.evidence)


@pytest.mark.parametrize(("value", "relation"), [(BASE, "finetune"), ([BASE, OTHER], "merge")])
def test_card_base_model_as_str_or_list(value, relation) -> None:
    found = parentage(MODEL, None, HUB_TAGS, {"base_model": value})
    assert (found.relation, found.source) == (relation, "cardData.base_model")
    assert found.parents == ((value,) if isinstance(value, str) else tuple(value))


@pytest.mark.parametrize("path", ["/workspace/checkpoints/global_step_500/actor", "./outputs", "checkpoint-500",
                                  "C:\\models\\qwen", "outputs/run1/checkpoint-500"])  # fmt: skip
def test_a_local_path_is_not_a_parent_and_the_evidence_says_so(path) -> None:
    found = parentage(MODEL, None, HUB_TAGS, {"base_model": path})
    assert found == (None, (), "none", found.evidence)
    assert found.evidence[0].kind == "card_field" and "not an org/name Hub id" in found.evidence[0].detail


def test_a_local_path_is_skipped_for_a_hub_id_beside_it() -> None:
    found = parentage(MODEL, None, HUB_TAGS, {"base_model": ["/workspace/sft", BASE]})
    assert found[:3] == ("finetune", (BASE,), "cardData.base_model")
    assert any("/workspace/sft" in e.detail for e in found.evidence)


def test_a_hub_url_is_tolerated() -> None:
    found = parentage(MODEL, None, HUB_TAGS, {"base_model": f"https://huggingface.co/{BASE}/"})
    assert found.parents == (BASE,)


def test_the_model_itself_is_not_its_own_parent() -> None:
    found = parentage(MODEL, None, [f"base_model:finetune:{MODEL}"], {"base_model": BASE})
    assert found[:3] == ("finetune", (BASE,), "cardData.base_model")
    assert any("names the model itself" in e.detail for e in found.evidence)


def test_ids_keep_their_case() -> None:
    assert parentage(MODEL, None, ["base_model:finetune:Qwen/QwQ-32B"], None).parents == ("Qwen/QwQ-32B",)


def test_no_declared_base_is_none() -> None:
    assert parentage(MODEL, None, HUB_TAGS, {"license": "mit"}) == (None, (), "none", ())


@pytest.mark.parametrize(
    ("value", "expected"),
    [(BASE, BASE), (f" https://huggingface.co/{BASE} ", BASE), ("gpt2", None), ("/abs/path", None), (None, None),
     ("https://example.com/a/b", None)],
)  # fmt: skip
def test_hub_id(value, expected) -> None:
    assert hub_id(value) == expected


def test_the_card_data_object_of_huggingface_hub_is_read_like_a_mapping() -> None:
    from huggingface_hub import ModelCardData

    card = ModelCardData(base_model=[BASE], base_model_relation="adapter", license="mit")
    assert parentage(MODEL, None, HUB_TAGS, card)[:3] == ("adapter", (BASE,), "cardData.base_model")
