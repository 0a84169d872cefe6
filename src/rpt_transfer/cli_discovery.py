"""The `rpt-transfer discover` command: new RPT models on the Hub, as a study to submit (docs/discovery.md).

Thin: parse, call `rpt_transfer.discovery`, print. Without `--submit` it is a dry run that writes nothing:
the study goes to stdout (or `--out`). With it the study is submitted as `rpt-transfer submit` does, and
only then are the decisions recorded in the registry, so a failed submit leaves the models to the next run.
Whatever discover itself says goes to stderr (the cron pod's log keeps both streams), so stdout holds
nothing but the study YAML in a dry run.
"""

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rpt_transfer.cli_cluster import ArgoServerOpt, NamespaceOpt, _say, _warn
from rpt_transfer.cli_common import err
from rpt_transfer.errors import RptError

if TYPE_CHECKING:
    from rpt_transfer.discovery import Decision

PREFILTERED = "no RL signal among its tags or in its name (card not read)"
LOG_WIDTH = 200
"""Width of the decision table where stderr is no terminal (a pod's log), so rows stay one line each."""


def _note(line: str) -> None:
    err.print(line, markup=False)


def discover(
    config: Annotated[
        Path,
        typer.Option("--config", help="Discovery config (YAML; see docs/discovery.md).", show_default=False),
    ],
    submit: Annotated[
        bool,
        typer.Option(
            "--submit",
            help="Submit the study (as `rpt-transfer submit`) and record the decisions; without it a dry run "
            "prints the study and writes nothing.",
        ),
    ] = False,
    namespace: NamespaceOpt = None,
    argo_server: ArgoServerOpt = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the study YAML here instead of stdout (with --submit: the file submitted, kept).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Find new RPT models under the configured bases on the Hub; print or submit them as one study."""
    from rpt_transfer.discovery import find_new, load_config, record
    from rpt_transfer.discovery.hub import Hub

    settings = load_config(config)
    found = find_new(settings, config, Hub())
    if not found.decisions:
        since = min(found.scanned.values())
        bases = len(found.scanned)
        _note(f"nothing new: no model created since {since} under {bases} base(s); nothing submitted")
        return
    _print_decisions(found.decisions)
    if found.study_yaml is None:
        where = f"recorded in {record(found)}" if submit else "dry run: nothing recorded"
        _note(f"no new RPT model among {len(found.decisions)} decision(s); nothing to submit ({where})")
        return
    name = found.run.study
    if not submit:
        if out_file is None:
            sys.stdout.write(found.study_yaml)  # as it is: no console wrapping or markup
        else:
            _write(out_file, found.study_yaml)
            _note(f"wrote study {name} to {out_file}")
        pairs = len(found.accepted)
        _note(f"dry run: nothing submitted or recorded; --submit submits study {name} ({pairs} pairs)")
        return
    from rpt_transfer.argo.submit import submit_study

    with tempfile.TemporaryDirectory(prefix="rpt-discover-") as folder:
        path = out_file or Path(folder) / f"{name}.yaml"
        _write(path, found.study_yaml)
        submitted = submit_study(
            path, namespace=namespace, argo_server=argo_server, score_chunk=None, say=_say, warn=_warn
        )
    _say(f"submitted Workflow {submitted.name} in namespace {submitted.namespace} (study {name})")
    _say(
        f"recorded {len(found.decisions)} decision(s) in {record(found, submitted.name, submitted.namespace)}"
    )


def _print_decisions(decisions: "list[Decision]") -> None:
    """One row per decision that read more than the listing, and a count of the rest (cron pod logs)."""
    shown = [d for d in decisions if d.reason != PREFILTERED]
    table = Table(title=f"discover: {len(decisions)} decision(s)", title_justify="left")
    for column in ("outcome", "model", "sha", "relation", "algorithm", "domains", "reason"):
        table.add_column(column, overflow="fold", no_wrap=column not in ("reason", "model"))
    for d in shown:
        domains = "+".join(d.domains) or "-"
        row = (d.outcome, d.id, (d.sha or "-")[:12], d.relation or "-", d.algorithm or "-", domains, d.reason)
        table.add_row(*row)
    if shown:
        wide = err if err.is_terminal else Console(stderr=True, highlight=False, emoji=False, width=LOG_WIDTH)
        wide.print(table)
    counts = Counter(d.outcome for d in decisions)
    passed = len(decisions) - len(shown)
    summary = ", ".join(f"{counts[o]} {o}" for o in ("accepted", "rejected", "skipped") if counts[o])
    tail = f" ({passed} rejected from the listing alone: no RL signal in tags or name)" if passed else ""
    _note(f"decisions: {summary}{tail}")


def _write(path: Path, text: str) -> None:
    """Write the whole file or nothing (a temporary file renamed into place)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            handle.write(text)
        os.replace(handle.name, path)
    except OSError as error:
        raise RptError(f"--out {path}: cannot write ({error.strerror or error})") from None


def register(app: typer.Typer) -> None:
    """Add `discover` to the main command; a 429 or 5xx that outlasts the retries exits 75 (Argo retries)."""
    from rpt_transfer.cli import transient_exits  # cli.py calls this after defining it

    app.command("discover")(transient_exits(discover))
