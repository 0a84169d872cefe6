"""Throughput of our HF decode loop against transformers' own `model.generate`, same model, same prompts.

Our loop exists so that every (request, sample) row draws from its own random stream; this script checks
what that costs. Both run greedy decoding on the same left-padded batches of a randomly initialised
Qwen2-shaped model (no download), with the same number of new tokens, and must produce the same tokens.

    .venv/bin/python benchmarks/hf_generation.py [--device cuda] [--hidden 1024] [--layers 12]
        [--requests 64] [--batch-size 32] [--max-tokens 128] [--rounds 2]

Prints tokens/s for both, the ratio (ours / generate), and on CUDA the peak memory of each. The first
round includes warm-up (CUDA kernels load lazily); the best round of each counts. `--temperature T`
samples instead (each loop its own way, so outputs are not compared).
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rpt_transfer.generation import GenRequest, SamplingParams
from rpt_transfer.generation.hf import HFBackend
from rpt_transfer.tiny import TinyConfig, build_model, build_tokenizer


def make_model(out: Path, hidden: int, layers: int, max_positions: int) -> None:
    """A random Qwen2-shaped model with the tiny character tokenizer, saved in HF format."""
    tokenizer = build_tokenizer()
    config = TinyConfig(
        arch="qwen2",
        hidden_size=hidden,
        layers=layers,
        heads=max(1, hidden // 64),
        intermediate_size=hidden * 11 // 4,
        max_positions=max_positions,
    )
    model = build_model(config, vocab_size=len(tokenizer), seed=0)
    model.generation_config.eos_token_id = None  # random weights: decode the full length in both loops
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def prompts(count: int) -> list[GenRequest]:
    """Prompts of varied length, so batches need left padding."""
    return [
        GenRequest(f"q{i}", [{"role": "user", "content": f"Question {i}: " + "abc " * (i % 7 + 1)}], i)
        for i in range(count)
    ]


def ours(
    backend: HFBackend, requests: list[GenRequest], max_tokens: int, temperature: float
) -> tuple[float, dict[str, str]]:
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature)
    _sync(backend.device)
    started = time.perf_counter()
    results = backend.generate(requests, params)
    _sync(backend.device)
    return time.perf_counter() - started, {r.request_id: r.completion for r in results}


@torch.inference_mode()
def theirs(
    backend: HFBackend, requests: list[GenRequest], max_tokens: int, temperature: float
) -> tuple[float, dict[str, str]]:
    """`model.generate` on the same batches our backend forms (sorted by prompt length)."""
    tokenizer, model = backend.tokenizer, backend.model
    tokenizer.padding_side = "left"
    texts = {r.request_id: backend.prompt_text(r.messages) for r in requests}
    order = sorted(requests, key=lambda r: len(tokenizer(texts[r.request_id])["input_ids"]))
    out: dict[str, str] = {}
    _sync(backend.device)
    started = time.perf_counter()
    for start in range(0, len(order), backend.batch_size):
        batch = order[start : start + backend.batch_size]
        encoded = tokenizer([texts[r.request_id] for r in batch], return_tensors="pt", padding=True)
        encoded = {key: value.to(backend.device) for key, value in encoded.items()}
        generated = model.generate(
            **encoded,
            max_new_tokens=max_tokens,
            min_new_tokens=max_tokens,
            do_sample=temperature > 0,
            temperature=temperature or None,
            top_p=None,
            top_k=None,
            pad_token_id=backend.pad_id,
        )
        width = encoded["input_ids"].shape[1]
        for request, row in zip(batch, generated[:, width:].tolist(), strict=True):
            out[request.request_id] = tokenizer.decode(row, skip_special_tokens=True)
    _sync(backend.device)
    return time.perf_counter() - started, out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy (outputs compared)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        make_model(Path(folder), args.hidden, args.layers, max_positions=args.max_tokens + 128)
        backend = HFBackend(folder, "raw", device=args.device, batch_size=args.batch_size)
        backend.eos_ids = set()  # both loops decode exactly max_tokens, so tokens/s compare like for like
        dtype = next(backend.model.parameters()).dtype
        print(
            f"device {backend.device} ({dtype}), temperature {args.temperature}, "
            f"hidden {args.hidden}, layers {args.layers}, "
            f"{args.requests} requests x {args.max_tokens} tokens, batch {args.batch_size}"
        )
        tokens = args.requests * args.max_tokens
        best: dict[str, float] = {}
        outputs: dict[str, dict[str, str]] = {}
        for _ in range(args.rounds):
            for name, fn in (("ours", ours), ("generate", theirs)):
                if backend.device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                seconds, outputs[name] = fn(
                    backend, prompts(args.requests), args.max_tokens, args.temperature
                )
                best[name] = min(best.get(name, seconds), seconds)
                if backend.device.type == "cuda":
                    peak = torch.cuda.max_memory_allocated() / 2**20
                    print(f"  {name:8s} {seconds:7.2f} s  peak {peak:8.1f} MiB")
        same = sum(outputs["ours"][key] == outputs["generate"][key] for key in outputs["ours"])
        print(f"ours:     {tokens / best['ours']:9.1f} tokens/s")
        print(f"generate: {tokens / best['generate']:9.1f} tokens/s")
        print(
            f"ratio ours/generate: {best['generate'] / best['ours']:.2f}x; "
            f"identical completions: {same}/{args.requests}"
            + (" (sampled: not expected)" if args.temperature else "")
        )


if __name__ == "__main__":
    main()
