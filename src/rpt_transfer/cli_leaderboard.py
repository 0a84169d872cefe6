"""The `rpt-transfer leaderboard` command: build the living leaderboard from the store and say where it is.

Thin, like cli.py: resolve the store and MLflow, call `analysis.leaderboard.build_leaderboard`, print.
"""

from pathlib import Path
from typing import Annotated

import typer

from rpt_transfer.cli_common import err, out


def leaderboard(
    store_uri: Annotated[
        str | None,
        typer.Option(
            "--store", help="Store to read (default: RPT_STORE, else .rpt/store).", show_default=False
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Also copy the files into this folder.", show_default=False),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow to log the `leaderboard` run to (default: MLFLOW_TRACKING_URI, else the SQLite file "
            "of a local store; `none`: no MLflow).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """One table of every RPT model against its base, from every finished study in the store.

    Writes HTML (sortable, filterable), JSON, CSV and the gain chart under `leaderboard/<digest>/` in the
    store; the same reports give the same digest, so a rebuild writes nothing new.
    """
    from rpt_transfer.analysis.leaderboard import build_leaderboard, locations, log_leaderboard
    from rpt_transfer.settings import default_tracking_uri, resolve
    from rpt_transfer.store import Store

    resolved = resolve(store_uri, tracking_uri)
    store = Store.from_uri(resolved.store_uri)
    store.check_access(write=False)  # a mistyped folder is an error, not a new empty store
    tracking = resolved.tracking_uri
    root = store.local_path()
    if tracking is None and "none" not in resolved.tracking_from and root is not None:
        tracking = default_tracking_uri(root)  # as `run` does: the store's own SQLite file
    built = build_leaderboard(store)
    for note in built.notes:
        err.print(f"note: {note}", markup=False)
    if out_dir is not None:
        store.download(built.prefix, out_dir)
        where = {name: str(out_dir / name) for name in locations(store, built.prefix)}
    else:
        where = locations(store, built.prefix)
    state = "built" if built.created else "unchanged, built before from the same reports"
    out.print(f"leaderboard: {len(built.rows)} rows ({state}); {store.key_uri(built.prefix)}", markup=False)
    for name, path in where.items():
        out.print(f"  {name}: {path}", markup=False)
    if tracking is not None:
        from rpt_transfer.analysis.leaderboard_mlflow import EXPERIMENT
        from rpt_transfer.tracking import experiment_name, open_tracker

        run_id = log_leaderboard(open_tracker(tracking, store), store, built)
        out.print(
            f"MLflow: {tracking} (experiment {experiment_name(EXPERIMENT)}, run {run_id})", markup=False
        )


def register(app: typer.Typer) -> None:
    """Add `leaderboard` to the main command."""
    app.command()(leaderboard)
