"""The fake Hub's model API against huggingface_hub 2.4.0 itself: the shapes hf-hub.md §1 documents.

If the fake drifted from what the client sends and expects, the discovery tests would prove nothing; these
pin the parts they rely on (repeated filters, sort, expand, absolute `Link` pagination, `Z` timestamps).
"""

import json
import urllib.request

import pytest
from hub_scene import BASE, BASE2, DAPO, GATED, GRPO, OLD, ORPHAN, populate

import servers_hub
from servers_hub import FakeHub

fake_hub = servers_hub.fake_hub


@pytest.fixture
def api(fake_hub: FakeHub):
    from huggingface_hub import HfApi

    populate(fake_hub)
    return HfApi(endpoint=fake_hub.url, token=False)


def test_filters_combine_with_and_and_sort_is_newest_first(fake_hub: FakeHub, api) -> None:
    grpo = [
        m.id
        for m in api.list_models(filter=[f"base_model:finetune:{BASE}", "trl", "grpo"], sort="created_at")
    ]
    assert grpo[0] == GRPO and OLD in grpo and GATED in grpo and ORPHAN not in grpo
    created = [
        m.created_at
        for m in api.list_models(filter=f"base_model:{BASE}", sort="created_at", expand=["createdAt"])
    ]
    assert created == sorted(created, reverse=True)
    assert [m.id for m in api.list_models(filter=f"base_model:{BASE2}", author="ivy")] == [DAPO]


def test_pages_are_linked_by_an_absolute_url_the_client_follows(fake_hub: FakeHub, api) -> None:
    fake_hub.page_size = 3
    everything = list(api.list_models(filter=f"base_model:{BASE}", expand=["tags"]))
    assert len(everything) == 8
    with urllib.request.urlopen(f"{fake_hub.url}/api/models?filter=base_model:{BASE}&expand=tags") as answer:
        link = answer.headers["Link"]
        first = json.load(answer)
    assert link.startswith(f"<{fake_hub.url}/api/models?") and link.endswith('&cursor=3>; rel="next"')
    assert [sorted(item) for item in first] == [["_id", "id", "tags"]] * 3


def test_the_list_endpoint_refuses_base_models_in_expand(api) -> None:
    from huggingface_hub.errors import BadRequestError

    with pytest.raises(BadRequestError):
        next(iter(api.list_models(filter=f"base_model:{BASE}", expand=["baseModels"])))


def test_model_info_expands_base_models_as_an_object_and_nothing_else(api) -> None:
    info = api.model_info(GRPO, expand=["baseModels", "sha"])
    assert info.base_models == {
        "relation": "finetune",
        "models": [{"_id": info.base_models["models"][0]["_id"], "id": BASE}],
    }
    assert info.tags is None and info.card_data is None and len(info.sha) == 40
    full = api.model_info(GRPO)
    assert (
        full.base_models is None
        and f"base_model:finetune:{BASE}" in full.tags
        and "dataset:openai/gsm8k" in full.tags
    )
    assert full.safetensors.total == 1_500_000_000 and full.card_data["datasets"] == ["openai/gsm8k"]


def test_timestamps_end_in_z(fake_hub: FakeHub, api) -> None:
    with urllib.request.urlopen(f"{fake_hub.url}/api/models/{GRPO}") as answer:
        body = json.load(answer)
    assert body["createdAt"].endswith("Z") and body["lastModified"].endswith("Z")
