"""The HTML report as a browser shows it: headless Chromium screenshots, figures present and not blank.

Two screenshots of the same report, one with every image hidden (`visibility: hidden` keeps the layout),
differ exactly where the figures are drawn. Both get a magenta line above and a green line below each
`<figure>`, so each figure's band is found without guessing; inside it, the image must be plot-sized and
show real pixel variation where the hidden page is empty, not an empty or broken image.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_report import FIGURES, PROVENANCE
from test_tables import PAIRS, study_scores

from rpt_transfer.analysis import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTH, HEIGHT = 1400, 6000
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)  # fmt: skip


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        f"no headless Chromium on PATH (looked for {', '.join(BROWSERS)}); apt-get install -y chromium"
    )


def screenshots(pages: list[Path]) -> list[np.ndarray]:
    """Screenshot each page in its own fresh profile (in parallel), decoded to RGB floats in [0, 1]."""
    from matplotlib.image import imread

    binary = browser()
    running = []
    for page in pages:
        profile = Path(tempfile.mkdtemp(prefix="rpt-chromium-"))
        png = page.with_suffix(".png")
        command = [binary, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                   f"--window-size={WIDTH},{HEIGHT}", page.as_uri()]  # fmt: skip
        running.append(
            (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT), png, profile)
        )
    images = []
    for process, png, profile in running:
        output, _ = process.communicate(timeout=120)
        shutil.rmtree(profile, ignore_errors=True)
        assert png.is_file(), f"Chromium wrote no screenshot: {output.decode(errors='replace')[-2000:]}"
        images.append(imread(png)[:, :, :3])
    return images


MARKS = "<style>figure { border-top: 4px solid #ff00ff; border-bottom: 4px solid #00ff00; }</style>"


def lines(image: np.ndarray, colour: tuple[float, float, float]) -> list[int]:
    """The last row of each horizontal line drawn in `colour` (at least 300 pixels of it)."""
    rows = (np.abs(image - np.array(colour)).max(axis=2) < 0.1).sum(axis=1) > 300
    return [int(i) for i in np.flatnonzero(rows) if i + 1 == len(rows) or not rows[i + 1]]


def test_figures_render_and_are_not_blank(tmp_path: Path) -> None:
    write_report(study="demo", scores=study_scores(), pairs=PAIRS, provenance=PROVENANCE, out_dir=tmp_path)
    html = (tmp_path / "report.html").read_text()
    marked, hidden = tmp_path / "marked.html", tmp_path / "hidden.html"
    marked.write_text(html.replace("</head>", f"{MARKS}\n</head>"))
    hidden.write_text(
        html.replace("</head>", f"{MARKS}<style>img {{ visibility: hidden; }}</style>\n</head>")
    )
    shown, blank = screenshots([marked, hidden])
    assert shown.shape == blank.shape and shown.shape[1] == WIDTH
    tops, bottoms = lines(shown, (1, 0, 1)), lines(shown, (0, 1, 0))
    assert len(tops) == len(bottoms) == len(FIGURES), f"figures found: tops {tops}, bottoms {bottoms}"
    assert (tops, bottoms) == (lines(blank, (1, 0, 1)), lines(blank, (0, 1, 0)))  # same layout
    changed = np.abs(shown - blank).max(axis=2) > 0.05
    for top, bottom in zip(tops, bottoms, strict=True):
        band = changed[top + 1 : bottom - 4]
        rows, columns = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
        assert len(rows) > 100 and len(columns) > 300, f"figure in rows {top}-{bottom} is missing or tiny"
        image = shown[top + 1 + rows.min() : top + 2 + rows.max(), columns.min() : columns.max() + 1]
        assert image.std() > 0.1, f"figure in rows {top}-{bottom} looks blank"
        empty = blank[top + 1 + rows.min() : top + 2 + rows.max(), columns.min() : columns.max() + 1]
        assert empty.std() < 0.02  # where the image was hidden the page is plain background
