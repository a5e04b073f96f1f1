"""The `grade` command as a TA and a student use it: real processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "reference" / "data" / "mnist_sample.npz"


def grade(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`grade ARGS` run in cwd, with this checkout's code (not whichever copy is pip-installed)."""
    command = [sys.executable, "-m", "grader.cli", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


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


def test_an_unsupported_file_named_on_the_command_line_is_bad_usage_in_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("my notes\n")
    run = grade("notes.txt", "--out", "out", cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == ["grade: error: notes.txt: not a submission (grade reads .py and "
                                               ".ipynb files)"]
    assert not (tmp_path / "out").exists()


def test_files_in_a_folder_that_are_not_submissions_are_listed_once_as_skipped(tmp_path):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "a.py").write_text("x = 1\n")
    (tmp_path / "class" / "notes.txt").write_text("my notes\n")
    (tmp_path / "class" / "data.csv").write_text("1,2\n")
    (tmp_path / "class" / ".DS_Store").write_text("")
    run = grade("class", "--out", "out", "--mnist", str(SAMPLE), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    skipped = [line for line in run.stderr.splitlines() if "skipped" in line]
    assert skipped == ["grade: skipped 2 files that are not submissions (.py or .ipynb): class/data.csv, "
                       "class/notes.txt"]
    assert "a: 0 / 100" in run.stdout


@pytest.mark.slow
def test_report_names_are_distinct_safe_and_stable_across_runs_and_the_index_links_them(tmp_path):
    """innocent~b.py and innocent_b.py, `jane doe.py`, and ontime/ and late/ copies graded into one --out in
    two runs: every one keeps its own report set; an unchanged file is skipped as up to date."""
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "innocent_b.py").write_text("x = 1\n")
    (tmp_path / "subs" / "innocent~b.py").write_text("x = 2\n")
    (tmp_path / "subs" / "jane doe.py").write_text("x = 3\n")
    for folder in ("ontime", "late"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "kv2154.py").write_text(f"# {folder}\nx = 4\n")
    out = tmp_path / "out"
    first = grade("subs", "ontime", "--out", "out", "--mnist", str(SAMPLE), "--jobs", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = grade("subs", "late", "--out", "out", "--mnist", str(SAMPLE), "--jobs", "2", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "1 graded now, 3 up to date" in second.stdout  # jane doe.py and the others were not graded again

    reports = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json") if not p.name.endswith(".results.json")}
    by_path = {Path(r["path"]).relative_to(tmp_path).as_posix(): name for name, r in reports.items()}
    assert sorted(by_path) == ["late/kv2154.py", "ontime/kv2154.py", "subs/innocent_b.py", "subs/innocent~b.py",
                               "subs/jane doe.py"]
    assert by_path["subs/innocent_b.py"] == "innocent_b" and by_path["subs/jane doe.py"] == "jane_doe"
    assert by_path["ontime/kv2154.py"] == "kv2154" and by_path["late/kv2154.py"] != "kv2154"
    assert len(set(by_path.values())) == 5
    for name in by_path.values():
        assert all((out / f"{name}{s}").is_file() for s in (".json", ".html", ".results.json"))
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name) and not name.startswith("-")
    assert json.loads((out / "kv2154.json").read_text())["path"].endswith("ontime/kv2154.py")  # not overwritten
    import re

    links = re.findall(r'href="([^"#]+\.html)"', (out / "index.html").read_text())
    assert links and all((out / link).is_file() for link in links)

    third = grade("subs", "ontime", "late", "--out", "out", "--mnist", str(SAMPLE), cwd=tmp_path)
    assert third.returncode == 0 and "0 graded now, 5 up to date" in third.stdout


@pytest.fixture(scope="module")
def earlier_reports(tmp_path_factory) -> Path:
    """A class folder graded once: the reports a bad --mnist must not touch."""
    root = tmp_path_factory.mktemp("earlier")
    (root / "subs").mkdir()
    (root / "subs" / "a.py").write_text("x = 1\n")
    (root / "subs" / "b.py").write_text("x = 2\n")
    run = grade("subs", "--out", "out", "--mnist", str(SAMPLE), cwd=root)
    assert run.returncode == 0, run.stderr
    return root


def _bad_mnist(kind: str, path: Path) -> None:
    import numpy as np

    good = dict(np.load(SAMPLE))
    if kind == "truncated":
        path.write_bytes(SAMPLE.read_bytes()[: SAMPLE.stat().st_size // 2])
    elif kind == "text":
        path.write_text("x_train,y_train\n0,5\n")
    elif kind == "wrong keys":
        np.savez(path, images=good["x_train"], labels=good["y_train"])
    elif kind == "wrong shape":
        np.savez(path, **{**good, "x_train": good["x_train"].reshape(len(good["x_train"]), 784)})
    elif kind == "float pixels":
        np.savez(path, **{**good, "x_train": good["x_train"] / 255.0})
    elif kind == "pickled":
        import pickle

        path.write_bytes(pickle.dumps(good))


@pytest.mark.parametrize("kind, message", [
    ("truncated", "damaged or truncated .npz"),
    ("text", "a text file, not an .npz archive"),
    ("wrong keys", "missing key(s) ['x_train', 'y_train', 'x_test', 'y_test']"),
    ("wrong shape", "x_train: got shape (5000, 784), expected (n, 28, 28)"),
    ("float pixels", "x_train: got non-integral float64 values"),
    ("pickled", "pickled Python data"),
])
def test_a_bad_mnist_is_refused_up_front_and_earlier_reports_are_untouched(earlier_reports, kind, message):
    bad = earlier_reports / f"bad-{kind.replace(' ', '_')}.npz"
    _bad_mnist(kind, bad)
    out = earlier_reports / "out"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    run = grade("subs", "--out", "out", "--mnist", str(bad), "--force", cwd=earlier_reports)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad.name) in lines[0] and message in lines[0], run.stderr
    assert "nothing was graded or written" in lines[0]
    assert kind == "pickled" or "pickle" not in lines[0]
    assert run.stdout == ""
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
