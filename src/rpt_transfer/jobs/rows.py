"""Row schemas of generations and scores, and their Parquet round trip.

One row per sample. Shared by the generate, score and aggregate jobs so that a column has one meaning.

`engine` (generation) and `toolchain` (scores) record, as canonical JSON, the software outside our code
that shaped the row: engine versions, device and dtype; the scorer's libraries and compilers. They are
not in job ids (a patch upgrade reuses the cache) but the report compares them between base and RPT rows
(docs/reproducibility.md). Rows stored before these columns existed read back with them null.
"""

import io
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

GENERATION_SCHEMA = pa.schema(
    [
        ("study", pa.string()),
        ("job", pa.string()),
        ("model", pa.string()),
        ("model_ref", pa.string()),
        ("benchmark", pa.string()),
        ("item_id", pa.string()),
        ("sample_index", pa.int32()),
        ("prompt_hash", pa.string()),
        ("prompt", pa.string()),
        ("completion", pa.string()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int32()),
        ("completion_tokens", pa.int32()),
        ("error", pa.string()),
        ("engine", pa.string()),
    ]
)

SCORE_SCHEMA = pa.schema(
    [
        *[field for field in GENERATION_SCHEMA if field.name not in ("prompt", "job")],
        ("generation_job", pa.string()),
        ("job", pa.string()),
        ("benchmark_domain", pa.string()),
        ("scorer", pa.string()),
        ("extracted", pa.string()),
        ("correct", pa.float64()),
        ("reason", pa.string()),
        ("explanation", pa.string()),
        ("toolchain", pa.string()),
    ]
)


def to_parquet(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> bytes:
    """Rows (dicts with exactly the schema's columns) to Parquet bytes."""
    table = pa.Table.from_pylist(list(rows), schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def from_parquet(data: bytes) -> pa.Table:
    """Parquet bytes to a table."""
    return pq.read_table(io.BytesIO(data))
