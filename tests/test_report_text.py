"""Reports are written whole whatever text a submission brings: a file name that is not UTF-8, lone surrogates in
what its code prints and raises (tests/fixtures/attacks/lone_surrogates.py). Each made the report writer raise
UnicodeEncodeError: a 'grader failure' in place of the grade, and for the file name `grade` itself stopped with an
internal error and no class outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "reference" / "data" / "mnist_sample.npz"
ATTACKS = ROOT / "tests" / "fixtures" / "attacks"


def test_a_non_utf8_file_name_and_lone_surrogates_still_give_whole_reports(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    odd = os.fsdecode(b"bad\xff\xfename.py")  # a lone surrogate in Python's view of the name
    shutil.copy(ATTACKS / "good.py", folder / odd)
    shutil.copy(ATTACKS / "lone_surrogates.py", folder / "lone_surrogates.py")
    shutil.copy(ATTACKS / "good.py", folder / "neighbour.py")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "grader.cli", str(folder), "--out", str(out), "--mnist", str(SAMPLE),
                          "--jobs", "1"], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout + run.stderr
    scores = {name: json.loads((out / f"{name}.json").read_text(encoding="utf-8"))["score"]
              for name in ("badname", "lone_surrogates", "neighbour")}
    assert scores == {"badname": 100, "lone_surrogates": 90, "neighbour": 100}
    assert (out / "index.html").exists() and "bad\\udcff\\udcfename.py" in (out / "grades.csv").read_text()
    report = (out / "lone_surrogates.html").read_text(encoding="utf-8")
    assert "ValueError: bad \ufffd message \ufffd" in report
