"""Which base model a Hub model declares, and by what relation (hf-hub.md §1.8, the pairing rule).

The Hub states lineage in four places of falling authority, and the first that names a Hub id decides:
1. `baseModels` of `model_info(expand=["baseModels"])`: the Hub's own resolution, seen as a dict
   `{"relation", "models": [{"id"}]}`, typed as a list by the client, so a dict, a list of such dicts or a
   list of ids (strings or `{"id"}` dicts) are all accepted;
2. the tags `base_model:<relation>:<id>` the Hub computes from the card;
3. a bare `base_model:<id>` tag;
4. the card's own `base_model` (a string or a list).
A source that states no relation takes it from the relation tags of the same parents, then from the card's
`base_model_relation`, and else assumes a fine-tune of one parent or a merge of several: a single declared
parent is a fine-tune unless the card says otherwise, which is how the Hub infers it too. Where a source
states two relations, the one that keeps a model out of the fine-tune set wins (quantized, adapter, merge),
since wrongly pairing a re-quantization with its base costs an evaluation and says nothing about RL.
Parents are kept as declared, case and all; only `org/name` ids count (trainers write local folders such as
`/workspace/ckpt` or a bare `checkpoint-500`; the legacy one-word Hub ids such as `gpt2` now live under an
org), and the evidence names whatever was ignored.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from rpt_transfer.discovery.signals import Evidence

RELATIONS = ("finetune", "adapter", "quantized", "merge")
_CAUTIOUS_FIRST = ("quantized", "adapter", "merge", "finetune")
_RELATION_TAG = re.compile(r"^base_model:(finetune|adapter|quantized|merge):(.+)$")
_HUB_PREFIX = re.compile(r"^(?:https?://)?huggingface\.co/")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class Parentage(NamedTuple):
    """The parent(s) a model declares and the relation to them."""

    relation: str | None  # "finetune" | "adapter" | "quantized" | "merge" | None (no base model found)
    parents: tuple[str, ...]  # Hub ids of the declared parent(s), as declared
    source: str  # "baseModels" | "relation tag" | "base_model tag" | "cardData.base_model" | "none"
    evidence: tuple[Evidence, ...]


class _Declared(NamedTuple):
    relation: str | None  # as the source states it, None when it states none
    raw: str  # the parent as written
    evidence: Evidence  # how this source showed it


def hub_id(value: Any) -> str | None:
    """`value` as an `org/name` Hub id (a leading `https://huggingface.co/` is dropped), or None."""
    if not isinstance(value, str):
        return None
    text = _HUB_PREFIX.sub("", value.strip()).rstrip("/")
    return text if _HUB_ID.match(text) else None


def _from_base_models(value: Any) -> list[_Declared]:
    """`baseModels` in any of its shapes: a group dict, a list of groups, a list of ids or `{"id"}` dicts."""
    found: list[_Declared] = []
    for item in value if isinstance(value, list) else [value] if value else []:
        if isinstance(item, Mapping) and "models" in item:
            relation = item.get("relation")
            models = item.get("models") if isinstance(item.get("models"), list) else []
        else:
            relation, models = None, [item]
        for model in models:
            raw = model.get("id") if isinstance(model, Mapping) else model
            shown = f"baseModels: {relation or 'no relation'}: {raw}"
            found.append(
                _Declared(relation, str(raw), Evidence("relation", shown, "the Hub's resolved base model"))
            )
    return found


def _from_relation_tags(tags: Sequence[str]) -> list[_Declared]:
    matches = [m for tag in tags if (m := _RELATION_TAG.match(tag))]
    detail = "the relation tag the Hub computes from the card"
    return [_Declared(m.group(1), m.group(2), Evidence("relation", m.group(0), detail)) for m in matches]


def _from_bare_tags(tags: Sequence[str]) -> list[_Declared]:
    bare = [
        tag[len("base_model:") :]
        for tag in tags
        if tag.startswith("base_model:") and not _RELATION_TAG.match(tag)
    ]
    detail = "the bare base_model tag, which states no relation"
    return [_Declared(None, raw, Evidence("tag", f"base_model:{raw}", detail)) for raw in bare]


def _from_card(card_data: Mapping[str, Any]) -> list[_Declared]:
    value = card_data.get("base_model")
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    detail = "the card's base_model field"
    return [_Declared(None, str(raw), Evidence("card_field", f"base_model: {raw}", detail)) for raw in values]


def _relation(
    stated: list[str | None], parents: tuple[str, ...], tags: Sequence[str], card_data: Mapping[str, Any]
) -> tuple[str, Evidence | None]:
    """The relation: stated by the source, else from the parents' relation tags, the card, or assumed."""
    explicit = {r for r in stated if r in RELATIONS}
    if not explicit:
        explicit = {d.relation for d in _from_relation_tags(tags) if d.raw in parents}
        if explicit:
            return _pick(explicit), Evidence("relation", _pick(explicit), "from the parents' relation tags")
    if not explicit:
        card_relation = card_data.get("base_model_relation")
        if card_relation in RELATIONS:
            return card_relation, Evidence(
                "card_field", f"base_model_relation: {card_relation}", "stated by the card"
            )
        assumed = "merge" if len(parents) > 1 else "finetune"
        ignored = (
            f" (base_model_relation {card_relation!r} is not one of {RELATIONS})" if card_relation else ""
        )
        return assumed, Evidence(
            "relation", assumed, f"no relation stated: {len(parents)} parent(s){ignored}"
        )
    if len(explicit) > 1:
        detail = f"the source states {sorted(explicit)}: the most cautious one is kept"
        return _pick(explicit), Evidence("relation", _pick(explicit), detail)
    return explicit.pop(), None


def _pick(relations: set[str | None]) -> str:
    return next(r for r in _CAUTIOUS_FIRST if r in relations)


def parentage(
    model_id: str, base_models: Any, tags: Sequence[str], card_data: Mapping[str, Any] | None
) -> Parentage:
    """The declared parent(s) of `model_id` and the relation, from the first source that names a Hub id."""
    card = card_data or {}
    sources = (
        ("baseModels", _from_base_models(base_models)),
        ("relation tag", _from_relation_tags(tags)),
        ("base_model tag", _from_bare_tags(tags)),
        ("cardData.base_model", _from_card(card)),
    )
    notes: list[Evidence] = []
    for source, declared in sources:
        kept = [(d, parent) for d in declared if (parent := hub_id(d.raw)) and parent != model_id]
        for d in declared:
            if hub_id(d.raw) is None:
                notes.append(
                    d.evidence._replace(
                        detail=f"{d.raw!r} is not an org/name Hub id (a local path?): ignored"
                    )
                )
            elif hub_id(d.raw) == model_id:
                notes.append(d.evidence._replace(detail="names the model itself: ignored"))
        if not kept:
            continue
        parents = tuple(dict.fromkeys(parent for _, parent in kept))
        relation, why = _relation([d.relation for d, _ in kept], parents, tags, card)
        evidence = [*dict.fromkeys(d.evidence for d, _ in kept), *([why] if why else []), *notes]
        return Parentage(relation, parents, source, tuple(evidence))
    return Parentage(None, (), "none", tuple(notes))
