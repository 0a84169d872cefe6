"""OpenRLHF as the cluster trainer: one `train_ppo_ray` process, watched from the train job.

OpenRLHF (0.11, extra `train`) writes checkpoints only to local disk and metrics only to TensorBoard or
W&B, and it runs in its own process (Ray, DeepSpeed and vLLM start there; `ray.init()` joins the Ray
cluster of a KubeRay RayJob, or starts a local one inside a single GPU pod). So this backend:

1. exports the prompts with their reward labels (`openrlhf_data`), rendered exactly as evaluation renders
   them, `steps x prompts_per_step` rows so that one pass makes exactly the planned steps;
2. picks the reward: the reward service (`RPT_REWARD_URL`) when one is configured, and always for scorers
   that run model-written code (never next to GPUs and credentials), else the reward function file;
3. lays a stored checkpoint out for OpenRLHF's own resume (`--ckpt.load_enable`);
4. starts `python -m openrlhf.cli.train_ppo_ray` with the flag table's argv and, while it runs, hands
   each step's TensorBoard scalars to `on_step` and each completed checkpoint to `on_checkpoint` (the
   train job uploads it to the store), stopping the run when the reward fails too often.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rpt_transfer.errors import JobError
from rpt_transfer.scoring import get_scorer
from rpt_transfer.settings import REWARD_URL_ENV
from rpt_transfer.training import openrlhf_flags as table
from rpt_transfer.training.base import OnCheckpoint, OnStep, TrainRequest
from rpt_transfer.training.config import OpenRlhfSettings
from rpt_transfer.training.reward_service import FAILURE_LOG

POLL_SECONDS = 2.0
"""How often the running trainer's TensorBoard events and checkpoint folder are read."""
STOP_GRACE_SECONDS = 30.0
"""How long OpenRLHF gets to stop after SIGTERM before it is killed."""
HEALTH_TIMEOUT = 10.0

if TYPE_CHECKING:
    from rpt_transfer.training.openrlhf_checkpoints import CheckpointWatcher


class OpenRlhfTrainer:
    """Trainer backend on OpenRLHF; see the module docstring."""

    def train(self, request: TrainRequest, on_step: OnStep, on_checkpoint: OnCheckpoint) -> dict[str, float]:
        """Run OpenRLHF to the end (or resume it); see `Trainer.train`."""
        from rpt_transfer.training.openrlhf_checkpoints import CheckpointWatcher, place_for_resume
        from rpt_transfer.training.openrlhf_data import export_prompts

        settings = settings_of(request.settings)
        check_installation(settings)
        reward = reward_endpoint(request.reward.scorer_name)
        work = request.work_dir
        work.mkdir(parents=True, exist_ok=True)
        steps = request.hyper.total_steps(len(request.examples))
        exported = export_prompts(
            request.examples,
            request.reward.scorer_name,
            request.hyper.reward_policy,
            request.prompt_mode,
            request.model_dir,
            steps * request.hyper.prompts_per_step,
            request.seed,
            work / "prompts.jsonl",
        )
        paths = table.RunPaths(
            model_dir=request.model_dir,
            prompts=exported.path,
            checkpoints=work / "ckpt",
            final=request.out_dir,
            tensorboard=work / "tensorboard",
            reward=reward,
        )
        resumed = (
            0 if request.resume_from is None else place_for_resume(request.resume_from, paths.checkpoints)
        )
        flags = table.argv_flags(
            request.algorithm,
            request.hyper,
            request.seed,
            settings,
            paths,
            table.RunShape(steps, exported.max_prompt_tokens),
        )
        command = [sys.executable, "-m", table.ENTRY_MODULE, *table.argv(flags)]
        watcher = CheckpointWatcher(paths.checkpoints, work / "staged", on_checkpoint, after=resumed)
        last = _Run(command, paths, request, on_step, resumed).follow(watcher)
        _check_final(request.out_dir)
        return {"train_steps": float(last)}


def settings_of(values: Mapping[str, Any]) -> OpenRlhfSettings:
    """The run's OpenRLHF settings from the train job's context (planned by `planner.trainer_context`)."""
    return OpenRlhfSettings.model_validate(dict(values))


def check_installation(settings: OpenRlhfSettings) -> None:
    """Refuse, in one line, an OpenRLHF of another series, flags it lacks, or nodes without a Ray cluster."""
    problem = table.version_problem()
    if problem is not None:
        raise JobError(f"trainer openrlhf: {problem}")
    source = table.installed_source()
    if source is None:
        raise JobError(f"trainer openrlhf: {table.ENTRY_MODULE} is missing from the installed OpenRLHF")
    problems = table.flag_problems(settings.extra_args, table.parser_flags(source), "openrlhf.extra_args")
    if problems:
        raise JobError(problems[0])
    if settings.nodes > 1 and not os.environ.get("RAY_ADDRESS"):
        raise JobError(
            f"openrlhf.nodes: {settings.nodes} nodes need a Ray cluster, and RAY_ADDRESS is unset; run the "
            "study on a cluster, where the train-ray step starts one (a KubeRay RayJob), or use nodes: 1"
        )


def reward_endpoint(scorer: str) -> str:
    """`--reward.remote_url`: the reward service when configured (checked reachable), else the reward file.

    A scorer that runs model-written code never runs in the trainer's process: it needs the service.
    """
    url = os.environ.get(REWARD_URL_ENV, "").strip()
    if url:
        check_reward_service(url)
        return url
    if get_scorer(scorer).runs_programs:
        raise JobError(
            f"reward: scorer {scorer} runs model-written code, which may not run next to GPUs or "
            f"credentials; set {REWARD_URL_ENV} to a reward service (`rpt-transfer reward-server`, path "
            "/get_reward)"
        )
    from rpt_transfer.training import openrlhf_reward

    return str(Path(openrlhf_reward.__file__).resolve())


def check_reward_service(url: str) -> None:
    """Ask the reward service's /health before any GPU work; one line when it does not answer 200."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise JobError(
            f"{REWARD_URL_ENV}: {url!r} is not an http(s) URL; accepted: http://HOST:PORT/get_reward"
        )
    health = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/health", "", ""))
    try:
        with urllib.request.urlopen(health, timeout=HEALTH_TIMEOUT) as answer:
            status = answer.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise JobError(
            f"{REWARD_URL_ENV}: the reward service at {url} is unreachable ({reason}); start "
            "`rpt-transfer reward-server` there or fix the URL"
        ) from None
    if status != 200:
        raise JobError(f"{REWARD_URL_ENV}: the reward service at {url} answered {status} on /health, not 200")


class _Run:
    """One OpenRLHF process: its TensorBoard steps relayed, its reward failures watched, stopped on error."""

    def __init__(
        self, command: list[str], paths: table.RunPaths, request: TrainRequest, on_step: OnStep, resumed: int
    ) -> None:
        from rpt_transfer.training.tensorboard_tail import EventTail

        self.command = command
        self.paths = paths
        self.events = EventTail(paths.tensorboard)
        self.request = request
        self.on_step = on_step
        self.last_step = resumed
        self.samples_per_step = request.hyper.prompts_per_step * request.hyper.rollouts_per_prompt

    def follow(self, watcher: CheckpointWatcher) -> int:
        """Run to the end, relaying steps and checkpoints as they appear; returns the last step.

        Each round releases the steps up to the newest complete checkpoint before reporting it (OpenRLHF logs
        step N before it saves checkpoint N), so a stored checkpoint carries the metrics of its steps.
        """
        from rpt_transfer.training.openrlhf_checkpoints import newest_complete

        print(f"train: {' '.join(self.command[:3])} ... ({len(self.command) - 3} arguments)", file=sys.stderr)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(self.command, env=env, start_new_session=True)
        try:
            while process.poll() is None:
                time.sleep(POLL_SECONDS)
                saved = newest_complete(self.paths.checkpoints)
                self._relay(through=saved[0] if saved else None)
                watcher.poll()
            self._relay(final=True)
            watcher.poll()
        except BaseException:
            _stop(process)
            raise
        if process.returncode != 0:
            raise JobError(
                f"OpenRLHF stopped with exit code {process.returncode} after step {self.last_step}; its log "
                "is above (the next attempt resumes from the newest stored checkpoint)"
            )
        return self.last_step

    def _relay(self, *, through: int | None = None, final: bool = False) -> None:
        for step, metrics in self.events.poll(through=through, final=final):
            if step <= self.last_step:
                continue  # a resumed run logs again from its checkpoint's step: the store has those
            self.last_step = step
            self.on_step(step, metrics)
            self._count_failures(metrics)

    def _count_failures(self, metrics: Mapping[str, float]) -> None:
        """Fold a step's failure rate (the mean of `reward_failure`) into the reward's counters."""
        samples = int(metrics.get("rollout/num_samples", self.samples_per_step))
        self.request.reward.count_elsewhere(samples, round(metrics.get(FAILURE_LOG, 0.0) * samples))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop OpenRLHF and everything it started (Ray workers, vLLM): SIGTERM, then SIGKILL after a grace."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _check_final(folder: Path) -> None:
    """OpenRLHF saved the final weights in HF format (config, weights, tokenizer)."""
    has_weights = any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))
    if not (folder / "config.json").is_file() or not has_weights:
        raise JobError(f"OpenRLHF finished without final HF weights in {folder} (config.json and weights)")
