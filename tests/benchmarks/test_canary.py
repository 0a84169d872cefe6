"""The canary benchmarks: reproducible, train and test disjoint, gold scored right by the real scorers."""

import pytest

from rpt_transfer.benchmarks import SUITES, canary_code, canary_knowledge, canary_math, expand, get_benchmark
from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.jobs.pretrain import corpus, training_seed
from rpt_transfer.scoring import get_scorer

MODULES = {"canary_math": canary_math, "canary_code": canary_code, "canary_knowledge": canary_knowledge}
TRAINING_DRAW = 5000


def training_items(bench: BenchmarkSpec, count: int, recipe_seed: int = 0) -> list[Item]:
    """What the pretrain and train jobs draw: the benchmark's generator under a training seed."""
    seed = training_seed(recipe_seed, bench.name)
    return [bench.to_item(record) for record in bench.source.generator(seed, count)]


def test_suite_lists_the_three() -> None:
    assert [b.name for b in expand(["canary"])] == list(SUITES["canary"]) == list(MODULES)


@pytest.mark.parametrize("name", list(MODULES))
def test_generators_are_reproducible_and_prompts_state_the_format(name: str) -> None:
    bench = get_benchmark(name)
    first, again = bench.items(), bench.items()
    assert first == again and len(first) == bench.size()
    assert len({item.id for item in first}) == len(first)
    assert bench.identity() == bench.identity()
    for item in first:
        prompt = bench.render_prompt(item)
        assert (
            "Reply with the code only." in prompt
            if bench.scorer == "code_function"
            else "ANSWER: <" in prompt
        )
    assert training_items(bench, 20) == training_items(bench, 20)
    assert training_items(bench, 20) != training_items(bench, 20, recipe_seed=1)


@pytest.mark.parametrize("name", list(MODULES))
def test_training_draws_never_contain_a_test_prompt(name: str) -> None:
    bench = get_benchmark(name)
    assert bench.source.seed == MODULES[name].TEST_SEED
    test_prompts = {bench.render_prompt(item) for item in bench.items()}
    train_prompts = {bench.render_prompt(item) for item in training_items(bench, TRAINING_DRAW)}
    assert test_prompts.isdisjoint(train_prompts)


def test_knowledge_test_creatures_only_in_documents() -> None:
    bench = get_benchmark("canary_knowledge")
    tested = {item.metadata["creature"] for item in bench.items()}
    assert tested == canary_knowledge.test_creatures()
    trained = {item.metadata["creature"] for item in training_items(bench, 2000)}
    assert trained.isdisjoint(tested) and trained | tested == set(canary_knowledge.world())
    read = " ".join(canary_knowledge.documents(3, len(canary_knowledge.world())))
    for creature in canary_knowledge.world():
        for key in canary_knowledge.ATTRIBUTES:
            assert canary_knowledge.statement(creature, key) in read


def test_pretraining_corpus_uses_demonstrations_and_documents() -> None:
    entries = {name: {"benchmark": get_benchmark(name).identity(), "count": 3} for name in MODULES}
    texts = corpus(entries, 0, "chat")
    assert len(texts) == 3 * 3 + 3  # three demonstrations each, and three knowledge documents
    code = training_items(get_benchmark("canary_code"), 1)[0]
    assert any(text.endswith(f"<|assistant|>{code.metadata['solution']}") for text in texts)
    assert any(text.startswith("The ") and "<|user|>" not in text for text in texts)
    assert any("<|assistant|>ANSWER: " in text for text in texts)


def _other_reference(items: list[Item], index: int) -> str:
    """The reference of another item that is a different answer (another letter, number or function)."""
    reference = items[index].reference
    return next(o.reference for o in items[index + 1 :] + items[:index] if o.reference != reference)


@pytest.mark.parametrize("name", ["canary_math", "canary_knowledge"])
def test_gold_answers_score_right_and_others_wrong(name: str) -> None:
    bench = get_benchmark(name)
    items = bench.items()[:40]
    gold = [(bench.demonstrate(item), item.reference) for item in items]
    wrong = [(f"ANSWER: {_other_reference(items, i)}", item.reference) for i, item in enumerate(items)]
    verdicts = get_scorer(bench.scorer).verify_many(gold + wrong, [None] * (2 * len(items)))
    assert [v.correct for v in verdicts] == [1.0] * len(items) + [0.0] * len(items)


def test_gold_functions_pass_in_the_sandbox_and_others_fail(sandbox_ready: None) -> None:
    bench = get_benchmark("canary_code")
    items = bench.items()[:8]
    gold = [(bench.demonstrate(item), item.reference) for item in items]
    fenced = [(f"```python\n{bench.demonstrate(item)}\n```", item.reference) for item in items[:2]]
    wrong = []
    for index, item in enumerate(items):
        other = next(
            o for o in items[index + 1 :] + items[:index] if o.metadata["kind"] != item.metadata["kind"]
        )
        other_code = str(other.metadata["solution"])
        name = item.prompt_vars["signature"].split("(")[0]
        wrong.append((f"def {name}{other_code[other_code.index('(') :]}", item.reference))  # right name
    verdicts = get_scorer(bench.scorer).verify_many(gold + fenced + wrong, [None] * 18)
    assert [v.correct for v in verdicts] == [1.0] * 10 + [0.0] * 8, [v.explanation for v in verdicts]
