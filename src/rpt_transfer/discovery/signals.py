"""Whether a Hub model shows reinforcement post-training, and the evidence for and against (hf-hub.md §5).

No single field says "RL-trained": TRL writes tags and a card sentence, verl and OpenRLHF write nothing, and
authors add free-form tags. So each signal gets a confidence from how precise it is (hf-hub.md §5.4):

- high: a TRL RL trainer's tag next to `trl` (TRL always writes both), TRL's card sentence "This model was
  trained with GRPO, a method introduced in ...", or a card sentence that names an RL method together with a
  training verb and holds no negation or comparison ("fine-tuned ... using distributed reinforcement
  learning", but not "unlike GRPO-trained models" or "outperforms RL-tuned models");
- medium: something the author put there on purpose but in free form: the arXiv id of an RL method's paper
  (the Hub turns a card's paper links into `arxiv:` tags), an RL tag added by hand (`grpo` without `trl`,
  `rlvr`, the libraries' `verl`, `openrlhf`), or a declared dataset that `rl_datasets.yaml` lists as RL data;
- low: a name pattern (`-GRPO`, `-RL`, `-Zero`) or an RL method named in the card with no training verb.

High and medium confirm (`rl` True): a medium signal states how the model was trained, and the evidence
travels with the decision for a reader to overrule. Medium does not confirm when a tag or TRL's sentence
speaks against: preference-only tags (DPO, KTO, ORPO, CPO, SimPO are offline preference optimisation, not
RL), SFT or reward-model tags, TRL's "trained with DPO", or the `reinforcement-learning` pipeline tag (the
Hub's tag for game and robotics agents, hf-hub.md §5.2); the finding is then "low". High confirms whatever
speaks against (an RL run after DPO keeps its `dpo` history). An RL method named in a negated or comparative
sentence is listed under `against` but decides nothing: to a pattern, "did not use RL" and "trained with
GRPO without a KL penalty" look alike.
`R1` is no evidence at all: most R1-named models are SFT distills, and citing the DeepSeek-R1 paper
(2501.12948) says nothing about how a model was trained.
"""

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple


class Evidence(NamedTuple):
    """One observation behind a discovery decision."""

    kind: str  # "tag" | "card_text" | "arxiv" | "library" | "name" | "dataset" | "relation" | "card_field"
    value: str  # what was seen, e.g. "grpo", "arxiv:2402.03300", "base_model:finetune:Qwen/Qwen3-8B"
    detail: str  # one sentence: why this counts (or counts against)


class RlFinding(NamedTuple):
    """Whether a model shows reinforcement post-training, how sure that is, and why."""

    rl: bool  # confirmed reinforcement post-training
    algorithm: str | None  # "grpo", "ppo", "dapo", "rloo", "reinforce++", "prime", "rlvr", ... or None
    confidence: str  # "high" | "medium" | "low" | "none"
    evidence: tuple[Evidence, ...]  # what speaks for RL
    against: tuple[Evidence, ...]  # what speaks against


HIGH, MEDIUM, LOW, SOFT = 3, 2, 1, -1
_LEVELS = {HIGH: "high", MEDIUM: "medium", LOW: "low", 0: "none"}
SPECIFICITY = ("dapo", "dr_grpo", "gspo", "gmpo", "a2po", "sdpo", "prime", "reinforce++", "rloo", "grpo",
               "ppo", "rlvr")  # fmt: skip
"""Algorithms, most specific first: a variant before the family it extends; `rlvr` (a setting) last."""
TRL_RL_TAGS = {"grpo": "grpo", "async-grpo": "grpo", "gmpo": "gmpo", "rloo": "rloo", "a2po": "a2po",
               "sdpo": "sdpo", "ppo": "ppo"}  # fmt: skip
HAND_TAGS = {**TRL_RL_TAGS, "rl": None, "rlvr": "rlvr", "dapo": "dapo", "dr-grpo": "dr_grpo", "gspo": "gspo",
             "reinforce++": "reinforce++"}  # fmt: skip
LIBRARY_TAGS = ("verl", "openrlhf", "nemo-rl", "areal")
AGAINST_TAGS = {
    **dict.fromkeys(("dpo", "kto", "orpo", "cpo", "simpo", "tpo"), "offline preference optimisation, not RL"),
    "online-dpo": "online preference optimisation against a preference model, not verifiable-reward RL",
    "sft": "TRL's SFTTrainer tag: supervised fine-tuning",
    "reward-trainer": "TRL's RewardTrainer tag: a reward model",
    "reinforcement-learning": "the Hub's pipeline tag for game and robotics agents; RL-trained LLMs keep "
    "text-generation (hf-hub.md §5.2)",
}
RL_ARXIV = {  # only papers that introduce an RL method
    "2402.03300": ("grpo", "DeepSeekMath (Shao et al., 2024), the paper of GRPO"),
    "2402.14740": ("rloo", "Back to Basics (Ahmadian et al., 2024), the paper of RLOO"),
    "2503.14476": ("dapo", "DAPO (Yu et al., 2025)"),
    "2503.20783": ("dr_grpo", "Understanding R1-Zero-Like Training (Liu et al., 2025), Dr. GRPO"),
    "2507.18071": ("gspo", "Group Sequence Policy Optimization (Zheng et al., 2025)"),
    "2501.03262": ("reinforce++", "REINFORCE++ (Hu, 2025)"),
    "2502.01456": ("prime", "Process Reinforcement through Implicit Rewards (Cui et al., 2025), PRIME"),
    "1707.06347": ("ppo", "Proximal Policy Optimization Algorithms (Schulman et al., 2017)"),
    "2411.15124": ("rlvr", "Tülu 3 (Lambert et al., 2024), which introduced RLVR"),
    "2601.20802": ("sdpo", "Reinforcement Learning via Self-Distillation (TRL's SDPO trainer)"),
}
_METHODS = (  # (pattern, algorithm); matched as whole words, "GRPO-trained" yes, "DAPO-Math-17k" no
    (r"Dr\.?\s?GRPO", "dr_grpo"), (r"DAPO", "dapo"), (r"GSPO", "gspo"), (r"GMPO", "gmpo"), (r"RLOO", "rloo"),
    (r"GRPO", "grpo"), (r"REINFORCE\+\+", "reinforce++"), (r"PPO", "ppo"), (r"RLVR", "rlvr"),
    (r"(?-i:PRIME)", "prime"), (r"reinforcement[ -]learning", None), (r"RL", None),
)  # fmt: skip
_WORD = r"(?<![\w/-])(?:{})(?![\w/]|-(?!(?:trained|tuned|based)\b)\w)"
_METHOD_RES = tuple((re.compile(_WORD.format(p), re.IGNORECASE), alg) for p, alg in _METHODS)
_TRAINING_VERB = re.compile(
    r"\b(?:train(?:s|ed|ing)?|(?:fine|post)-?tun(?:e|es|ed|ing)|post-?train(?:s|ed|ing)?|"
    r"optimi[sz](?:e|es|ed|ing)|tuned)\b",
    re.IGNORECASE,
)
_CONTRAST = re.compile(  # negations and comparisons: "unlike GRPO-trained models", "outperforms RL-tuned ..."
    r"\b(?:not|no|never|without|unlike|instead of|(?:rather|better|worse) than|neither|nor|except|versus|vs|"
    r"compared|comparison|outperform\w*|baselines?|such as|like)\b|n't\b",
    re.IGNORECASE,
)
_TRL_SENTENCE = re.compile(r"This model was trained with ([\w +-]+?)(?:, a method introduced in|\.|$)", re.M)
_TRL_NOT_RL = {"dpo", "online dpo", "kto", "orpo", "cpo", "simpo", "tpo", "sft", "reward", "gkd", "gold"}
_NAME_TOKENS = {"grpo": "grpo", "ppo": "ppo", "dapo": "dapo", "rloo": "rloo", "gspo": "gspo", "rl": None,
                "rlvr": "rlvr", "zero": None}  # fmt: skip
_SENTENCE_BREAK = re.compile(
    r"\n\s*\n|\n(?=\s*(?:[|#>*-]|\d+\.))|(?<=[.!?])(?<!Dr\.)(?<!e\.g\.)(?<!i\.e\.)(?<!al\.)\s+"
)
_HEADING = re.compile(r"^(\s*#.*)$", re.M)
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
_CODE_BLOCK = re.compile(r"^```.*?^```", re.S | re.M)


class _Hit(NamedTuple):
    level: int  # HIGH, MEDIUM or LOW: for RL; 0: against; SOFT: against, but decides nothing
    algorithm: str | None
    evidence: Evidence


def _tag_hits(tags: Sequence[str]) -> Iterator[_Hit]:
    """TRL's trainer tags (high next to `trl`), hand-added RL and library tags, RL arXiv ids, and against."""
    lowered = {tag.lower() for tag in tags}
    for tag in dict.fromkeys(tag.lower() for tag in tags):
        if tag in TRL_RL_TAGS and "trl" in lowered:
            yield _Hit(
                HIGH, TRL_RL_TAGS[tag], Evidence("tag", tag, f"TRL's {tag} trainer tag, next to `trl`")
            )
        elif tag in HAND_TAGS:
            yield _Hit(MEDIUM, HAND_TAGS[tag], Evidence("tag", tag, f"RL tag `{tag}`, added by the author"))
        elif tag in LIBRARY_TAGS:
            yield _Hit(
                MEDIUM, None, Evidence("library", tag, f"tag of the RL library {tag}, added by the author")
            )
        elif tag.startswith("arxiv:") and tag[6:] in RL_ARXIV:
            algorithm, paper = RL_ARXIV[tag[6:]]
            yield _Hit(MEDIUM, algorithm, Evidence("arxiv", tag, f"the card links {paper}"))
        elif tag in AGAINST_TAGS:
            yield _Hit(0, None, Evidence("tag", tag, AGAINST_TAGS[tag]))


def _name_hits(model_id: str) -> Iterator[_Hit]:
    """Tokens of the repo name such as `-GRPO`, `-RL`, `-Zero` (`PRIME` only in capitals): weak."""
    for token in dict.fromkeys(re.split(r"[-_.]", model_id.rsplit("/", 1)[-1])):
        if token.lower() in _NAME_TOKENS or token == "PRIME":
            algorithm = _NAME_TOKENS.get(token.lower(), "prime")
            yield _Hit(LOW, algorithm, Evidence("name", token, f"the name says {token}: a hint, never proof"))


def _sentences(readme: str) -> Iterator[str]:
    """Prose sentences of a card: front matter and code blocks dropped, table rows and list items apart."""
    text = _CODE_BLOCK.sub("\n\n", _FRONT_MATTER.sub("", readme.replace("\r\n", "\n")))
    text = _HEADING.sub("\\1\n", text)  # a heading ends its line's sentence
    for piece in _SENTENCE_BREAK.split(text):
        if sentence := " ".join(piece.split()):
            yield sentence


def _text_hits(readme: str) -> Iterator[_Hit]:
    """TRL's card sentence, positive sentences (training verb, RL method, no negation), bare mentions."""
    for match in _TRL_SENTENCE.finditer(_CODE_BLOCK.sub("", readme)):
        name, quote = match.group(1).strip(), match.group(0)
        if name.lower() in _TRL_NOT_RL:
            yield _Hit(
                0, None, Evidence("card_text", quote, f"TRL's card says it was trained with {name}: not RL")
            )
        elif found := [alg for pattern, alg in _METHOD_RES if pattern.search(name)]:
            yield _Hit(
                HIGH, found[0], Evidence("card_text", quote, f"TRL's card sentence for its {name} trainer")
            )
    for sentence in _sentences(readme):
        found = [(m.group(0), alg) for pattern, alg in _METHOD_RES if (m := pattern.search(sentence))]
        if not found or sentence.startswith("This model was trained with"):
            continue
        quote, names = sentence[:200], ", ".join(dict.fromkeys(word for word, _ in found))
        if _CONTRAST.search(sentence):
            detail = f"names {names} in a negated or comparative sentence"
            yield _Hit(SOFT, None, Evidence("card_text", quote, detail))
            continue
        level, how = (
            (HIGH, "with a training verb") if _TRAINING_VERB.search(sentence) else (LOW, "in passing")
        )
        for _, algorithm in found:
            yield _Hit(level, algorithm, Evidence("card_text", quote, f"the card names {names} {how}"))


def _dataset_hits(tags: Sequence[str], card_data: Mapping[str, Any] | None) -> Iterator[_Hit]:
    """Declared datasets that the curated table lists as published RL data."""
    from rpt_transfer.discovery import rl_domains  # it imports Evidence from here

    for dataset_id in rl_domains.declared_datasets(tags, card_data):
        match = rl_domains.lookup(dataset_id)
        if match is not None and match.entry.rl:
            detail = f"declares {match.id}, published as RL training data: {match.entry.why}"
            yield _Hit(MEDIUM, None, Evidence("dataset", dataset_id, detail))


def _all_tags(tags: Sequence[str], card_data: Mapping[str, Any] | None) -> list[str]:
    """The model's tags and its card's own `tags` (a list-level caller may pass either)."""
    card_tags = (card_data or {}).get("tags") or []
    both = [*tags, *([card_tags] if isinstance(card_tags, str) else card_tags)]
    return [tag for tag in both if isinstance(tag, str)]


def _most_specific(algorithms: Sequence[str | None]) -> str | None:
    named = [a for a in algorithms if a]
    order = {name: rank for rank, name in enumerate(SPECIFICITY)}
    return min(named, key=lambda a: order.get(a, len(order)), default=None)


def prefilter(model_id: str, tags: Sequence[str]) -> bool:
    """Cheap list-level check (list results carry tags, no README): worth one model_info and README request.

    Any positive tag, RL arXiv id, RL dataset tag or name pattern counts; with the `reinforcement-learning`
    pipeline tag (agents, not LLMs) a name pattern alone does not.
    """
    hits = [*_tag_hits(tags), *_name_hits(model_id), *_dataset_hits(tags, None)]
    best = max((hit.level for hit in hits), default=0)
    return best >= (MEDIUM if "reinforcement-learning" in {t.lower() for t in tags} else LOW)


def rl_finding(
    model_id: str, tags: Sequence[str], card_data: Mapping[str, Any] | None, readme: str | None
) -> RlFinding:
    """Whether `model_id` shows reinforcement post-training, from its tags, card fields, README and name."""
    all_tags = _all_tags(tags, card_data)
    hits = [*_tag_hits(all_tags), *_dataset_hits(all_tags, card_data), *_text_hits(readme or ""),
            *_name_hits(model_id)]  # fmt: skip
    positive = [hit for hit in hits if hit.level > 0]
    against = tuple(dict.fromkeys(hit.evidence for hit in hits if hit.level <= 0))
    level = max((hit.level for hit in positive), default=0)
    if level == MEDIUM and any(hit.level == 0 for hit in hits):
        level = LOW
    confirmed = [hit.algorithm for hit in positive if hit.level >= MEDIUM]
    algorithm = _most_specific(confirmed) or _most_specific([hit.algorithm for hit in positive])
    evidence = tuple(dict.fromkeys(hit.evidence for hit in sorted(positive, key=lambda hit: -hit.level)))
    return RlFinding(level >= MEDIUM, algorithm, _LEVELS[level], evidence, against)
