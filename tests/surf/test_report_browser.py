"""A generated report opens in a real browser: it renders, every image loads, no script errors.

Headless Chromium loads the file offline; the report's own inline script
records, on ``load``, how many images decoded with a non-zero size and how
many errors reached ``window.onerror`` as attributes of ``<body>``, which
``--dump-dom`` then shows. Skipped only where Chromium is not installed
(``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from diagnostics.arviz_io import save_datatree
from diagnostics.report import write_report
from tests.diagnostics.test_report import fake_sample_tree, fake_unknown_tree

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *extra, url],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    save_datatree(fake_sample_tree(chains=2, draws=120), folder / "results" / "sample.nc")
    save_datatree(fake_sample_tree(chains=2, draws=120, bad=True), folder / "results" / "bad.nc")
    save_datatree(fake_unknown_tree(), folder / "results" / "curves.nc")
    return write_report([folder / "results"], folder / "report.html")


def test_the_page_renders_to_a_nontrivial_screenshot(page, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _chromium(page.as_uri(), tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,4000")
    assert shot.is_file(), proc.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 4000)
        colours = im.convert("L").resize((64, 200)).getcolors(maxcolors=256 * 256)
    assert shot.stat().st_size > 20_000
    assert colours is None or len(colours) > 20  # not a blank page


def test_every_image_loads_and_no_script_errors(page, tmp_path):
    proc = _chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    dom = proc.stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, f"no <body> in the dumped DOM: {dom[:500]!r} {proc.stderr[-1000:]}"
    tag = body.group(0)
    assert 'data-loaded="1"' in tag, tag
    images = re.search(r'data-images-ok="(\d+)/(\d+)"', tag)
    assert images, tag
    ok, total = int(images.group(1)), int(images.group(2))
    assert total >= 8 and ok == total, tag
    assert 'data-errors="0"' in tag, tag
    for section in ('id="trust"', 'id="contents"', "Trust first", "ArviZ summary", "Provenance",
                    'data-kind="sample"', 'data-kind="grok"', "chains disagree"):
        assert section in dom, section
