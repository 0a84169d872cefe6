"""A small Hub population for the discovery tests, on the loopback fake Hub of tests/servers_hub.py.

Two bases and their children, each child one case of docs/discovery.md: a TRL GRPO run on math data, an
RL run whose card gives its base as a list, a quantized copy, a DPO-only model, a gated one, one with RL
data the table does not know, a plain SFT chat model, one too large, a DAPO run on the second base, one
older than the look-back and one whose card names no base at all. Creation times are relative to now, so
the first run's look-back (14 days) sees all but the old one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from inprocess import call_cli
from servers_hub import FakeHub

BASE = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
BASE2 = "Qwen/Qwen3-4B"
GRPO = "alice/R1-1.5B-GRPO-Math"
LISTED = "bob/R1-1.5B-Code-RL"
QUANTIZED = "carol/R1-1.5B-GRPO-GGUF"
DPO = "dave/R1-1.5B-RL-DPO"
GATED = "erin/R1-1.5B-GRPO-Gated"
MYSTERY = "frank/R1-1.5B-GRPO-Mystery"
SFT = "gina/R1-1.5B-Chat"
BIG = "hank/Qwen3-4B-GRPO-Big"
DAPO = "ivy/Qwen3-4B-DAPO-Math"
OLD = "olga/R1-1.5B-GRPO-Old"
ORPHAN = "nobody/Qwen-GRPO-NoBase"
ACCEPTED = (GRPO, LISTED, DAPO)
GRPO_TEXT = (
    "# Model Card\n\nIt has been trained using [TRL](https://github.com/huggingface/trl).\n\n"
    "This model was trained with GRPO, a method introduced in [DeepSeekMath](https://huggingface.co/papers/2402.03300).\n"
)
DPO_TEXT = "# Model Card\n\nThis model was trained with DPO, a method introduced in [DPO](https://huggingface.co/papers/2305.18290).\n"


def ago(days: float = 0, hours: float = 0) -> str:
    """A Hub timestamp (`...Z`, milliseconds) this long before now."""
    when = datetime.now(UTC) - timedelta(days=days, hours=hours)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def trl(
    algorithm: str, base: str | list[str], datasets: list[str] | None = None, **card: Any
) -> dict[str, Any]:
    """The front matter TRL writes for a trainer, with the datasets a push named."""
    return {
        "base_model": base,
        "library_name": "transformers",
        "tags": ["generated_from_trainer", "trl", algorithm],
        **({"datasets": datasets} if datasets else {}),
        **card,
    }


def populate(hub: FakeHub) -> dict[str, str]:
    """The bases and children of the module docstring; returns each model's commit."""
    sha = {
        BASE: hub.add_model(BASE, created_at="2025-01-20T09:00:00.000Z", params=1_777_088_000),
        BASE2: hub.add_model(BASE2, created_at="2025-04-27T10:00:00.000Z", params=4_022_468_096),
    }
    children: list[tuple[str, dict[str, Any]]] = [
        (GRPO, dict(created_at=ago(hours=1), card=trl("grpo", BASE, ["openai/gsm8k"]), body=GRPO_TEXT)),
        (
            LISTED,
            dict(
                created_at=ago(hours=2),
                card={
                    "base_model": [BASE],
                    "tags": ["verl", "rl"],
                    "datasets": "agentica-org/DeepCoder-Preview-Dataset",
                },
                body="Trained with GRPO using verl on verifiable coding problems.\n",
            ),
        ),
        (
            QUANTIZED,
            dict(created_at=ago(hours=3), card={**trl("grpo", BASE), "base_model_relation": "quantized"}),
        ),
        (DPO, dict(created_at=ago(hours=4), card=trl("dpo", BASE, ["openai/gsm8k"]), body=DPO_TEXT)),
        (GATED, dict(created_at=ago(hours=5), card=trl("grpo", BASE, ["openai/gsm8k"]), gated="manual")),
        (
            MYSTERY,
            dict(created_at=ago(hours=6), card=trl("grpo", BASE, ["frank/secret-rl-mix"]), body=GRPO_TEXT),
        ),
        (SFT, dict(created_at=ago(hours=7), card={"base_model": BASE, "tags": ["sft", "chat"]})),
        (OLD, dict(created_at=ago(days=30), card=trl("grpo", BASE, ["openai/gsm8k"]), body=GRPO_TEXT)),
        (ORPHAN, dict(created_at=ago(hours=1), card={"tags": ["trl", "grpo"]}, body=GRPO_TEXT)),
        (
            BIG,
            dict(created_at=ago(hours=8), card=trl("grpo", BASE2, ["openai/gsm8k"]), params=20_000_000_000),
        ),
        (
            DAPO,
            dict(
                created_at=ago(hours=9),
                card={
                    "base_model": BASE2,
                    "tags": ["dapo", "verl"],
                    "datasets": ["BytedTsinghua-SIA/DAPO-Math-17k"],
                },
                body="We post-trained Qwen3-4B with DAPO on DAPO-Math-17k.\n",
            ),
        ),
    ]
    for repo, fields in children:
        sha[repo] = hub.add_model(repo, **fields)
    return sha


def config(path: Path, **changes: Any) -> Path:
    """A discovery config of the two bases with a small study template (fast to plan)."""
    data: dict[str, Any] = {
        "bases": [{"hub": BASE}, {"hub": BASE2, "prompt_mode": "chat"}],
        "max_params_b": 15,
        "study": {"benchmarks": ["smoke_arith"], "limit": 4},
    }
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RPT_STORE naming a fresh local store, so the registry never lands in the working folder."""
    root = tmp_path / "store"
    monkeypatch.setenv("RPT_STORE", str(root))
    return root


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `rpt-transfer ARGS` in this process, as `main` does (user errors one line, exit 2)."""
    return tuple(call_cli(capsys, *args))  # type: ignore[return-value]


def listing_pages(hub: FakeHub) -> Iterator[str]:
    """The query string of every `/api/models` request, in order."""
    return (r.query for r in hub.requests if r.path == "/api/models")
