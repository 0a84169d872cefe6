"""The label OpenRLHF carries beside each training prompt: everything a reward needs to score one rollout.

OpenRLHF hands a reward only `(query, prompt, label)` per rollout, where the label is one string column of
the exported prompt file. The label is therefore this small JSON object: the scorer and its reference, the
run's reward policy, and the special-token strings to cut from the end of a completion (OpenRLHF decodes
the query with `skip_special_tokens=False`, so an end-of-sequence marker trails every finished answer).
The reward function file and the reward service read labels back with `decode_label`; nothing else needs
the tokenizer at scoring time.
"""

import json
from collections.abc import Sequence
from typing import NamedTuple, get_args

from rpt_transfer.training.config import RewardPolicy

LABEL_VERSION = 1


class RewardLabel(NamedTuple):
    """One rollout's scoring instructions."""

    scorer: str
    """A scorer of `rpt_transfer.scoring` (math, choice, code_function, code_stdio, polyglot)."""
    reference: str
    """The reference that scorer checks against."""
    policy: RewardPolicy
    """`strict` or `flexible` (docs/scoring-policies.md)."""
    strip: tuple[str, ...]
    """Special-token strings cut from the end of a completion before scoring, longest first."""


def encode_label(scorer: str, reference: str, policy: RewardPolicy, strip: Sequence[str]) -> str:
    """The label string of one training prompt (compact JSON, keys sorted)."""
    ordered = sorted({s for s in strip if s}, key=lambda s: (-len(s), s))
    body = {"v": LABEL_VERSION, "scorer": scorer, "reference": reference, "policy": policy, "strip": ordered}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def decode_label(text: object) -> RewardLabel:
    """Read a label back; raises ValueError naming what is wrong (the caller counts it as a failure)."""
    if not isinstance(text, str):
        raise ValueError(f"label is {type(text).__name__}, not a string")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"label is not JSON ({err.msg})") from None
    except RecursionError:  # hostile nesting
        raise ValueError("label is nested too deeply to be a label") from None
    if not isinstance(body, dict) or body.get("v") != LABEL_VERSION:
        raise ValueError(f"label is not a version-{LABEL_VERSION} rpt-transfer label")
    scorer, reference, policy, strip = (body.get(k) for k in ("scorer", "reference", "policy", "strip"))
    if not isinstance(scorer, str) or not isinstance(reference, str):
        raise ValueError("label needs string fields scorer and reference")
    if policy not in get_args(RewardPolicy):
        raise ValueError(f"label policy {policy!r}; accepted: {', '.join(get_args(RewardPolicy))}")
    if not isinstance(strip, list) or not all(isinstance(s, str) for s in strip):
        raise ValueError("label field strip must be a list of strings")
    return RewardLabel(scorer, reference, policy, tuple(strip))


def completion_of(query: str, prompt: str, strip: Sequence[str]) -> str:
    """The model's answer inside OpenRLHF's query (the prompt and the answer, decoded together).

    The query starts with the prompt when the tokenizer round-trips it (the usual case); otherwise the
    prompt's last line is searched for, so that the answer is never scored with the question in front.
    Trailing special tokens (and whitespace between them) are removed.
    """
    if query.startswith(prompt):
        text = query[len(prompt) :]
    else:
        tail = prompt.rstrip().rsplit("\n", 1)[-1]
        where = query.rfind(tail) if tail else -1
        text = query[where + len(tail) :] if where >= 0 else query
    changed = True
    while changed:
        changed = False
        stripped = text.rstrip()
        for token in strip:
            if token and stripped.endswith(token):
                text, changed = stripped[: -len(token)], True
                break
    return text
