"""The comparability warning names every cell whose base and RPT rows come from different software."""

import json

import pandas as pd

from rpt_transfer.analysis.comparability import check_pairs, recorded_software
from rpt_transfer.analysis.tables import PairInfo

PAIR = PairInfo("p", "rpt", "base", ("math",), "grpo")
HF_CPU = {"backend": "hf@1", "torch": "2.13.0", "transformers": "5.0.0", "device": "cpu (x86_64)"}
MATH = {"math-verify": "0.9.0", "sympy": "1.14.0"}


def rows(model: str, benchmark: str, engine: dict | None, toolchain: dict | None = MATH, items=range(3)):
    return [
        {"model": model, "benchmark": benchmark, "benchmark_domain": "math", "item_id": f"i{i}",
         "sample_index": 0, "correct": 1.0,
         "engine": None if engine is None else json.dumps(engine, sort_keys=True),
         "toolchain": None if toolchain is None else json.dumps(toolchain, sort_keys=True)}
        for i in items
    ]  # fmt: skip


def warnings_for(*cells: list[dict]) -> list[str]:
    exclude, warnings = check_pairs(pd.DataFrame([row for cell in cells for row in cell]), [PAIR])
    assert not exclude  # software differences are named, never a reason to drop a cell
    return warnings


def test_identical_software_gives_no_warning() -> None:
    assert warnings_for(rows("base", "gsm", HF_CPU), rows("rpt", "gsm", HF_CPU)) == []


def test_different_engine_versions_are_named_with_the_cell() -> None:
    newer = {**HF_CPU, "transformers": "5.1.0"}
    warnings = warnings_for(rows("base", "gsm", HF_CPU), rows("rpt", "gsm", newer))
    assert warnings == [
        "pair 'p' on 'gsm': compared although base and RPT rows come from different software "
        "(engine.transformers: base '5.0.0' vs RPT '5.1.0')"
    ]


def test_different_backends_engines_and_devices_are_named() -> None:
    vllm = {"backend": "vllm@1", "vllm": "0.11.0", "torch": "2.13.0", "device": "NVIDIA H100", "cuda": "12.8"}
    (warning,) = warnings_for(rows("base", "gsm", HF_CPU), rows("rpt", "gsm", vllm))
    for part in (
        "engine.backend: base 'hf@1' vs RPT 'vllm@1'",
        "engine.cuda: base none vs RPT '12.8'",
        "engine.device: base 'cpu (x86_64)' vs RPT 'NVIDIA H100'",
        "engine.transformers: base '5.0.0' vs RPT none",
        "engine.vllm: base none vs RPT '0.11.0'",
    ):
        assert part in warning
    assert "engine.torch" not in warning


def test_scoring_toolchain_differences_are_named() -> None:
    (warning,) = warnings_for(
        rows("base", "gsm", HF_CPU), rows("rpt", "gsm", HF_CPU, toolchain={**MATH, "sympy": "1.15.0"})
    )
    assert warning.endswith("(toolchain.sympy: base '1.14.0' vs RPT '1.15.0')")


def test_rows_mixing_versions_and_rows_from_before_the_record_are_named() -> None:
    older = {**HF_CPU, "torch": "2.12.1"}
    base = rows("base", "gsm", HF_CPU, items=[0, 1]) + rows("base", "gsm", older, items=[2])
    (mixed,) = warnings_for(base, rows("rpt", "gsm", HF_CPU))
    assert "engine.torch: base '2.12.1' + '2.13.0' vs RPT '2.13.0'" in mixed
    both = warnings_for(base, rows("rpt", "gsm", HF_CPU, items=[0]) + rows("rpt", "gsm", older, items=[1, 2]))
    assert both == ["pair 'p' on 'gsm': base and RPT rows each mix software versions (engine.torch: '2.12.1' + "
                    "'2.13.0')"]  # fmt: skip
    (unrecorded,) = warnings_for(rows("base", "gsm", None, None), rows("rpt", "gsm", HF_CPU))
    assert "engine: base 'not recorded' vs RPT 'recorded'" in unrecorded
    assert "engine.torch: base none vs RPT '2.13.0'" in unrecorded


def test_only_the_cell_that_differs_is_named() -> None:
    newer = {**HF_CPU, "torch": "2.14.0"}
    cells = [rows("base", "gsm", HF_CPU), rows("rpt", "gsm", HF_CPU)]
    cells += [rows("base", "aime", HF_CPU), rows("rpt", "aime", newer)]
    (warning,) = warnings_for(*cells)
    assert warning.startswith("pair 'p' on 'aime': ")


def test_frames_without_the_columns_give_no_warning() -> None:
    frame = pd.DataFrame(rows("base", "gsm", HF_CPU) + rows("rpt", "gsm", HF_CPU)).drop(
        columns=["engine", "toolchain"]
    )
    assert recorded_software(frame) == {}
    assert check_pairs(frame, [PAIR]) == (set(), [])
