"""The Gradescope bundle: build the zip, unpack it like Gradescope does, run the real run_autograder."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.gradescope_bundle import main as bundle_main
from grader.gradescope_run import choose_submission
from reference.mnist import sample_path

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
KV2154 = ROOT / "submissions" / "kv2154.py"
SOLUTION = ROOT / "reference" / "solution.py"
SCHEMA = json.loads((ROOT / "tests" / "gradescope_results.schema.json").read_text())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    assert bundle_main(["--out", str(out)]) == 0
    return out


def autograder_root(bundle: Path, where: Path, files: dict[str, Path | str]) -> Path:
    """A folder laid out like Gradescope's /autograder: source/ (the zip), run_autograder, submission/."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(where / "source")
    shutil.copy(where / "source" / "run_autograder", where / "run_autograder")
    (where / "submission").mkdir()
    for name, content in files.items():
        target = where / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, target)
        else:
            target.write_text(content)
    return where


def run_autograder(root: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run root/run_autograder with the installed grader's python3 first on PATH; return it and results.json."""
    environ = {**os.environ, "AUTOGRADER_ROOT": str(root),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **env}
    environ.pop("AUTOGRADER_PYTHON", None)
    proc = subprocess.run(["bash", str(root / "run_autograder")], env=environ, capture_output=True, text=True,
                          timeout=900)
    results = json.loads((root / "results" / "results.json").read_text())
    return proc, results


def assert_valid(results: dict) -> None:
    jsonschema.validate(results, SCHEMA)


def graded_by_cli(path: Path, out: Path) -> dict:
    """`grade` on the same file with the same data (the bundled sample) as the Gradescope run."""
    argv = [str(path), "--out", str(out), "--quiet", "--mnist", str(sample_path())]
    proc = subprocess.run([sys.executable, "-c", f"import sys; from grader.cli import main; sys.exit(main({argv!r}))"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / f"{path.stem}.json").read_text())


def test_the_schema_rejects_what_gradescope_would_reject() -> None:
    good = {"score": 1.0, "tests": [{"name": "a", "score": 1.0, "max_score": 1.0, "status": "passed"}]}
    assert_valid(good)
    for bad in ({"tests": [{"name": "a", "status": "passed"}]},  # no score anywhere
                {**good, "tests": [{"name": "a", "score": 1, "status": "ok"}]},
                {**good, "visibility": "students"},
                {**good, "surprise": 1}):
        with pytest.raises(jsonschema.ValidationError):
            assert_valid(bad)


def test_bundle_holds_scripts_rubric_manifest_and_the_grader_source(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        manifest = json.loads(zf.read("bundle.json"))
        run_script = zf.read("run_autograder").decode()
    for name in ("setup.sh", "run_autograder", "rubric.yaml", "grader-src/pyproject.toml",
                 "grader-src/README.md", "grader-src/grader/gradescope_run.py", "grader-src/grader/rubric.yaml",
                 "grader-src/grader/sandbox/runner.py", "grader-src/grader/report/templates/report.html.j2",
                 "grader-src/reference/data/mnist_sample.npz", "grader-src/reference/network.py"):
        assert name in names, name
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert not modes["rubric.yaml"] & stat.S_IXUSR
    assert manifest == {"grader_version": manifest["grader_version"], "rubric": "rubric.yaml", "mnist": None}
    assert "mnist.npz" not in names
    assert "AUTOGRADER_ROOT" in run_script and "grader.gradescope_run" in run_script


def test_bundle_scripts_are_valid_bash(bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path)
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_bundle_refuses_a_bad_rubric_and_bad_data(tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text("name: x\ntotal: 100\nsurprise: 1\n")
    out = tmp_path / "autograder.zip"
    assert bundle_main(["--out", str(out), "--rubric", str(rubric)]) == 2
    not_mnist = tmp_path / "mnist.npz"
    not_mnist.write_bytes(b"not an npz")
    assert bundle_main(["--out", str(out), "--mnist", str(not_mnist)]) == 2
    assert not out.exists()


def test_bundle_with_mnist_ships_the_file_and_names_it(tmp_path: Path) -> None:
    out = tmp_path / "autograder.zip"
    assert bundle_main(["--out", str(out), "--mnist", str(sample_path())]) == 0
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("bundle.json"))["mnist"] == "mnist.npz"
        assert zf.read("mnist.npz") == sample_path().read_bytes()


def test_run_autograder_grades_kv2154_as_grade_does(bundle: Path, tmp_path: Path) -> None:
    root = autograder_root(bundle, tmp_path / "autograder", {"kv2154.py": KV2154})
    proc, results = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    assert_valid(results)
    expected = graded_by_cli(KV2154, tmp_path / "cli")
    assert results["score"] == pytest.approx(expected["score"])
    assert 0 < results["score"] < 100  # kv2154 has real bugs and real credit
    checks = [c for q in expected["questions"] for c in q["checks"]]
    assert [t["extra_data"]["check"] for t in results["tests"]] == [c["id"] for c in checks]
    assert results["output"].startswith("Graded kv2154.py.")
    assert "Score: " in proc.stdout


def test_empty_submission_scores_zero_with_a_message(bundle: Path, tmp_path: Path) -> None:
    root = autograder_root(bundle, tmp_path / "autograder", {"notes.txt": "my answers are in my head"})
    proc, results = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    assert_valid(results)
    assert results["score"] == 0
    assert "No .py or .ipynb file" in results["output"] and "notes.txt" in results["output"]
    assert results["tests"][0]["status"] == "failed"


def test_malformed_notebook_scores_zero_and_says_why(bundle: Path, tmp_path: Path) -> None:
    root = autograder_root(bundle, tmp_path / "autograder", {"hw.ipynb": '{"cells": [ this is not json'})
    proc, results = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    assert_valid(results)
    assert results["score"] == 0
    assert "could not be graded" in results["output"]
    assert "hw.ipynb" in results["output"]


def test_with_several_files_the_homework_is_graded_and_the_choice_is_said(bundle: Path, tmp_path: Path) -> None:
    files = {"kv2154.py": KV2154, "loader.py": "import numpy as np\nX = np.zeros(3)\n",
             "broken.ipynb": "{not json"}
    root = autograder_root(bundle, tmp_path / "autograder", files)
    _, results = run_autograder(root)
    assert_valid(results)
    assert results["extra_data"]["submission"] == "kv2154"
    assert "graded kv2154.py" in results["output"] and "broken.ipynb" in results["output"]
    assert results["score"] > 0


def notebook(source: str) -> str:
    cell = {"cell_type": "code", "id": "c1", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source}
    return json.dumps({"cells": [cell],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_choice_prefers_train_one_sample_then_more_handout_functions(tmp_path: Path) -> None:
    (tmp_path / "a_helpers.ipynb").write_text(notebook("def feed_forward_sample(x, y):\n    pass\n"))
    (tmp_path / "b_partial.py").write_text("def train_one_sample(x, y, learning_rate=0.003):\n    pass\n")
    (tmp_path / "c_full.py").write_text(SOLUTION.read_text())
    choice = choose_submission(tmp_path)
    assert choice.path == tmp_path / "c_full.py"
    assert "a_helpers.ipynb" in choice.note and "b_partial.py" in choice.note
    (tmp_path / "c_full.py").unlink()
    assert choose_submission(tmp_path).path == tmp_path / "b_partial.py"


def test_choice_prefers_the_notebook_over_its_export_and_readable_over_broken(tmp_path: Path) -> None:
    source = SOLUTION.read_text()
    (tmp_path / "hw.py").write_text(source)
    (tmp_path / "hw.ipynb").write_text(notebook(source))
    assert choose_submission(tmp_path).path == tmp_path / "hw.ipynb"
    (tmp_path / "hw.ipynb").write_text("{" + source)  # defines everything in its text, but is not a notebook
    choice = choose_submission(tmp_path)
    assert choice.path == tmp_path / "hw.py"
    assert "could not be read" in choice.note


def test_choice_ignores_checkpoints_and_hidden_files(tmp_path: Path) -> None:
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "hw-checkpoint.ipynb").write_text(notebook(SOLUTION.read_text()))
    (tmp_path / "._hw.py").write_text(SOLUTION.read_text())
    assert choose_submission(tmp_path).path is None
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hw.py").write_text(SOLUTION.read_text())
    assert choose_submission(tmp_path).path == tmp_path / "sub" / "hw.py"


def test_bundled_source_installs_with_its_data_and_grades(bundle: Path, tmp_path: Path) -> None:
    """What setup.sh does (pip install ./grader-src), into a folder instead of a venv, then a real run."""
    root = autograder_root(bundle, tmp_path / "autograder", {"solution.py": SOLUTION})
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target",
                           str(site), str(root / "source" / "grader-src")], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0 and "setuptools" in proc.stderr:
        pytest.skip(f"no build backend reachable for pip here: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr
    for data_file in ("grader/rubric.yaml", "grader/report/templates/report.html.j2",
                      "grader/sandbox/shims/tensorflow/__init__.py", "reference/data/mnist_sample.npz"):
        assert (site / data_file).is_file(), data_file
    where = subprocess.run([sys.executable, "-c", "import grader; print(grader.__file__)"], cwd=root, text=True,
                           env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(site)  # run_autograder (which cds there) will grade with this copy
    proc, results = run_autograder(root, PYTHONPATH=str(site))
    assert proc.returncode == 0, proc.stderr
    assert_valid(results)
    assert results["score"] == pytest.approx(graded_by_cli(SOLUTION, tmp_path / "cli")["score"])


def test_setup_prepares_the_data_once_and_each_run_grades_from_it(bundle: Path, tmp_path: Path) -> None:
    """setup.sh's `gradescope_run --prepare` fills the cache; a run then maps that data instead of cutting MNIST."""
    root = autograder_root(bundle, tmp_path / "autograder", {"kv2154.py": KV2154})
    cache = tmp_path / "cache"
    env = {**os.environ, "GRADER_CACHE_DIR": str(cache)}
    prepared = subprocess.run([sys.executable, "-m", "grader.gradescope_run", "--bundle", str(root / "source"),
                               "--prepare"], env=env, capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr
    entries = list(cache.iterdir())
    assert len(entries) == 1 and f"kept in {entries[0]}" in prepared.stdout
    written = {p.name: p.stat().st_mtime_ns for p in entries[0].iterdir()}
    proc, results = run_autograder(root, GRADER_CACHE_DIR=str(cache))
    assert proc.returncode == 0, proc.stderr
    assert results["score"] == pytest.approx(graded_by_cli(KV2154, tmp_path / "cli")["score"])
    assert list(cache.iterdir()) == entries
    assert {p.name: p.stat().st_mtime_ns for p in entries[0].iterdir()} == written


def test_prepare_needs_no_submission_but_grading_does(tmp_path: Path) -> None:
    from grader.gradescope_run import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--results", str(tmp_path)])
    assert exit_info.value.code == 2
