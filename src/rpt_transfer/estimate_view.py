"""How `plan --estimate` shows an estimate: tables per model and per train job, then notes and sources."""

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from rpt_transfer.estimate import Estimate, ModelEstimate, TrainEstimate

NO_FIGURE = "-"
_WIDEST = 1000
"""Columns a table may take before rich wraps its cells."""


def compact(count: float) -> str:
    """A token count short enough for a table column: 950, 12.3k, 4.56M, 1.20B."""
    for scale, suffix, digits in ((1e9, "B", 2), (1e6, "M", 2), (1e4, "k", 1)):
        if count >= scale:
            return f"{count / scale:.{digits}f}{suffix}"
    return f"{count:,.0f}"


def _hours(value: float | None) -> str:
    return NO_FIGURE if value is None else f"{value:,.1f}"


def _size(model: ModelEstimate) -> str:
    return "?" if model.size_b is None else f"{model.size_b:g}B"


def _prompt_tokens(model: ModelEstimate) -> str:
    text = compact(model.prompt_tokens)
    return f"{text} (+{model.uncounted_prompts:,} prompts not read)" if model.uncounted_prompts else text


def estimate_table(estimate: Estimate) -> Table:
    """One row per model and a total row; GPU-hour columns per GPU type (lower bounds)."""
    table = Table(title=f"estimate of study {estimate.study}", show_footer=True)
    totals = estimate.totals()
    footers = {
        "model": "total",
        "prompts": f"{totals['prompts']:,}",
        "samples": f"{totals['samples']:,}",
        "prompt tok": compact(totals["prompt_tokens"]),
        "completion tok": compact(totals["completion_tokens"]),
    }
    columns = ["model", "size", "prompts", "samples", "prompt tok", "counted by", "completion tok"]
    columns.append("length from")
    for gpu in estimate.gpus:
        columns.append(f"{gpu} GPU-h")
        covered = totals["gpu_hours_models"][gpu]
        hours = _hours(totals["gpu_hours"][gpu] if covered else None)
        footers[f"{gpu} GPU-h"] = f"{hours} ({covered}/{totals['models']} models)"
    for column in columns:
        numeric = column not in ("model", "counted by", "length from")
        table.add_column(column, footer=footers.get(column, ""), justify="right" if numeric else "left")
    for model in estimate.models:
        counted = "tokenizer" if model.token_count.startswith(("tokenizer", "tiny")) else "≈ bytes/4"
        table.add_row(
            model.name,
            _size(model),
            f"{model.prompts:,}",
            f"{model.samples:,}",
            _prompt_tokens(model),
            counted,
            compact(model.completion_tokens),
            model.completion_from,
            *(_hours(model.gpu_hours[gpu]) for gpu in estimate.gpus),
        )
    return table


def train_table(estimate: Estimate) -> Table:
    """One row per train job and a total row; rollout, update and total GPU-hours per GPU type."""
    table = Table(title=f"training in study {estimate.study}", show_footer=True)
    totals = estimate.totals()
    jobs = totals["train_jobs"]
    footers = {
        "run": "total",
        "samples": f"{totals['train_samples']:,}",
        "rollout tok": compact(totals["train_tokens"]),
    }
    columns = ["run", "size", "steps", "prompts", "samples", "tok/rollout", "rollout tok", "length from"]
    for gpu in estimate.gpus:
        columns += [f"{gpu} rollout GPU-h", f"{gpu} update GPU-h", f"{gpu} GPU-h"]
        updates = totals["train_update_gpu_hours_jobs"][gpu]
        footers[f"{gpu} update GPU-h"] = (
            f"{_hours(totals['train_update_gpu_hours'][gpu] if updates else None)} ({updates}/{jobs})"
        )
        covered = totals["train_gpu_hours_jobs"][gpu]
        footers[f"{gpu} GPU-h"] = (
            f"{_hours(totals['train_gpu_hours'][gpu] if covered else None)} ({covered}/{jobs})"
        )
    for column in columns:
        numeric = column not in ("run", "length from")
        table.add_column(column, footer=footers.get(column, ""), justify="right" if numeric else "left")
    for row in estimate.train:
        cells = []
        for gpu in estimate.gpus:
            cells += [
                _hours(row.rollout_gpu_hours[gpu]),
                _hours(row.update_gpu_hours[gpu]),
                _hours(row.gpu_hours[gpu]),
            ]
        table.add_row(
            row.name,
            _train_size(row),
            "?" if row.steps is None else f"{row.steps:,}",
            f"{row.prompts:,}",
            f"{row.samples:,}",
            compact(row.response_tokens),
            compact(row.tokens),
            row.response_from,
            *cells,
        )
    return table


def _train_size(row: TrainEstimate) -> str:
    return "?" if row.size_b is None else f"{row.size_b:g}B"


def train_lines(estimate: Estimate) -> list[str]:
    """How the train rows were made, the constants with their sources, and the study's total GPU-hours."""
    if not estimate.train:
        return []
    lines = ["training how:"]
    for label in sorted({r.steps_from for r in estimate.train}):
        lines.append(
            f"  steps from {label}: {_names([r.name for r in estimate.train if r.steps_from == label])}"
        )
    for source in sorted({r.response_from for r in estimate.train}):
        users = [r for r in estimate.train if r.response_from == source]
        what = {"spec": "resources.expected_completion_tokens (at most max_new_tokens)"}.get(
            source, "max_new_tokens, an upper bound"
        )
        lines.append(f"  tokens per rollout from {what}: {_names([r.name for r in users])}")
    for source in sorted({r.size_from for r in estimate.train if r.size_b is not None}):
        users = [r.name for r in estimate.train if r.size_b is not None and r.size_from == source]
        lines.append(f"  base size from {source}: {_names(users)}")
    costs = estimate.training
    if costs is not None:
        lines += [
            "training constants (throughput.yaml):",
            f"  update FLOPs = {costs.update_flops_per_param_token:g} × parameters × tokens: "
            f"{costs.update_flops_source}",
            f"  MFU {costs.mfu:.0%}: {costs.mfu_source}",
            *(
                f"  {p.gpu} bf16 peak {p.bf16_dense_tflops:g} TFLOPS: {p.source}; {p.url}"
                for p in costs.peaks
            ),
        ]
    totals = estimate.totals()
    parts = []
    for gpu in estimate.gpus:
        models, jobs = totals["gpu_hours_models"][gpu], totals["train_gpu_hours_jobs"][gpu]
        hours = _hours(totals["study_gpu_hours"][gpu] if models or jobs else None)
        updates = totals["train_update_gpu_hours_jobs"][gpu]
        alone = (
            f"; the updates of {updates} train jobs alone: {_hours(totals['train_update_gpu_hours'][gpu])}"
            if updates > jobs
            else ""
        )
        parts.append(
            f"{gpu} {hours} (generation of {models}/{totals['models']} models, training of "
            f"{jobs}/{totals['train_jobs']} jobs{alone})"
        )
    lines.append(
        f"study GPU-hours, lower bound (generation + training where figures exist): {'; '.join(parts)}"
    )
    return lines


def estimate_lines(estimate: Estimate) -> list[str]:
    """How each column was made, the notes, and every figure's source, one line each."""
    lines = ["how:"]
    for label in sorted({m.token_count for m in estimate.models}):
        users = [m.name for m in estimate.models if m.token_count == label]
        lines.append(f"  prompt tokens by {label}: {_names(users)}")
    for detail in sorted({m.completion_detail for m in estimate.models}):
        users = [m.name for m in estimate.models if m.completion_detail == detail]
        lines.append(f"  completion length {detail}: {_names(users)}")
    for source in sorted({m.size_from for m in estimate.models if m.size_b is not None}):
        users = [m.name for m in estimate.models if m.size_b is not None and m.size_from == source]
        lines.append(f"  size from {source}: {_names(users)}")
    lines += ["notes:", *(f"  {note}" for note in estimate.notes), "sources:"]
    for figure in estimate.sources:
        prefill = figure.prefill_tokens_per_s
        rates = f"decode {figure.decode_tokens_per_s:,.0f} tok/s" + (
            f", prefill {prefill:,.0f} tok/s" if prefill is not None else ", no prefill figure"
        )
        lines += [
            f"  [{figure.id}] {figure.gpu} × {figure.size}: {rates}",
            f"      {figure.model}, vLLM {figure.vllm}, {figure.gpus} GPU: {figure.measured}",
            f"      {figure.url}" + (f"; {figure.detail}" if figure.detail else ""),
        ]
    return lines


def _names(names: list[str], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def print_estimate(estimate: Estimate, console: Console) -> None:
    """The tables, then the how/notes/sources lines (plain text: no markup in user values)."""
    _print_wide(estimate_table(estimate), console)
    if estimate.train:
        _print_wide(train_table(estimate), console)
    for line in [*estimate_lines(estimate), *train_lines(estimate)]:
        console.print(line, markup=False)


def _print_wide(table: Table, console: Console) -> None:
    """Print a table at its natural width: rich caps a print at the console's (80 on a pipe), squeezing it."""
    natural = Measurement.get(console, console.options.update_width(_WIDEST), table).maximum
    wide = console
    if natural > console.width:
        wide = Console(file=console.file, width=natural, highlight=False, emoji=False)
    wide.print(table)
