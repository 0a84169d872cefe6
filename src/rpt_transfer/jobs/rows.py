"""Row schemas of generations and scores, and their Parquet round trip.

One row per sample. Shared by the generate, score and aggregate jobs so that a column has one meaning.

`engine` (generation) and `toolchain` (scores) record, as canonical JSON, the software outside our code
that shaped the row: engine versions, device and dtype; the scorer's libraries and compilers. They are
not in job ids (a patch upgrade reuses the cache) but the report compares them between base and RPT rows
(docs/reproducibility.md).

Score rows hold both scoring policies (docs/scoring-policies.md): `correct`/`extracted` are the strict
verdict, `correct_flexible`/`extracted_flexible` the flexible one, `format_followed` whether the stated
answer format was used. `isolation` names the sandbox level that ran the sample's program (null for
scorers that run none); `rerun` is true when a first attempt timed out and the verdict is that of one
re-run alone. Rows stored before a column existed read back with it null (`from_parquet`); readers treat a
null `correct_flexible` as equal to `correct`.
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
        ("correct_flexible", pa.float64()),
        ("extracted_flexible", pa.string()),
        ("format_followed", pa.bool_()),
        ("isolation", pa.string()),
        ("rerun", pa.bool_()),
    ]
)


def to_parquet(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> bytes:
    """Rows (dicts with exactly the schema's columns) to Parquet bytes."""
    table = pa.Table.from_pylist(list(rows), schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def from_parquet(data: bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """Parquet bytes to a table, with the columns added since the rows were stored as nulls.

    Score rows (they have `generation_job`) and generation rows come back with every column of today's
    schema, in its order, so no reader needs to know when a column appeared. `columns` reads only those
    (a column the file lacks comes back null); a file that is neither kind comes back as stored.
    """
    parquet = pq.ParquetFile(io.BytesIO(data))
    stored = parquet.schema_arrow
    schema = _schema_of(stored.names)
    if schema is None:
        return parquet.read(columns=list(columns) if columns is not None else None)
    wanted = list(columns) if columns is not None else schema.names
    table = parquet.read(columns=[name for name in wanted if name in stored.names])
    for name in wanted:
        if name not in stored.names and name in schema.names:
            field = schema.field(name)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select([name for name in wanted if name in table.column_names])


def _schema_of(names: Sequence[str]) -> pa.Schema | None:
    """Which of our schemas stored rows with these columns follow: scores, generations, or neither."""
    if "generation_job" in names:
        return SCORE_SCHEMA
    if "completion" in names and "prompt_hash" in names:
        return GENERATION_SCHEMA
    return None
