"""Tiny decoder-only models in real HF architectures: the offline stand-ins for the LLMs under study."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class TinyConfig(BaseModel):
    """Shape of a tiny model; small enough that a few hundred training steps take seconds on a CPU."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arch: Literal["llama", "qwen2"] = "llama"
    """HF architecture to instantiate; both load through `AutoModelForCausalLM` like the real models."""
    hidden_size: int = Field(default=64, ge=8)
    """Width of the residual stream; must be divisible by `heads`."""
    layers: int = Field(default=2, ge=1)
    """Number of transformer blocks."""
    heads: int = Field(default=4, ge=1)
    """Attention heads (as many key/value heads: no grouped-query attention at this size)."""
    intermediate_size: int = Field(default=256, ge=8)
    """Width of the MLP inside each block."""
    max_positions: int = Field(default=256, ge=8)
    """Longest sequence (prompt plus completion) the model handles; training truncates to it."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TinyConfig:
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by heads ({self.heads})")
        return self


def build_model(config: TinyConfig, vocab_size: int, seed: int) -> PreTrainedModel:
    """Randomly initialise a model; the same config, vocabulary size and seed give the same weights.

    The global torch RNG is left untouched, so building a model does not perturb callers' randomness.
    Token ids follow `tiny.tokenizer` (pad 0, bos 2, eos 3).
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    from rpt_transfer.tiny.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS

    config_class = {"llama": LlamaConfig, "qwen2": Qwen2Config}[config.arch]
    hf_config = config_class(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=config.max_positions,
        pad_token_id=SPECIAL_TOKENS.index(PAD),
        bos_token_id=SPECIAL_TOKENS.index(BOS),
        eos_token_id=SPECIAL_TOKENS.index(EOS),
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(hf_config)
