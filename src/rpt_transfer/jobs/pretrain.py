"""Pretrain job: build one of the project's tiny models from synthetic benchmark data.

The tiny models stand in for real base and RPT models so that a whole study runs offline on a CPU. Training
examples come from each benchmark's own generator under a training seed, rendered with the benchmark's
prompt exactly as the generate job will send it, followed by the benchmark's demonstration (by default
`ANSWER: <reference>`). A benchmark may add plain documents, such as the facts its questions ask about.
"""

import tempfile
from pathlib import Path

from rpt_transfer.generation.base import PromptMode
from rpt_transfer.hashing import short_hash
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.generate import benchmark_for
from rpt_transfer.jobs.models import local_model_dir
from rpt_transfer.store import Manifest


def training_seed(recipe_seed: int, benchmark: str) -> int:
    """Seed of a benchmark's training examples, distinct from the seed of its test items."""
    return int(short_hash(["train", recipe_seed, benchmark], length=8), 16)


def example_text(prompt: str, completion: str, prompt_mode: PromptMode) -> str:
    """One training example as generation will show it, less the <bos>/<eos> that train_lm adds."""
    from rpt_transfer.tiny import build_tokenizer

    if prompt_mode == "raw":
        return f"{prompt}\n{completion}"
    tokenizer = build_tokenizer()
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return text.removeprefix(tokenizer.bos_token).removesuffix(tokenizer.eos_token)


def corpus(corpus_inputs: dict, seed: int, prompt_mode: PromptMode) -> list[str]:
    """Training texts: `count` examples from each benchmark's generator, then its documents; a fixed order."""
    texts = []
    for name, entry in sorted(corpus_inputs.items()):
        bench = benchmark_for(entry["benchmark"])
        bench_seed = training_seed(seed, name)
        for record in bench.source.generator(bench_seed, entry["count"]):
            item = bench.to_item(record)
            texts.append(example_text(bench.render_prompt(item), bench.demonstrate(item), prompt_mode))
        if bench.documents is not None:
            texts.extend(bench.documents(bench_seed, entry["count"]))
    return texts


def run(ctx: JobContext) -> Manifest:
    """Train the tiny model of this job's recipe (optionally from its `init` model) and commit it."""
    from rpt_transfer.tiny import TinyConfig, train_lm

    inputs = ctx.job.inputs
    recipe = inputs["recipe"]
    texts = corpus(inputs["corpus"], recipe["seed"], inputs["prompt_mode"])
    init_dir = local_model_dir(inputs["init"], ctx.plan, ctx.store) if inputs["init"] else None
    config = TinyConfig(hidden_size=recipe["hidden_size"], layers=recipe["layers"])
    ctx.progress.start(recipe["steps"], f"pretrain {ctx.job.context['model']}")
    with tempfile.TemporaryDirectory(prefix="rpt-pretrain-") as tmp:
        out = Path(tmp) / "model"
        train_lm(
            texts,
            out,
            config=config,
            steps=recipe["steps"],
            batch_size=recipe["batch_size"],
            lr=recipe["learning_rate"],
            seed=recipe["seed"],
            init_dir=init_dir,
            on_step=lambda step, loss: ctx.progress.advance(),
        )
        with ctx.begin() as writer:
            writer.put_dir(out)
            return writer.commit()


__all__ = ["corpus", "example_text", "run"]
