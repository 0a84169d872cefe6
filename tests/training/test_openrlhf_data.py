"""The OpenRLHF prompt file: prompts as generation renders them, labels the reward reads, exact row counts.

The base model's tokenizer is the project's tiny character tokenizer, saved into a folder as a checkpoint
holds it (its chat template turns a user message into `<bos><|user|>text\\n<|assistant|>`).
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from rpt_transfer.errors import JobError
from rpt_transfer.generation.prompting import prompt_token_ids, render_prompt
from rpt_transfer.tiny.tokenizer import build_tokenizer
from rpt_transfer.training.config import TrainHyper
from rpt_transfer.training.data import TrainExample
from rpt_transfer.training.openrlhf_data import INPUT_KEY, LABEL_KEY, export_prompts, row_order
from rpt_transfer.training.reward_label import decode_label

EXAMPLES = [TrainExample(f"q{i}", f"What is {i} + 1?", str(i + 1)) for i in range(10)]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "base"
    build_tokenizer().save_pretrained(folder)
    return folder


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def export(model_dir: Path, out: Path, mode: str = "chat", rows: int = 10, seed: int = 0, **kwargs):
    return export_prompts(
        kwargs.get("examples", EXAMPLES),
        "math",
        kwargs.get("policy", "strict"),
        mode,
        model_dir,
        rows,
        seed,
        out,
    )


def test_chat_prompts_are_the_rendered_template_and_labels_decode(model_dir: Path, tmp_path: Path) -> None:
    info = export(model_dir, tmp_path / "prompts.jsonl")
    rows = read(info.path)
    tokenizer = build_tokenizer()
    by_id = {row["id"]: row for row in rows}
    assert sorted(by_id) == sorted(e.id for e in EXAMPLES) and len(rows) == info.rows == 10
    for example in EXAMPLES:
        row = by_id[example.id]
        assert row[INPUT_KEY] == render_prompt(
            tokenizer, [{"role": "user", "content": example.prompt}], "chat"
        )
        assert row[INPUT_KEY] == f"<bos><|user|>{example.prompt}\n<|assistant|>"
        label = decode_label(row[LABEL_KEY])
        assert (label.scorer, label.reference, label.policy) == ("math", example.reference, "strict")
        assert set(label.strip) == {"<bos>", "<eos>", "<unk>", "<pad>"}
    assert info.max_prompt_tokens == max(len(e.prompt) + 4 for e in EXAMPLES)  # <bos><|user|>…\n<|assistant|>


def test_raw_prompts_carry_the_special_tokens_generation_adds(model_dir: Path, tmp_path: Path) -> None:
    info = export(model_dir, tmp_path / "prompts.jsonl", mode="raw", policy="flexible")
    tokenizer = build_tokenizer()
    for row in read(info.path):
        example = next(e for e in EXAMPLES if e.id == row["id"])
        assert row[INPUT_KEY] == "<bos>" + example.prompt  # generation tokenizes raw text with its BOS
        as_openrlhf = tokenizer(row[INPUT_KEY], add_special_tokens=False)["input_ids"]  # what OpenRLHF does
        assert as_openrlhf == prompt_token_ids(tokenizer, example.prompt, "raw")
        assert decode_label(row[LABEL_KEY]).policy == "flexible"
    assert info.max_prompt_tokens == max(len(e.prompt) + 1 for e in EXAMPLES)


@pytest.mark.parametrize(("steps", "epochs"), [(7, None), (None, 1.0), (None, 2.5), (None, 0.4)])
def test_the_file_holds_exactly_the_rows_of_the_run(
    model_dir: Path, tmp_path: Path, steps: int | None, epochs: float | None
) -> None:
    hyper = TrainHyper(steps=steps, epochs=epochs, prompts_per_step=4)
    rows = hyper.total_steps(len(EXAMPLES)) * hyper.prompts_per_step
    info = export(model_dir, tmp_path / "p.jsonl", rows=rows)
    ids = [row["id"] for row in read(info.path)]
    assert len(ids) == info.rows == rows
    counts = Counter(ids)
    whole, part = divmod(rows, len(EXAMPLES))
    per_example = sorted(counts.get(e.id, 0) for e in EXAMPLES)  # whole passes, then a part of one
    assert per_example == [whole] * (len(EXAMPLES) - part) + [whole + 1] * part
    for start in range(0, whole * len(EXAMPLES), len(EXAMPLES)):  # every whole pass has each example once
        assert sorted(ids[start : start + len(EXAMPLES)]) == sorted(e.id for e in EXAMPLES)


def test_the_order_is_reproducible_per_seed_and_differs_between_passes() -> None:
    order = row_order(10, 30, seed=3)
    assert order == row_order(10, 30, seed=3)
    assert order != row_order(10, 30, seed=4)
    passes = [order[i : i + 10] for i in range(0, 30, 10)]
    assert all(sorted(p) == list(range(10)) for p in passes)
    assert len({tuple(p) for p in passes}) == 3
    assert row_order(10, 25, seed=3) == order[:25]  # fewer rows: the same order, cut short


def test_same_inputs_give_the_same_bytes(model_dir: Path, tmp_path: Path) -> None:
    first = export(model_dir, tmp_path / "a.jsonl", rows=23, seed=5)
    second = export(model_dir, tmp_path / "b.jsonl", rows=23, seed=5)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert not list(tmp_path.glob(".*.partial"))


def test_chat_mode_without_a_chat_template_is_refused(tmp_path: Path) -> None:
    tokenizer = build_tokenizer()
    tokenizer.chat_template = None
    folder = tmp_path / "no-template"
    tokenizer.save_pretrained(folder)
    with pytest.raises(JobError) as err:
        export(folder, tmp_path / "p.jsonl")
    assert str(err.value) == f"base model in {folder} has no chat template; use prompt_mode raw"
    assert not (tmp_path / "p.jsonl").exists()
    assert export(folder, tmp_path / "p.jsonl", mode="raw").rows == 10  # raw mode needs no template


def test_bad_inputs_fail_in_one_line(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(JobError, match="at least 1 row, not 0"):
        export(model_dir, tmp_path / "p.jsonl", rows=0)
    with pytest.raises(JobError, match="no training examples"):
        export(model_dir, tmp_path / "p.jsonl", examples=[])
    with pytest.raises(JobError, match=r"base model in .*missing: its tokenizer cannot be loaded") as err:
        export(tmp_path / "missing", tmp_path / "p.jsonl")
    assert "\n" not in str(err.value)
