"""OpenRLHF checkpoints: complete ones found, each reported once, staged safely, stored and placed back to resume.

`FakeOpenRLHF` writes files in the order OpenRLHF 0.11.2's `strategy.save_ckpt` and DeepSpeed 0.19.6's
`save_checkpoint` do: rotation of older tags first, then every rank's files, then `latest` (DeepSpeed's rank 0,
before its closing barrier), then `metric.json` (OpenRLHF's rank 0, after it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rpt_transfer.errors import JobError
from rpt_transfer.store import Store
from rpt_transfer.training import openrlhf_checkpoints as ckpts
from rpt_transfer.training.openrlhf_checkpoints import (
    CheckpointWatcher,
    newest_complete,
    place_for_resume,
    stage,
    step_tag,
    tag_step,
)

RANK_FILES = (
    "zero_pp_rank_{r}_mp_rank_00_model_states.pt",
    "bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt",
)


class FakeOpenRLHF:
    """Lays out `<ckpt.path>/_actor` (and `_critic`) exactly as OpenRLHF with DeepSpeed ZeRO does."""

    def __init__(self, path: Path, max_num: int = 2, ranks: int = 2, critic: bool = False) -> None:
        self.path, self.max_num, self.ranks = path, max_num, ranks
        self.roles = ["_actor", "_critic"] if critic else ["_actor"]

    def content(self, role: str, tag: str, name: str) -> bytes:
        return f"{role}/{tag}/{name}".encode() * 50

    def rotate(self, role: str) -> None:
        """save_ckpt's eviction: oldest regular tags go until one more fits in max_num (best_* are kept)."""
        folder = self.path / role
        regular = sorted(
            (d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("best")),
            key=lambda d: tag_step(d.name) or 0,
        )
        for old in regular[: max(0, len(regular) - self.max_num + 1)]:
            shutil.rmtree(old)

    def write_rank_files(self, role: str, tag: str, ranks: range) -> None:
        for rank in ranks:
            for pattern in RANK_FILES:
                name = pattern.format(r=rank)
                target = self.path / role / tag / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.content(role, tag, name))

    def write_latest(self, role: str, tag: str) -> None:
        (self.path / role / "latest").write_text(tag)

    def write_metric(self, role: str, tag: str) -> None:
        metric = {"metric_key": None, "metric_value": None}
        (self.path / role / tag / "metric.json").write_text(json.dumps(metric, indent=2, sort_keys=True))

    def save(self, step: int, tag: str | None = None) -> str:
        """One whole save of every role."""
        tag = tag or step_tag(step)
        for role in self.roles:
            (self.path / role).mkdir(parents=True, exist_ok=True)
            self.rotate(role)
            self.write_rank_files(role, tag, range(self.ranks))
            (self.path / role / "zero_to_fp32.py").write_text("# DeepSpeed's recovery script")
            self.write_latest(role, tag)
            self.write_metric(role, tag)
        return tag


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def staged_layout(fake: FakeOpenRLHF, tag: str) -> dict[str, bytes]:
    """What a staged checkpoint of `tag` must hold, byte for byte."""
    out: dict[str, bytes] = {}
    for role in fake.roles:
        out.update({f"{role}/{tag}/{k}": v for k, v in tree(fake.path / role / tag).items()})
        out[f"{role}/latest"] = tag.encode()
    return out


def test_tag_names() -> None:
    assert tag_step("global_step12") == 12
    assert tag_step("best_global_step7") == 7
    assert tag_step("global_step12\n") == 12  # as read from `latest`
    for other in ("global_step12_hf", "step12", "global_stepx", "", "latest", "best_global_step"):
        assert tag_step(other) is None
    assert step_tag(40) == "global_step40"
    assert tag_step(step_tag(40)) == 40


def test_only_complete_checkpoints_count(tmp_path: Path) -> None:
    fake = FakeOpenRLHF(tmp_path / "ckpt")
    assert newest_complete(fake.path) is None  # nothing yet
    fake.save(2)
    assert newest_complete(fake.path) == (2, fake.path / "_actor" / "global_step2")
    # Step 4: rank 0 done, rank 1 still writing, `latest` untouched: still step 2.
    fake.rotate("_actor")
    fake.write_rank_files("_actor", "global_step4", range(1))
    assert newest_complete(fake.path) == (2, fake.path / "_actor" / "global_step2")
    # DeepSpeed's rank 0 writes `latest` before the barrier: not complete until OpenRLHF's metric.json.
    fake.write_latest("_actor", "global_step4")
    assert newest_complete(fake.path) is None
    (fake.path / "_actor" / "latest").write_text("")  # caught between truncation and write
    assert newest_complete(fake.path) is None
    fake.write_rank_files("_actor", "global_step4", range(1, 2))
    fake.write_latest("_actor", "global_step4")
    fake.write_metric("_actor", "global_step4")
    assert newest_complete(fake.path) == (4, fake.path / "_actor" / "global_step4")
    # max_num=2: the next save rotates step 2 away and (with max_num=1) could take the one `latest` names.
    shutil.rmtree(fake.path / "_actor" / "global_step4")
    assert newest_complete(fake.path) is None
    (fake.path / "_actor" / "latest").write_text("not_a_step_tag")
    assert newest_complete(fake.path) is None


def test_a_critic_must_be_complete_too(tmp_path: Path) -> None:
    fake = FakeOpenRLHF(tmp_path / "ckpt", critic=True)
    fake.save(1)
    assert newest_complete(fake.path) == (1, fake.path / "_actor" / "global_step1")
    for role in ("_actor", "_critic"):
        fake.write_rank_files(role, "global_step2", range(2))
    fake.write_latest("_actor", "global_step2")
    fake.write_metric("_actor", "global_step2")
    assert newest_complete(fake.path) is None  # the critic still saves step 2
    fake.write_latest("_critic", "global_step2")
    assert newest_complete(fake.path) is None
    fake.write_metric("_critic", "global_step2")
    assert newest_complete(fake.path) == (2, fake.path / "_actor" / "global_step2")
    staged = stage(fake.path, tmp_path / "staging")
    assert staged is not None
    assert tree(staged[1]) == staged_layout(fake, "global_step2")


def test_watcher_reports_each_complete_step_once(tmp_path: Path) -> None:
    fake = FakeOpenRLHF(tmp_path / "ckpt", max_num=2)
    reported: list[tuple[int, dict[str, bytes]]] = []

    def on_checkpoint(step: int, folder: Path) -> None:
        assert folder == tmp_path / "staging" / f"step-{step}"
        reported.append((step, tree(folder)))

    watcher = CheckpointWatcher(fake.path, tmp_path / "staging", on_checkpoint)
    assert watcher.poll() is None
    tag1 = fake.save(1)
    want1 = staged_layout(fake, tag1)
    assert watcher.poll() == 1
    assert watcher.poll() is None  # once
    # Half-written step 2: files, no `latest` update.
    fake.rotate("_actor")
    fake.write_rank_files("_actor", "global_step2", range(1))
    assert watcher.poll() is None
    fake.write_rank_files("_actor", "global_step2", range(1, 2))
    fake.write_latest("_actor", "global_step2")
    fake.write_metric("_actor", "global_step2")
    want2 = staged_layout(fake, "global_step2")
    assert watcher.poll() == 2
    fake.save(3)
    tag4 = fake.save(4)  # two saves between polls: 3 is skipped, 4 comes
    want4 = staged_layout(fake, tag4)
    assert sorted(p.name for p in (fake.path / "_actor").iterdir()) == [
        "global_step3",
        "global_step4",
        "latest",
        "zero_to_fp32.py",
    ]  # rotation kept max_num=2; the recovery script beside the tags is not needed to resume
    assert watcher.poll() == 4
    fake.save(4, tag="best_global_step4")  # a best checkpoint of a step already reported
    assert watcher.poll() is None
    tag5 = fake.save(5, tag="best_global_step5")  # a best checkpoint of a new step is one to resume from
    assert watcher.poll() == 5
    assert [step for step, _ in reported] == [1, 2, 4, 5]
    assert reported[:3] == [(1, want1), (2, want2), (4, want4)]
    assert reported[3][1] == staged_layout(fake, tag5)
    assert reported[3][1]["_actor/latest"] == b"best_global_step5"
    assert list((tmp_path / "staging").iterdir()) == []  # each staged folder went after its call


def test_watcher_keeps_after_and_raises_what_on_checkpoint_raised(tmp_path: Path) -> None:
    fake = FakeOpenRLHF(tmp_path / "ckpt", max_num=3)
    fake.save(5)  # the checkpoint this run resumed from
    reported: list[int] = []
    watcher = CheckpointWatcher(
        fake.path, tmp_path / "staging", lambda step, _: reported.append(step), after=5
    )
    assert watcher.poll() is None
    fake.save(6)
    assert watcher.poll() == 6 and watcher.poll() is None
    assert reported == [6]

    def broken(step: int, folder: Path) -> None:
        raise RuntimeError(f"store unreachable at step {step}")

    failing = CheckpointWatcher(fake.path, tmp_path / "staging2", broken)
    with pytest.raises(RuntimeError, match="step 6"):
        failing.poll()
    assert failing.last_step == 0  # never reported, so offered again by the next poll
    assert not (tmp_path / "staging2" / "step-6").exists()


def test_rotated_mid_copy_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOpenRLHF(tmp_path / "ckpt")
    fake.save(1)
    real_link = os.link
    calls = {"n": 0}

    def link_then_rotate(src: str | Path, dst: str | Path) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # OpenRLHF's next save rotates the tag away while it is being staged
            shutil.rmtree(fake.path / "_actor" / "global_step1")
        real_link(src, dst)

    monkeypatch.setattr(ckpts.os, "link", link_then_rotate)
    reported: list[int] = []
    watcher = CheckpointWatcher(fake.path, tmp_path / "staging", lambda s, f: reported.append(s))
    assert watcher.poll() is None
    assert reported == []
    assert list((tmp_path / "staging").iterdir()) == []  # no partial folder left
    fake.save(2)
    assert watcher.poll() == 2  # the next one comes


def test_a_file_gone_after_it_was_linked_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rmtree deleting files this stage linked already (it saw the folder whole): no error, yet incomplete."""
    fake = FakeOpenRLHF(tmp_path / "ckpt")
    fake.save(1)
    folder = fake.path / "_actor" / "global_step1"
    count = len(list(folder.iterdir()))
    real_link = os.link
    linked: list[Path] = []

    def link_then_delete_first(src: str | Path, dst: str | Path) -> None:
        real_link(src, dst)
        linked.append(Path(src))
        if len(linked) == count:
            linked[0].unlink()

    monkeypatch.setattr(ckpts.os, "link", link_then_delete_first)
    assert stage(fake.path, tmp_path / "staging") is None
    assert list((tmp_path / "staging").iterdir()) == []


def test_copies_where_links_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOpenRLHF(tmp_path / "ckpt")
    tag = fake.save(3)

    def no_links(src: str | Path, dst: str | Path) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(ckpts.os, "link", no_links)
    staged = stage(fake.path, tmp_path / "staging")
    assert staged is not None
    assert staged[0] == 3
    assert tree(staged[1]) == staged_layout(fake, tag)
    source = fake.path / "_actor" / tag / RANK_FILES[0].format(r=0)
    assert os.stat(source).st_ino != os.stat(staged[1] / "_actor" / tag / source.name).st_ino


def test_staging_inside_a_role_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rotates"):
        CheckpointWatcher(tmp_path / "ckpt", tmp_path / "ckpt" / "_actor" / "staging", lambda s, f: None)


def test_stored_checkpoint_resumes_from_the_same_step(tmp_path: Path, s3_store_uri: str) -> None:
    fake = FakeOpenRLHF(tmp_path / "run1", max_num=2, critic=True)
    fake.save(2)
    tag = fake.save(4)
    want = {role: tree(fake.path / role / tag) for role in fake.roles}
    store = Store.from_uri(s3_store_uri)
    prefix = "training/0123456789abcdef/step-000004"

    def upload(step: int, folder: Path) -> None:  # as the train job's `_save_resume_point` does
        with store.begin(
            prefix, job_id="0123456789abcdef", kind="train-checkpoint", inputs={"step": step}
        ) as w:
            w.put_dir(folder)
            w.put_bytes("metrics.jsonl", b"")
            w.commit()

    assert CheckpointWatcher(fake.path, tmp_path / "staging", upload).poll() == 4
    shutil.rmtree(fake.path)  # the pod is gone

    downloaded = store.download(prefix, tmp_path / "run2" / "trainer" / "checkpoint-4")
    ckpt_path = tmp_path / "run2" / "trainer" / "ckpt"
    (ckpt_path / "_actor" / "global_step9").mkdir(parents=True)  # whatever was there before goes
    assert place_for_resume(downloaded, ckpt_path) == 4
    assert newest_complete(ckpt_path) == (4, ckpt_path / "_actor" / tag)
    for role in fake.roles:
        assert (ckpt_path / role / "latest").read_text() == tag
        assert tree(ckpt_path / role / tag) == want[role]
    assert sorted(p.name for p in (ckpt_path / "_actor").iterdir()) == [tag, "latest"]
    # The resumed run saves on; its watcher starts after the step it resumed from.
    resumed = FakeOpenRLHF(ckpt_path, max_num=2, critic=True)
    seen: list[int] = []
    watcher = CheckpointWatcher(
        ckpt_path, tmp_path / "run2" / "staging", lambda s, f: seen.append(s), after=4
    )
    assert watcher.poll() is None
    resumed.save(6)
    assert watcher.poll() == 6
    assert tree(downloaded / "_actor" / tag) == want["_actor"]  # placing linked, never moved or changed


def test_placing_something_else_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "stored" / "_actor" / "global_step3").mkdir(parents=True)
    (tmp_path / "stored" / "_actor" / "latest").write_text("global_step3")  # no metric.json: never completed
    with pytest.raises(JobError, match="no complete OpenRLHF checkpoint"):
        place_for_resume(tmp_path / "stored", tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()
