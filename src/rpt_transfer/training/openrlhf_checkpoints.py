"""The layout of OpenRLHF's resumable (DeepSpeed) checkpoints, in one place.

OpenRLHF 0.11.2 saves, every `--ckpt.save_steps` steps, the actor under `<ckpt.path>/_actor/global_step<N>/`
(a critic, where there is one, under `_critic/` with the same tag), through `strategy.save_ckpt`:

1. it first rotates older tags away (`--ckpt.max_num`, `--ckpt.max_mem`; tags starting with `best` are kept);
2. every rank writes its files into the tag folder; DeepSpeed's rank 0 then writes `<role>/latest` (the tag)
   *before* the closing barrier, so with several ranks `latest` may name a tag others still write;
3. after that barrier rank 0 writes `<tag>/metric.json`.

So a checkpoint is complete when `latest` names a `global_step<N>` (or `best_global_step<N>`) tag whose folder
holds `metric.json`, for the actor and, if `_critic/` exists, for the critic. Resuming (`--ckpt.load_enable`
with `<ckpt.path>/_actor` present) loads the tag `latest` names; OpenRLHF restores global step, episode,
consumed prompts and data loader state from the client states inside it. The HF copies
(`<ckpt.path>/global_step<N>_hf/`, `--ckpt.save_hf`) are not needed to resume and are left alone.

A stored (staged) checkpoint is a folder `step-<N>/` laid out as OpenRLHF reads it: `_actor/<tag>/...`,
`_actor/latest` (and `_critic/...` likewise), so it is uploaded as it is and `place_for_resume` puts it
back. Staging hard-links the files (a copy where links fail): OpenRLHF may rotate the originals away.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from rpt_transfer.errors import JobError

ACTOR = "_actor"
CRITIC = "_critic"
ROLES = (ACTOR, CRITIC)
LATEST = "latest"
"""DeepSpeed's file naming the newest tag of a role folder; what a resumed run loads."""
METRIC_FILE = "metric.json"
"""Written by OpenRLHF into a tag folder after every rank has saved: the tag is complete."""
STAGED_PREFIX = "step-"
_TAG = re.compile(r"(?:best_)?global_step(\d+)")

OnCheckpoint = Callable[[int, Path], None]


def tag_step(tag: str) -> int | None:
    """The global step a tag names (`global_step12`, `best_global_step12` → 12); None for any other name."""
    match = _TAG.fullmatch(tag.strip())
    return int(match.group(1)) if match else None


def step_tag(step: int) -> str:
    """The tag OpenRLHF gives the regular checkpoint of a step."""
    return f"global_step{step}"


def newest_complete(ckpt_path: Path | str) -> tuple[int, Path] | None:
    """The step and actor tag folder of the checkpoint `_actor/latest` names, if it is complete; else None."""
    found = _complete_tag(Path(ckpt_path))
    return None if found is None else (found[0], Path(ckpt_path) / ACTOR / found[1])


def stage(ckpt_path: Path | str, dest: Path | str, after: int = 0) -> tuple[int, Path] | None:
    """Link (or copy) the newest complete checkpoint, if newer than step `after`, into `dest/step-<N>/`.

    Returns its step and that folder, ready to upload or to `place_for_resume`; None when there is no newer
    complete checkpoint, or when it was rotated away or changed while being staged (the next one will come).
    """
    ckpt_path, dest = Path(ckpt_path), Path(dest)
    _check_outside(dest, ckpt_path)
    found = _complete_tag(ckpt_path)
    if found is None or found[0] <= after:
        return None
    step, tag = found
    partial = dest / f".{STAGED_PREFIX}{step}.{uuid.uuid4().hex}.partial"
    try:
        for role in _roles(ckpt_path):
            if not _link_tree(ckpt_path / role / tag, partial / role / tag):
                return None
            (partial / role / LATEST).write_text(tag, encoding="utf-8")
        folder = dest / f"{STAGED_PREFIX}{step}"
        shutil.rmtree(folder, ignore_errors=True)  # a leftover of an earlier attempt
        partial.rename(folder)
        return step, folder
    except FileNotFoundError:  # rotated away while being staged
        return None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def place_for_resume(stored: Path | str, ckpt_path: Path | str) -> int:
    """Lay a staged checkpoint (as `stage` makes it) out under `ckpt_path`; returns its step.

    OpenRLHF started with `--ckpt.path ckpt_path --ckpt.load_enable` then resumes from it. Whatever
    `ckpt_path` held in `_actor/` and `_critic/` goes; files are hard-linked where possible, else copied.
    """
    stored, ckpt_path = Path(stored), Path(ckpt_path)
    found = _complete_tag(stored)
    if found is None:
        raise JobError(
            f"{stored} holds no complete OpenRLHF checkpoint: expected {ACTOR}/{LATEST} naming a"
            f" global_step<N> folder beside it with {METRIC_FILE} inside"
        )
    step, tag = found
    for role in ROLES:
        shutil.rmtree(ckpt_path / role, ignore_errors=True)
    for role in _roles(stored):
        _link_tree(stored / role / tag, ckpt_path / role / tag)
        (ckpt_path / role / LATEST).write_text(tag, encoding="utf-8")
    return step


class CheckpointWatcher:
    """Reports each newly completed OpenRLHF checkpoint once, staged, to `on_checkpoint(step, folder)`.

    Each `poll` stages the newest complete checkpoint if its step is above every one reported (and above
    `after`: a resumed run's own starting point) into `staging/step-<N>/` and calls `on_checkpoint` with it;
    the folder is removed when the call returns unless `keep`. Checkpoints that come and go between two
    polls are skipped: the newest matters. What `on_checkpoint` raises propagates, and its step stays
    unreported.
    """

    def __init__(
        self,
        ckpt_path: Path | str,
        staging: Path | str,
        on_checkpoint: OnCheckpoint,
        *,
        after: int = 0,
        keep: bool = False,
    ) -> None:
        """Watch `ckpt_path` (OpenRLHF's `--ckpt.path`), staging into `staging` (outside its role folders)."""
        self.ckpt_path, self.staging = Path(ckpt_path), Path(staging)
        _check_outside(self.staging, self.ckpt_path)
        self.last_step = after
        """The newest step reported (or `after`)."""
        self._on_checkpoint = on_checkpoint
        self._keep = keep

    def poll(self) -> int | None:
        """Report the newest complete checkpoint if it is new; returns its step, or None."""
        staged = stage(self.ckpt_path, self.staging, after=self.last_step)
        if staged is None:
            return None
        step, folder = staged
        try:
            self._on_checkpoint(step, folder)
        finally:
            if not self._keep:
                shutil.rmtree(folder, ignore_errors=True)
        self.last_step = step
        return step


def _complete_tag(root: Path) -> tuple[int, str] | None:
    """The step and tag `_actor/latest` names if complete in every role folder present, else None."""
    tag = _read_latest(root / ACTOR)
    step = None if tag is None else tag_step(tag)
    if tag is None or step is None:
        return None
    for role in _roles(root):
        if _read_latest(root / role) != tag or not (root / role / tag / METRIC_FILE).is_file():
            return None
    return step, tag


def _roles(root: Path) -> list[str]:
    return [role for role in ROLES if (root / role).is_dir()]


def _read_latest(role_dir: Path) -> str | None:
    """The tag a `latest` file names; None if it is missing or empty (DeepSpeed truncates it, then writes)."""
    try:
        tag = (role_dir / LATEST).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    return tag or None


def _link_tree(src: Path, dst: Path) -> bool:
    """Hard-link (else copy) every file under src into dst; False if src changed meanwhile (rotation).

    Raises FileNotFoundError when src, or a file in it, disappears while being linked.
    """
    before = _listing(src)
    for relative in before:
        target = dst / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(src / relative, target)
    return _listing(src) == before


def _listing(folder: Path) -> dict[str, int]:
    """Every file under folder (relative path → size); FileNotFoundError if anything vanishes on the way.

    Unlike `os.walk`, a folder removed meanwhile is an error here, not silently an empty one.
    """
    files: dict[str, int] = {}
    pending = [folder]
    while pending:
        current = pending.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                else:
                    files[path.relative_to(folder).as_posix()] = entry.stat().st_size
    if not (folder / METRIC_FILE).is_file():
        raise FileNotFoundError(folder / METRIC_FILE)
    return files


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except FileNotFoundError:
        raise
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copy2(src, dst)


def _check_outside(staging: Path, ckpt_path: Path) -> None:
    """Refuse a staging folder inside a role folder: OpenRLHF's rotation counts and deletes what is there."""
    resolved = staging.resolve()
    for role in ROLES:
        if resolved.is_relative_to((ckpt_path / role).resolve()):
            raise ValueError(f"staging folder {staging} is inside {ckpt_path / role}, which OpenRLHF rotates")
