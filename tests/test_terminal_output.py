"""What `grade` prints on the TA's terminal carries no control sequence a submission put in it.

tests/fixtures/attacks/ansi_escapes.py raises and prints escape sequences (clear the screen, set the window title,
write the clipboard with OSC 52, a green fake "100 / 100" line); its file in a folder beside a skipped file whose
name holds one too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader.report.common import printable

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "reference" / "data" / "mnist_sample.npz"
ATTACK = ROOT / "tests" / "fixtures" / "attacks" / "ansi_escapes.py"


def test_a_submissions_escape_sequences_never_reach_the_terminal(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(ATTACK, folder / "ansi_escapes.py")
    (folder / "notes\x1b]0;owned\x07.txt").write_text("not a submission")
    (folder / "x.txt\nneighbour: 100 points").write_text("a name faking a line")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "grader.cli", str(folder), "--out", str(tmp_path / "out"),
                          "--mnist", str(SAMPLE), "--jobs", "1"], capture_output=True, text=True, timeout=600,
                         env=env, cwd=tmp_path)
    assert run.stdout.startswith("ansi_escapes: 3 / 100"), run.stdout + run.stderr  # zero biases: Q1.biases
    assert "ValueError: \\x1b[2J\\x1b[H\\x1b]0;owned\\x07" in run.stdout  # shown, not obeyed
    assert "notes\\x1b]0;owned\\x07.txt" in run.stderr and "x.txt\\nneighbour: 100 points" in run.stderr
    for stream in (run.stdout, run.stderr):
        assert not any(ord(c) < 32 and c not in "\n\t" for c in stream), repr(stream[:2000])


def test_printable_keeps_text_and_layout_and_escapes_controls():
    assert printable("Average loss: 2.30\n\tJosé ✓") == "Average loss: 2.30\n\tJosé ✓"
    assert printable("a\x1b[2Jb\rc\x07\x9b\u202e") == "a\\x1b[2Jb\\x0dc\\x07\\x9b\\u202e"
