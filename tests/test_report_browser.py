"""Reports as people see them: in Debian's headless chromium, pictures decoded, screenshots not blank."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report import DATA_SOURCE, class_results

from grader.report import report_names, write_class_outputs, write_outputs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PICTURED = ("kv2154", "solution")  # the reports whose pictures are checked; the others are written without
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)"),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# Appended to a copy of a page (never to the report itself): after load, record how many images decoded.
PROBE = """<script>window.addEventListener("load", function () {
  var ok = Array.prototype.filter.call(document.images, function (i) {
    return i.complete && i.naturalWidth > 0;
  });
  document.body.setAttribute("data-images-loaded", ok.length + "/" + document.images.length);
});</script>"""


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless chromium on a local file with a private profile; stdout/stderr captured as text."""
    cmd = [
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    """Page-side errors chromium logs: uncaught exceptions and console.error, from its CONSOLE lines."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line and re.search(r"Uncaught|Error", line)]


def loaded_dom(page: Path, tmp_path: Path) -> tuple[str, str]:
    """The DOM after load of a probe-instrumented copy of the page, and chromium's log."""
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    run = chromium(probe, tmp_path / "profile-dom", "--dump-dom", "--virtual-time-budget=5000")
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, run.stderr


def screenshot(page: Path, tmp_path: Path, out: Path, height: int = 2000) -> np.ndarray:
    """A 1200 x `height` screenshot of the page as an RGB array."""
    run = chromium(page, tmp_path / "profile-shot", f"--screenshot={out}", f"--window-size=1200,{height}")
    assert run.returncode == 0 and out.exists(), run.stderr[-2000:]
    return np.asarray(Image.open(out).convert("RGB"))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The real class results written as a batch writes them: reports, index.html, grades.csv.

    Returns the folder and each result's output name; the raising script's report is the student view.
    """
    out = tmp_path_factory.mktemp("reports")
    results = class_results()
    names = report_names(r.path for r in results.values())
    for key, r in results.items():
        pictured = r if key in PICTURED else dataclasses.replace(r, figures={})  # pictures cost a second each
        write_outputs(pictured, out, name=names[r.path], staff=key != "script",
                      extra={"cache_key": key, "data_source": DATA_SOURCE})
    write_class_outputs([{**r.to_dict(), "data_source": DATA_SOURCE} for r in results.values()], out,
                        names=names)
    return out, {key: names[r.path] for key, r in results.items()}


def page_of(written: tuple[Path, dict[str, str]], key: str) -> Path:
    out, names = written
    return out / ("index.html" if key == "index" else f"{names[key]}.html")


@pytest.mark.parametrize(("key", "images"), [("kv2154", 4), ("solution", 2), ("script", 0), ("broken", 0),
                                             ("index", 1)])
def test_page_loads_without_errors_and_its_images_decode(written, tmp_path, key, images):
    page = page_of(written, key)
    assert page.read_text().count("<img ") == images
    dom, log = loaded_dom(page, tmp_path)
    assert "</table>" in dom or key == "broken"
    assert f'data-images-loaded="{images}/{images}"' in dom
    assert console_errors(log) == []
    assert "alert(" not in re.sub(r"&lt;script&gt;.*?&lt;/script&gt;", "", dom)


def test_student_script_in_a_traceback_stays_text_in_the_browser(written, tmp_path):
    dom, _ = loaded_dom(page_of(written, "script"), tmp_path)
    assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script>alert(1)" not in dom


def test_index_sorting_script_runs_and_lists_every_submission(written, tmp_path):
    dom, log = loaded_dom(page_of(written, "index"), tmp_path)
    assert 'data-script-ok="1"' in dom
    assert console_errors(log) == []
    for name in written[1].values():
        assert f'href="{name}.html"' in dom
    assert 'data-mistake="missing_sigma_prime_in_bias2_only"' in dom


@pytest.mark.parametrize("key", ["kv2154", "index", "solution"])
def test_screenshot_is_not_blank(written, tmp_path, key):
    out = tmp_path / f"{key}.png"
    pixels = screenshot(page_of(written, key), tmp_path, out)
    assert out.stat().st_size > 20_000
    assert pixels.shape[:2] == (2000, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert pixels.std() > 10


# After load, record where the first "what cost you points" entry is painted, as data-first-cost="top,bottom,href".
MEASURE = """<script>window.addEventListener("load", function () {
  var li = document.querySelector("#costs li"), r = li.getBoundingClientRect();
  document.body.setAttribute("data-first-cost",
    Math.round(r.top) + "," + Math.round(r.bottom) + "," + li.querySelector("a").getAttribute("href"));
});</script>"""
RED_BADGE = np.array([0xB4, 0x23, 0x18])  # --bad, the FAILED badge's background


def test_kv2154_first_failing_check_is_on_screen_in_the_first_1000_pixels(written, tmp_path):
    page = page_of(written, "kv2154")
    probe = tmp_path / "measure-kv2154.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    run = chromium(probe, tmp_path / "profile-measure", "--dump-dom", "--virtual-time-budget=5000",
                   "--window-size=1200,1000")
    assert run.returncode == 0, run.stderr[-2000:]
    top, bottom, href = re.search(r'data-first-cost="(\d+),(\d+),#([^"]+)"', run.stdout).groups()
    first_failing = next(f"check-{q.id}-{c.id}" for q in class_results()["kv2154"].questions for c in q.checks
                         if c.max_score - c.score > 1e-9)
    assert href == first_failing == "check-Q1-Q1.W3.distribution"
    assert 0 < int(top) < int(bottom) <= 1000
    pixels = screenshot(page, tmp_path, tmp_path / "kv2154-top.png", height=1000)
    entry = pixels[int(top):int(bottom)]
    assert (np.abs(entry.astype(int) - RED_BADGE).sum(axis=2) < 30).sum() > 200  # its FAILED badge is painted


def test_console_error_detection_sees_an_uncaught_exception(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefined_function();</script></body></html>")
    run = chromium(page, tmp_path / "profile-err", "--dump-dom")
    assert console_errors(run.stderr)
