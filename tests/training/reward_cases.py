"""What the reward service tests share: OpenRLHF-shaped samples, code answers, and OpenRLHF's own client.

A sample is what OpenRLHF sends per rollout: the query (the chat-formatted prompt and the answer decoded
together with `skip_special_tokens=False`, so a finished answer ends in `<|im_end|>`), the prompt as in
the data set, and the label (`reward_label.encode_label`).
"""

import importlib.util
import logging
import os
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from rpt_transfer.scoring.code import function_reference, stdio_reference
from rpt_transfer.training.reward_label import encode_label

END = "<|im_end|>"
STRIP = (END, "<|endoftext|>")
PROMPT = (
    "<|im_start|>user\nWhat is 1 + 1? Put the final answer in \\boxed{}.<|im_end|>\n<|im_start|>assistant\n"
)
CHOICE_PROMPT = "<|im_start|>user\nWhich is a prime? A) 4 B) 7\nEnd with 'ANSWER: <letter>'.<|im_end|>\n"

ADD = function_reference("add", "assert add(1, 2) == 3\nassert add(-1, 1) == 0", timeout=5)
ADD_RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
ADD_WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
SUM = stdio_reference([{"input": "1 2\n", "output": "3\n"}, {"input": "40 2\n", "output": "42\n"}])
SUM_RIGHT = "Read two numbers.\n```python\na, b = map(int, input().split())\nprint(a + b)\n```"
LOOP_REF = function_reference("f", "assert f() == 1", timeout=3)
LOOP = "```python\ndef f():\n    while True:\n        pass\n```"

OPENRLHF_ENV = "RPT_OPENRLHF_SRC"
"""A folder holding OpenRLHF's source (`openrlhf/utils/agent.py`), e.g. an unpacked wheel's purelib; an
installed `openrlhf` is found without it."""


def label(scorer: str = "math", reference: str = "2", policy: str = "strict") -> str:
    """A training prompt's label, with the chat template's end markers to strip."""
    return encode_label(scorer, reference, policy, STRIP)  # type: ignore[arg-type]


def sample(
    answer: str, scorer: str = "math", reference: str = "2", policy: str = "strict", prompt: str = PROMPT
) -> tuple[str, str, str]:
    """(query, prompt, label) of one finished rollout that answered `answer`."""
    return prompt + answer + END, prompt, label(scorer, reference, policy)


def request(*samples: tuple[str, str, str]) -> dict[str, list[str]]:
    """OpenRLHF's POST body for these samples."""
    return {
        "query": [s[0] for s in samples],
        "prompts": [s[1] for s in samples],
        "labels": [s[2] for s in samples],
    }


def openrlhf_agent(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """OpenRLHF's `openrlhf/utils/agent.py`, loaded as its own tests load it; skips where it is not here."""
    pytest.importorskip("aiohttp", reason="OpenRLHF's reward client needs aiohttp")
    roots = [Path(os.environ[OPENRLHF_ENV]) / "openrlhf"] if os.environ.get(OPENRLHF_ENV) else []
    spec = importlib.util.find_spec("openrlhf")
    roots += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    agent = next(
        (root / "utils" / "agent.py" for root in roots if (root / "utils" / "agent.py").exists()), None
    )
    if agent is None:
        pytest.skip(f"OpenRLHF's source is not here: install openrlhf or set {OPENRLHF_ENV}")
    logging_utils = SimpleNamespace(init_logger=logging.getLogger)
    monkeypatch.setitem(sys.modules, "openrlhf.utils.logging_utils", logging_utils)
    loaded = importlib.util.spec_from_file_location("_openrlhf_agent", agent)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module
