"""The prompt file an OpenRLHF run trains on: each prompt as our generation sends it, with its reward label.

OpenRLHF reads a JSON Lines file whose `INPUT_KEY` column is the prompt and whose `LABEL_KEY` column is
passed to the reward with each rollout. The prompt is the final text: rendered here with the base model's
own tokenizer by `generation.prompting.render_prompt`, exactly as generate jobs render it, so the run does not
use OpenRLHF's `--data.apply_chat_template`. OpenRLHF tokenizes that text without adding special tokens, so
in `raw` mode the special tokens our generation adds (a BOS, say) are written into the text, and the tokens
OpenRLHF sends equal ours (checked per prompt). The label is `reward_label.encode_label`: the scorer, the
reference, the run's reward policy, and the tokenizer's special-token strings to cut from a completion's end.

The file holds exactly `rows` lines: the examples in passes, each pass in its own seeded order, the last one
cut short. So `steps × prompts_per_step` rows give exactly `steps` optimiser steps in one pass of OpenRLHF's
dataloader, and a fractional number of epochs is a partial last pass.
"""

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rpt_transfer.errors import JobError
from rpt_transfer.generation.base import PromptMode
from rpt_transfer.generation.prompting import prompt_token_ids, render_prompt
from rpt_transfer.hashing import short_hash
from rpt_transfer.training.base import require_chat_template
from rpt_transfer.training.config import RewardPolicy
from rpt_transfer.training.data import TrainExample
from rpt_transfer.training.reward_label import encode_label

INPUT_KEY = "prompt"
"""The prompt column (`--data.input_key prompt`)."""
LABEL_KEY = "label"
"""The reward label column (`--data.label_key label`)."""
ID_KEY = "id"
"""The example's id, for people reading the file; OpenRLHF ignores it."""


class ExportInfo(NamedTuple):
    """What `export_prompts` wrote."""

    path: Path
    rows: int
    """Lines in the file."""
    max_prompt_tokens: int
    """Tokens of the longest prompt as OpenRLHF will send it (for `--data.max_len`)."""


def export_prompts(
    examples: Sequence[TrainExample],
    scorer: str,
    policy: RewardPolicy,
    prompt_mode: PromptMode,
    model_dir: Path,
    rows: int,
    seed: int,
    out_path: Path,
) -> ExportInfo:
    """Write the prompt file for OpenRLHF (atomically) and say how long its longest prompt is."""
    if not examples:
        raise JobError("no training examples to export for OpenRLHF")
    if rows < 1:
        raise JobError(f"an OpenRLHF prompt file needs at least 1 row, not {rows}")
    tokenizer = load_tokenizer(model_dir)
    require_chat_template(tokenizer, model_dir, prompt_mode)
    strip = special_strings(tokenizer)
    texts, lengths = rendered_prompts(tokenizer, [e.prompt for e in examples], prompt_mode)
    lines = [
        json.dumps(
            {INPUT_KEY: text, LABEL_KEY: encode_label(scorer, e.reference, policy, strip), ID_KEY: e.id},
            ensure_ascii=False,
        )
        + "\n"
        for e, text in zip(examples, texts, strict=True)
    ]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    with partial.open("w", encoding="utf-8") as out:
        out.writelines(lines[index] for index in row_order(len(examples), rows, seed))
    partial.replace(out_path)
    return ExportInfo(out_path, rows, max(lengths))


def row_order(count: int, rows: int, seed: int) -> list[int]:
    """Indices of `rows` rows over `count` examples: whole passes, each shuffled by its own seeded RNG."""
    order: list[int] = []
    number = 0
    while len(order) < rows:
        one_pass = list(range(count))
        random.Random(int(short_hash(["openrlhf-prompts", seed, number]), 16)).shuffle(one_pass)
        order += one_pass
        number += 1
    return order[:rows]


def load_tokenizer(model_dir: Path) -> Any:
    """The base model's tokenizer from its folder (never downloaded); one line when it cannot be loaded."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError) as err:
        reason = " ".join(str(err).split())[:300]  # transformers' messages span lines; ours is one
        raise JobError(f"base model in {model_dir}: its tokenizer cannot be loaded: {reason}") from None


def special_strings(tokenizer: Any) -> list[str]:
    """Special-token strings that may trail a completion OpenRLHF decodes: eos, pad and every special one."""
    found = [tokenizer.eos_token, tokenizer.pad_token, *tokenizer.all_special_tokens]
    return sorted({token for token in found if isinstance(token, str) and token})


def rendered_prompts(
    tokenizer: Any, prompts: Sequence[str], prompt_mode: PromptMode
) -> tuple[list[str], list[int]]:
    """Each prompt's final text and its token count, as OpenRLHF will tokenize it (no special tokens added).

    Chat mode: the chat template's text, which already holds its special tokens. Raw mode: the joined text
    with the special tokens our generation's tokenizer call adds written around it.
    """
    texts = [
        render_prompt(tokenizer, [{"role": "user", "content": prompt}], prompt_mode) for prompt in prompts
    ]
    if prompt_mode == "raw":
        texts = [_with_added_tokens(tokenizer, text) for text in texts]
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return texts, [len(one) for one in ids]


def _with_added_tokens(tokenizer: Any, text: str) -> str:
    """Raw text with the special tokens `prompt_token_ids` adds, so that plain tokenization gives its ids."""
    wanted = prompt_token_ids(tokenizer, text, "raw")
    plain = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if wanted == plain:
        return text
    start = next(
        (k for k in range(len(wanted) - len(plain) + 1) if wanted[k : k + len(plain)] == plain), None
    )
    if start is not None:
        prefix = tokenizer.convert_ids_to_tokens(wanted[:start])
        suffix = tokenizer.convert_ids_to_tokens(wanted[start + len(plain) :])
        written = "".join(prefix) + text + "".join(suffix)
        if list(tokenizer(written, add_special_tokens=False)["input_ids"]) == wanted:
            return written
    raise JobError(
        "prompt_mode raw: the special tokens this tokenizer adds cannot be written into the prompt text so "
        "that OpenRLHF (which adds none) sends the tokens generation sends; use prompt_mode chat"
    )
