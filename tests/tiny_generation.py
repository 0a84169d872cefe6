"""What the generation backends' tests share: the tiny arithmetic model they generate with, and requests.

The same model and prompts for hf, vLLM (through its test double) and the OpenAI-compatible backend, so
their rows can be compared with each other.
"""

from pathlib import Path

from rpt_transfer.generation import GenRequest
from rpt_transfer.tiny import TinyConfig, train_lm

MAX_POSITIONS = 64


def ask(request_id: str, content: str, seed: int = 0) -> GenRequest:
    """One user message as a request."""
    return GenRequest(request_id, [{"role": "user", "content": content}], seed)


REQUESTS = [
    ask("short", "Q: 3+4=?\nA:", seed=1),
    ask("long", "Here is a sum.\nQ: 12+9=?\nA:", seed=2),
    ask("mid", "Q: 10+11=?\nA:", seed=3),
    ask("tiny", "Q:", seed=4),
    ask("other", "Sum: Q: 7+7=?\nA:", seed=5),
]


def train_arith_model(out: Path) -> Path:
    """A briefly trained tiny model (character tokenizer, chat template): peaked enough that greedy
    decoding has no near-ties."""
    texts = [f"Q: {a}+{b}=?\nA: {a + b}" for a in range(15) for b in range(15)]
    train_lm(texts, out, config=TinyConfig(layers=1, max_positions=MAX_POSITIONS), steps=60, seed=0)
    return out
