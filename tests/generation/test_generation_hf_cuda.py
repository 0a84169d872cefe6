"""The HF backend on a GPU: bf16, samples independent of batching, agreement with the CPU, memory.

CI has no GPU, so these skip there. On a GPU machine (needs torch, transformers, pydantic, pytest):

    python -m pytest --noconftest -s tests/generation/test_generation_hf_cuda.py
"""

from pathlib import Path

import pytest
import torch

from rpt_transfer.generation import GenRequest, GenResult, SamplingParams
from rpt_transfer.generation.hf import HFBackend
from rpt_transfer.tiny import TinyConfig, build_model, build_tokenizer, train_lm

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def ask(request_id: str, content: str, seed: int = 0) -> GenRequest:
    return GenRequest(request_id, [{"role": "user", "content": content}], seed)


REQUESTS = [ask(f"r{a}-{b}", f"Q: {a}+{b}=?\nA:", seed=a * 31 + b) for a in range(0, 15, 3) for b in range(4)]


def rows(results: list[GenResult]) -> list[tuple[str, int, str, str, int]]:
    return [
        (r.request_id, r.sample_index, r.completion, r.finish_reason, r.completion_tokens) for r in results
    ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained model (on the CPU): peaked enough that greedy decoding has no near-ties."""
    texts = [f"Q: {a}+{b}=?\nA: {a + b}" for a in range(15) for b in range(15)]
    out = tmp_path_factory.mktemp("tiny-lm")
    train_lm(texts, out, config=TinyConfig(layers=2, max_positions=64), steps=150, seed=0, threads=None)
    return out


@pytest.fixture(scope="module")
def cuda(model_dir: Path) -> HFBackend:
    return HFBackend(model_dir, "raw", batch_size=8)


def test_default_device_is_cuda_in_bf16(cuda: HFBackend) -> None:
    assert cuda.device.type == "cuda"
    assert next(cuda.model.parameters()).dtype == torch.bfloat16
    assert next(cuda.model.parameters()).device.type == "cuda"


def test_greedy_is_the_same_in_any_batch(cuda: HFBackend) -> None:
    params = SamplingParams(max_tokens=8)
    batched = cuda.generate(REQUESTS, params)
    single = [result for request in REQUESTS for result in cuda.generate([request], params)]
    assert rows(batched) == rows(single)
    assert any(r.completion.strip() for r in batched)
    print(
        f"\ngreedy on CUDA: {sum(r.finish_reason == 'stop' for r in batched)}/{len(batched)} ended with eos"
    )


def test_samples_are_the_same_in_any_batch(cuda: HFBackend) -> None:
    params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=8, n=3)
    batched = cuda.generate(REQUESTS, params)
    single = [result for request in REQUESTS for result in cuda.generate([request], params)]
    assert rows(batched) == rows(single)


def test_greedy_agrees_with_the_cpu(model_dir: Path, cuda: HFBackend) -> None:
    """bf16 on the GPU against fp32 on the CPU: a peaked model should give the same greedy answers."""
    cpu = HFBackend(model_dir, "raw", device="cpu", batch_size=8)
    params = SamplingParams(max_tokens=8)
    on_gpu, on_cpu = rows(cuda.generate(REQUESTS, params)), rows(cpu.generate(REQUESTS, params))
    same = sum(a == b for a, b in zip(on_gpu, on_cpu, strict=True))
    print(f"\ngreedy bf16 CUDA vs fp32 CPU: {same}/{len(on_gpu)} identical")
    assert same >= 0.9 * len(on_gpu)


def test_memory_and_throughput_of_a_larger_model(tmp_path: Path) -> None:
    """A ~0.2B-parameter Qwen2-shaped model: 64 prompts x 128 tokens in batches of 32 fit and finish."""
    tokenizer = build_tokenizer()
    config = TinyConfig(
        arch="qwen2", hidden_size=1024, layers=12, heads=16, intermediate_size=2816, max_positions=512
    )
    model = build_model(config, vocab_size=len(tokenizer), seed=0)
    parameters = sum(p.numel() for p in model.parameters())
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    del model
    torch.cuda.reset_peak_memory_stats()
    backend = HFBackend(tmp_path, "raw", batch_size=32)
    requests = [ask(f"q{i}", f"Question {i}: " + "abc " * (i % 9 + 1), seed=i) for i in range(64)]
    params = SamplingParams(temperature=1.0, max_tokens=128)
    backend.generate(requests, params)  # warm-up: CUDA loads kernels lazily, per shape
    torch.cuda.synchronize()
    import time

    started = time.perf_counter()
    results = backend.generate(requests, params)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = sum(r.completion_tokens for r in results)
    peak = torch.cuda.max_memory_allocated()
    print(
        f"\n{parameters / 1e6:.0f}M parameters, bf16: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.0f} "
        f"tokens/s, peak GPU memory {peak / 2**20:.0f} MiB"
    )
    assert len(results) == 64 and all(r.finish_reason in ("stop", "length") for r in results)
    weights = 2 * parameters
    kv_cache = 2 * 12 * 1024 * 2 * 32 * (128 + 64)  # k and v, layers, width, bf16, batch, positions
    assert peak < 3 * (weights + kv_cache) + (256 << 20)


def test_engine_versions_name_the_gpu_and_cuda(cuda: HFBackend) -> None:
    engine = cuda.engine_versions()
    assert engine["device"] == torch.cuda.get_device_name(0)
    assert engine["cuda"] == torch.version.cuda
    assert engine["dtype"] == "bfloat16"
