"""The `grade` command as a TA and a student use it: real processes, real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "reference" / "data" / "mnist_sample.npz"


def grade(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "grader.cli", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def classroom(tmp_path_factory) -> Path:
    """Two folders: the seed submission and the reference, and a second kv2154.py with a different body."""
    root = tmp_path_factory.mktemp("class")
    (root / "a").mkdir()
    (root / "b").mkdir()
    shutil.copy(ROOT / "submissions" / "kv2154.py", root / "a" / "kv2154.py")
    shutil.copy(ROOT / "reference" / "solution.py", root / "a" / "solution.py")
    (root / "b" / "kv2154.py").write_text("print('an empty homework')\n")
    return root


@pytest.fixture(scope="module")
def graded(classroom) -> tuple[Path, subprocess.CompletedProcess]:
    out = classroom / "reports"
    return out, grade("a", "b", "--out", str(out), "--mnist", str(SAMPLE), "--jobs", "2", cwd=classroom)


def test_a_class_is_graded_with_reports_an_index_and_a_gradebook(graded):
    out, run = graded
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in out.glob("*.json") if not p.name.endswith(".results.json"))
    assert names == ["a-kv2154.json", "b-kv2154.json", "solution.json"]
    assert (out / "index.html").exists() and (out / "grades.csv").exists()
    solution = json.loads((out / "solution.json").read_text())
    assert solution["score"] == solution["max_score"] == 100
    assert "solution" in run.stdout and "100 / 100" in run.stdout


def test_two_submissions_with_the_same_name_get_separate_reports(graded):
    out, _ = graded
    stems = sorted(p.stem for p in out.glob("*kv2154*.html"))
    assert stems == ["a-kv2154", "b-kv2154"]
    scores = sorted(json.loads((out / f"{s}.json").read_text())["score"] for s in stems)
    assert scores[0] == 0 and scores[1] > 50


def test_a_second_run_regrades_only_what_changed(classroom, graded):
    out, _ = graded
    (classroom / "b" / "kv2154.py").write_text("print('an empty homework, edited')\n")
    again = grade("a", "b", "--out", str(out), "--mnist", str(SAMPLE), "--jobs", "2", cwd=classroom)
    assert again.returncode == 0, again.stderr
    assert "1 graded now, 2 up to date" in again.stdout
    forced = grade("a", "--out", str(out), "--mnist", str(SAMPLE), "--force", cwd=classroom)
    assert forced.returncode == 0 and "2 graded now, 0 up to date" in forced.stdout


def test_a_broken_rubric_stops_before_grading_and_names_the_key(tmp_path):
    rubric = tmp_path / "rubric.yaml"
    text = (ROOT / "grader" / "rubric.yaml").read_text().replace("Q3.W1: 9", "Q3.W1: 10")
    rubric.write_text(text)
    run = grade(str(ROOT / "submissions" / "kv2154.py"), "--rubric", str(rubric), "--out", str(tmp_path / "o"),
                cwd=tmp_path)
    assert run.returncode == 2
    assert "add up to 101" in run.stderr and "'total' says 100" in run.stderr
    assert not (tmp_path / "o").exists()
    rubric.write_text(text.replace("Q3.W1: 10", "Q3.W1: 9").replace("epochs: 3", "epochs: 3\n      epoch: 4"))
    run = grade(str(ROOT / "submissions" / "kv2154.py"), "--rubric", str(rubric), cwd=tmp_path)
    assert run.returncode == 2 and "'epoch'" in run.stderr and "questions.Q4.settings" in run.stderr


def test_a_missing_path_is_a_usage_error(tmp_path):
    run = grade(str(tmp_path / "nowhere.py"), cwd=tmp_path)
    assert run.returncode == 2 and "no such file or folder" in run.stderr


def test_a_students_self_check_writes_nothing_and_shows_visible_checks_only(tmp_path):
    shutil.copy(ROOT / "submissions" / "kv2154.py", tmp_path / "mine.py")
    run = grade("--self-check", "mine.py", "--mnist", str(SAMPLE), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py"]
    assert "visible checks only" in run.stdout and "sigma'(z2)" in run.stdout
    assert "zero pixels" not in run.stdout  # a hidden check


def test_doctor_reports_the_protections_it_verified(tmp_path):
    run = grade("--doctor", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "A sandboxed child started" in run.stdout


def test_a_folder_of_student_folders_is_searched_and_named_by_student(tmp_path):
    from grader.batch import discover
    from grader.report.names import report_names

    for student in ("ab123", "kv2154"):
        (tmp_path / "class" / student / ".ipynb_checkpoints").mkdir(parents=True)
        (tmp_path / "class" / student / "hw1.py").write_text("x = 1\n")
        (tmp_path / "class" / student / ".ipynb_checkpoints" / "hw1-checkpoint.py").write_text("x = 1\n")
    found = discover([tmp_path / "class"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["class/ab123/hw1.py", "class/kv2154/hw1.py"]
    assert sorted(report_names(found).values()) == ["ab123-hw1", "kv2154-hw1"]


def test_links_inside_a_class_folder_are_skipped(tmp_path):
    from grader.batch import discover

    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "kv2154.py").write_text("x = 1\n")
    (tmp_path / "class" / "student42.py").symlink_to(ROOT / "reference" / "solution.py")
    (tmp_path / "class" / "x.py").symlink_to("/etc/passwd")
    assert [p.name for p in discover([tmp_path / "class"])] == ["kv2154.py"]
