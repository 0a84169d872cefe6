import random
import string
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from rpt_transfer.errors import RptError
from rpt_transfer.generation import GenRequest, SamplingParams
from rpt_transfer.generation.hf import HFBackend
from rpt_transfer.tiny import TinyConfig, build_model, build_tokenizer, train_lm
from rpt_transfer.tiny.tokenizer import SPECIAL_TOKENS

ARITHMETIC_STEPS = 500


def sums(count: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    return [(rng.randint(0, 20), rng.randint(0, 20)) for _ in range(count)]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def test_tokenizer_round_trips_every_character() -> None:
    tokenizer = build_tokenizer()
    text = "Q: 12 + 7 = ?\nA:  19\n\n" + "".join(c for c in string.printable if c not in "\t\r\x0b\x0c")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer(text)["input_ids"] == [tokenizer.bos_token_id, *ids]


def test_special_tokens_are_single_ids() -> None:
    tokenizer = build_tokenizer()
    for token in SPECIAL_TOKENS:
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
    assert (tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token) == ("<pad>", "<bos>", "<eos>")


def test_chat_template() -> None:
    tokenizer = build_tokenizer()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt == "<bos><|user|>Q\n<|assistant|>"
    assert len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) == 5
    turn = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    assert tokenizer.apply_chat_template(turn, tokenize=False) == "<bos><|user|>Q\n<|assistant|>A<eos>"


def test_tokenizer_reloads_offline(tmp_path: Path) -> None:
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    text = "x = [1, 2]\n  return x{}"
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert reloaded.decode(reloaded(text)["input_ids"], skip_special_tokens=True) == text
    assert reloaded.chat_template == tokenizer.chat_template


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        TinyConfig(hidden=32)
    with pytest.raises(ValidationError):
        TinyConfig(hidden_size=66, heads=4)
    with pytest.raises(ValidationError):
        TinyConfig().layers = 3  # frozen


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_build_model_is_seeded(arch: str) -> None:
    config = TinyConfig(arch=arch, layers=1)
    before = torch.random.get_rng_state()
    first, again, other = (build_model(config, 102, seed) for seed in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert first.config.model_type == arch
    for a, b in zip(first.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters(), strict=True))


def test_train_lm_is_deterministic_and_continues(tmp_path: Path) -> None:
    texts = [f"Q: {a}+{b}=?\nA: {a + b}" for a, b in sums(64, seed=2)]
    config = TinyConfig(hidden_size=32, layers=1, intermediate_size=64, max_positions=32)
    steps_seen: list[int] = []
    first = train_lm(
        texts, tmp_path / "a", config=config, steps=8, batch_size=8, on_step=lambda s, _: steps_seen.append(s)
    )
    second = train_lm(texts, tmp_path / "b", config=config, steps=8, batch_size=8)
    assert steps_seen == list(range(1, 9))
    assert first["loss"] == second["loss"]
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    other = TinyConfig(hidden_size=64)  # ignored: the checkpoint's shape wins
    resumed = train_lm(texts, tmp_path / "c", config=other, steps=8, batch_size=8, init_dir=tmp_path / "a")
    c = weights(tmp_path / "c")
    assert c.keys() == a.keys() and all(c[k].shape == a[k].shape for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert resumed["loss"] < first["loss"]
    assert (
        AutoModelForCausalLM.from_pretrained(tmp_path / "c", local_files_only=True).config.hidden_size == 32
    )


def test_train_lm_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(RptError, match="no training texts"):
        train_lm([], tmp_path, config=TinyConfig(), steps=1)
    with pytest.raises(RptError, match="not an HF checkpoint"):
        train_lm(["x"], tmp_path / "out", config=TinyConfig(), steps=1, init_dir=tmp_path)


def test_tiny_import_is_light() -> None:
    code = "import sys, rpt_transfer.tiny; assert not {'torch', 'transformers'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def arithmetic_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    texts = [f"Q: {a}+{b}=?\nA: {a + b}" for a, b in sums(2000, seed=0)]
    out = tmp_path_factory.mktemp("arithmetic")
    metrics = train_lm(texts, out, config=TinyConfig(), steps=ARITHMETIC_STEPS, seed=0)
    return out, metrics


def test_tiny_model_learns_arithmetic(arithmetic_model: tuple[Path, dict[str, float]]) -> None:
    path, metrics = arithmetic_model
    questions = sums(100, seed=1)
    requests = [
        GenRequest(f"q{i}", [{"role": "user", "content": f"Q: {a}+{b}=?\nA:"}], seed=i)
        for i, (a, b) in enumerate(questions)
    ]
    results = HFBackend(path, "raw").generate(requests, SamplingParams(max_tokens=6))
    accuracy = (
        sum(r.completion.strip() == str(a + b) for r, (a, b) in zip(results, questions, strict=True)) / 100
    )
    # Deterministic on one machine: 0.79 at 500 steps here (0.35 at 300, 0.95 at 600).
    assert accuracy >= 0.5, (accuracy, metrics)
    assert metrics["loss_last_10"] < 0.5
