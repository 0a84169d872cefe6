"""The one place where messages become the exact prompt a model sees, for every local-weights backend.

HF and vLLM must send the same tokens for the same item and prompt mode, or their samples would not be
comparable; both call these two functions with the model's own tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rpt_transfer.generation.base import PromptMode, raw_prompt


def render_prompt(tokenizer: Any, messages: Sequence[dict[str, str]], prompt_mode: PromptMode) -> str:
    """The exact prompt text: the chat template plus generation prompt (chat), or joined contents (raw)."""
    if prompt_mode == "raw":
        return raw_prompt(messages)
    return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)


def prompt_token_ids(tokenizer: Any, text: str, prompt_mode: PromptMode) -> list[int]:
    """Token ids of a rendered prompt, special tokens added once.

    Raw text gets the tokenizer's usual special tokens (e.g. a BOS); a chat-rendered text already holds them.
    """
    return list(tokenizer(text, add_special_tokens=prompt_mode == "raw")["input_ids"])
