"""Next-token training of tiny models on plain texts: quick, deterministic and fully offline."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from rpt_transfer.errors import RptError
from rpt_transfer.tiny.model import TinyConfig, build_model
from rpt_transfer.tiny.tokenizer import build_tokenizer

IGNORE_INDEX = -100
"""Label value the HF loss skips: padding contributes nothing to the loss."""


def train_lm(
    texts: list[str],
    out_dir: Path,
    *,
    config: TinyConfig,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    init_dir: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
    threads: int | None = 1,
) -> dict[str, float]:
    """Train a causal LM on `texts` and save model and tokenizer to `out_dir` in HF format.

    Each example is `<bos> text <eos>`, truncated to the model's maximum positions and right-padded to
    the longest example in its batch. Batches come from seeded per-epoch permutations, so equal inputs
    give identical weights on the same machine. With `init_dir`, training continues from that
    checkpoint with its own tokenizer and architecture, and `config` is not used.

    Args:
        texts: Training documents, one example each.
        out_dir: Where `save_pretrained` writes weights (safetensors), config and tokenizer.
        config: Shape of a fresh model.
        steps: Optimizer steps (AdamW, linear warm-up then cosine decay to a tenth of `lr`).
        batch_size: Examples per step.
        lr: Peak learning rate.
        seed: Seeds initialisation and batch order.
        init_dir: An HF checkpoint to continue from instead of fresh weights.
        on_step: Called as `on_step(step, loss)` after each step, e.g. to drive a progress bar.
        threads: CPU threads for torch while training, restored afterwards; None keeps torch's setting.
            One is the default: models this small gain little from more, slow down badly when
            other processes share the cores, and one thread gives the same weights on any machine size.

    Returns:
        `loss` (last step), `loss_last_10` (mean of the last ten steps), `steps` and `seconds`.
    """
    if not texts:
        raise RptError("train_lm: no training texts given; expected at least one")
    if steps < 1 or batch_size < 1:
        raise RptError(f"train_lm: steps ({steps}) and batch_size ({batch_size}) must be at least 1")
    with _torch_threads(threads):
        started = time.perf_counter()
        model, tokenizer = _start(config, seed, init_dir)
        examples = _frame(tokenizer, texts, model.config.max_position_embeddings)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        losses = _fit(model, examples, pad_id, steps, batch_size, lr, seed, on_step)
        _save(model, tokenizer, Path(out_dir))
    last = losses[-10:]
    return {
        "loss": losses[-1],
        "loss_last_10": sum(last) / len(last),
        "steps": float(steps),
        "seconds": time.perf_counter() - started,
    }


def _fit(
    model: PreTrainedModel,
    examples: list[list[int]],
    pad_id: int,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_step: Callable[[int, float], None] | None,
) -> list[float]:
    """Run the optimizer loop in place on `model`; returns the loss of every step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, min(50, steps // 10))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, warmup, steps))
    batches = _batch_indices(len(examples), batch_size, torch.Generator().manual_seed(seed))
    losses: list[float] = []
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout, should a checkpoint use it
        for step in range(1, steps + 1):
            input_ids, attention_mask, labels = _collate([examples[i] for i in next(batches)], pad_id)
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(step, losses[-1])
    model.eval()
    return losses


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Use `threads` CPU threads in torch for the duration, then restore the previous setting."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _start(
    config: TinyConfig, seed: int, init_dir: Path | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Fresh weights with the character tokenizer, or an existing checkpoint with its own tokenizer."""
    if init_dir is None:
        tokenizer = build_tokenizer()
        return build_model(config, len(tokenizer), seed), tokenizer
    if not (Path(init_dir) / "config.json").is_file():
        raise RptError(f"train_lm: init_dir {init_dir} is not an HF checkpoint (no config.json)")
    model = AutoModelForCausalLM.from_pretrained(init_dir, local_files_only=True, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(init_dir, local_files_only=True)


def _frame(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_len: int) -> list[list[int]]:
    """Token ids of `<bos> text <eos>` per text, cut to `max_len` (the end marker goes first)."""
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    eos = [tokenizer.eos_token_id]
    bodies = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [(bos + body + eos)[:max_len] for body in bodies]


def _batch_indices(size: int, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Endless batches of example indices, walking seeded permutations epoch after epoch."""
    pending: list[int] = []
    while True:
        while len(pending) < batch_size:
            pending += torch.randperm(size, generator=generator).tolist()
        batch, pending = pending[:batch_size], pending[batch_size:]
        yield batch


def _collate(examples: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad to the longest example; labels mask the padding out of the loss."""
    width = max(len(ids) for ids in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, ids in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
    labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
    return input_ids, attention_mask, labels


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay from 1 to 0.1 at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress)))


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> None:
    """Write an HF checkpoint that `from_pretrained` loads offline; weights go to safetensors."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
