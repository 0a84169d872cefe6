"""docs/identity.md's table of local benchmark files agrees with the registry (what each source reads)."""

import pytest

from conftest import REPO
from rpt_transfer.benchmarks import ALL_BENCHMARKS
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource

DOC = (REPO / "docs" / "identity.md").read_text(encoding="utf-8")
DATASETS = [bench for bench in ALL_BENCHMARKS if isinstance(bench.source, DatasetSource)]


@pytest.mark.parametrize("bench", DATASETS, ids=lambda bench: bench.name)
def test_the_local_files_table_names_what_the_registry_reads(bench) -> None:
    (row,) = [line for line in DOC.splitlines() if line.startswith(f"| {bench.name} |")]
    source = bench.source
    for name in source.local_files:
        parts = name.split("/")
        if bench.name == "legalbench":  # one pattern for its ten task files
            assert "`legalbench/<task>/test.tsv`" in row and parts[1] in row, name
        else:
            assert f"`{name}`" in row or f"`{name}/`" in row, name
    for repo in source.hub_datasets():
        assert repo in row
    expected = (
        "none: not on the Hub"
        if not source.hub_datasets()
        else ("(resolved)" if source.revision == UNPINNED else "(pinned)")
    )
    assert expected in row
