"""The reward function file for OpenRLHF: `--reward.remote_url <REWARD_FUNC_PATH>`.

OpenRLHF imports a `--reward.remote_url` that ends in `.py` by file location (not as a package module)
inside each vLLM actor, and calls `reward_func(queries, prompts, labels)` from a worker thread, with one
sample per call. So this file uses absolute imports only, and stays small: the work is
`reward_service.reward_response`, the same function the HTTP reward service answers with.

The actors are GPU processes, where model-written code must never run (docs/reward-service.md): here,
scorers that run programs (code_function, code_stdio, polyglot) give `runs_programs` failures; data that
needs them is scored by `rpt-transfer reward-server`, whose URL the trainer passes instead.
"""

from pathlib import Path
from typing import Any

from rpt_transfer.training.reward_service import reward_response

REWARD_FUNC_PATH = Path(__file__).resolve()
"""This file: what the OpenRLHF backend passes as `--reward.remote_url` for rewards without programs."""


def reward_func(queries: Any, prompts: Any, labels: Any, **_: Any) -> dict[str, Any]:
    """OpenRLHF's reward entry point: rewards, scores and extra_logs, one entry per sample; never raises."""
    return reward_response(queries, prompts, labels, run_programs=False)
