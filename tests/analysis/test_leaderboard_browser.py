"""The leaderboard page as headless Chromium shows it: table and chart drawn, filters and sorting run.

The screenshot test compares the page with itself with the table, then the chart, made invisible
(`visibility: hidden` keeps the layout): each must change a large area with real pixel variation.
`--dump-dom` returns the DOM after the page's script ran, so filters and sorting read from the URL (and a
simulated click) are checked on what the browser made of the page, not on the template.

`RPT_UPDATE_SCREENSHOTS=1` also writes the screenshot to docs/images/leaderboard.png (the README's).
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_leaderboard import CODE_SHA, store  # noqa: F401 - fixture
from test_report_render import FLAGS, browser

from rpt_transfer.analysis.leaderboard import build_leaderboard
from rpt_transfer.analysis.leaderboard_render import HTML
from rpt_transfer.store import Store

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "leaderboard.png"
WIDTH, HEIGHT = 1800, 1100
SETTLED = ("--virtual-time-budget=5000", "--run-all-compositor-stages-before-draw")
"""Screenshot only once the page has loaded and every tile is drawn (a half-drawn page differs at random)."""
ROW = re.compile(r"<tr data-key=\"(?P<key>[0-9a-f]+)\"(?P<attributes>[^>]*)>")


@pytest.fixture
def page(store: Store, tmp_path: Path):  # noqa: F811 - the fixture imported above
    built = build_leaderboard(store, sizes={f"org/rpt-code@{CODE_SHA}": 7_615_616_512})
    path = tmp_path / HTML
    shutil.copyfile(store.local_path() / store.object_key(built.prefix, HTML), path)
    return path, built


def chromium(*arguments: str) -> subprocess.Popen:
    """Start headless Chromium with a fresh profile (removed when the process is reaped by `finish`)."""
    profile = tempfile.mkdtemp(prefix="rpt-chromium-")
    command = [browser(), *FLAGS, f"--user-data-dir={profile}", *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.profile = profile  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen) -> str:
    """Wait for Chromium and return its stdout (the DOM, for --dump-dom)."""
    output, errors = process.communicate(timeout=120)
    shutil.rmtree(process.profile, ignore_errors=True)  # type: ignore[attr-defined]
    assert process.returncode == 0, errors[-2000:]
    return output


def dump_dom(url: str) -> str:
    return finish(chromium("--dump-dom", url))


def test_screenshot_shows_the_table_and_the_chart(page, tmp_path: Path) -> None:
    from matplotlib.image import imread

    path, _ = page
    html = path.read_text()
    variants = {
        "shown": "",
        "no-table": "#board { visibility: hidden; }",
        "no-chart": "img { visibility: hidden; }",
    }
    running = {}
    for name, css in variants.items():
        variant = tmp_path / f"{name}.html"
        variant.write_text(html.replace("</head>", f"<style>{css}</style>\n</head>"))
        png = tmp_path / f"{name}.png"
        size = f"--window-size={WIDTH},{HEIGHT}"
        running[name] = (png, chromium(f"--screenshot={png}", size, *SETTLED, variant.as_uri()))
    images = {}
    for name, (png, process) in running.items():
        finish(process)
        images[name] = imread(png)[:, :, :3]
    shown = images["shown"]
    assert shown.shape == (HEIGHT, WIDTH, 3)
    for hidden, what in (("no-table", "table"), ("no-chart", "chart")):
        changed = np.abs(shown - images[hidden]).max(axis=2) > 0.05
        rows, columns = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        assert len(rows) > 100 and len(columns) > 400, f"the {what} is missing or tiny"
        region = shown[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
        assert region.std() > 0.1, f"the {what} looks blank"
        empty = images[hidden][rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
        assert empty.std() < 0.05  # where it was hidden the page is plain background
    if os.environ.get("RPT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(running["shown"][0], SCREENSHOT)


def test_filters_and_sorting_come_from_the_url(page) -> None:
    path, built = page
    code = {row.key for row in built.rows if "code" in row.rl_domains}
    assert code and code != {row.key for row in built.rows}
    by_gain = [row.key for row in sorted(built.rows, key=lambda row: row.gain_trained)]
    filtered, ascending = (
        finish(process)
        for process in [
            chromium("--dump-dom", f"{path.as_uri()}?domain=code"),
            chromium("--dump-dom", f"{path.as_uri()}?sort=gain_trained&order=asc"),
        ]
    )
    rows = {m["key"]: m["attributes"] for m in ROW.finditer(filtered)}
    assert set(rows) == {row.key for row in built.rows}
    assert {key for key, attributes in rows.items() if " hidden" not in attributes} == code
    assert 'id="shown">1<' in filtered
    assert [m["key"] for m in ROW.finditer(ascending)] == by_gain
    assert (
        'data-column="gain_trained" data-numeric="yes"' in ascending and 'aria-sort="ascending"' in ascending
    )


def test_a_click_sorts_and_is_remembered_in_the_url(page, tmp_path: Path) -> None:
    path, built = page
    click = (
        "<script>document.querySelector('th[data-column=\"size\"]').click();"
        "document.body.setAttribute('data-url', window.location.search);</script>\n</body>"
    )
    clicked = tmp_path / "clicked.html"
    clicked.write_text(path.read_text().replace("</body>", click))
    dom = dump_dom(f"{clicked.as_uri()}?algorithm=grpo")
    order = [m["key"] for m in ROW.finditer(dom)]
    sizes = [next(row.parameters for row in built.rows if row.key == key) for key in order]
    assert sizes == sorted(sizes, reverse=True)  # a first click sorts descending
    assert 'data-url="?algorithm=grpo&amp;sort=size&amp;order=desc"' in dom
