"""The benchmarks run, assert what they claim (same gradients, same parameters) and report in a fixed shape.

No timing assertions: the figures themselves are measured by `python -m benchmarks`, not tested.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import __main__ as cli
from benchmarks import batch_grading, end_to_end, gradient_check, training
from benchmarks.memory import peak_by_role
from benchmarks.processes import run_measured
from benchmarks.rows import Row, Section, format_table, unavailable
from grader import gradients
from reference import network
from reference.mnist import flattened, load_mnist, sample_path

ROOT = Path(__file__).resolve().parent.parent
TINY = cli.Sizes(gradient_digits=1, gradient_repeats=2, train_steps=20, train_rounds=2, train_limit=200,
                 script_limit=(200, 50), grade_repeats=1, batch=2)
ROW_KEYS = {"section", "what", "measured", "baseline", "speedup", "goal", "met", "values"}


@pytest.fixture(scope="module")
def sample():
    return load_mnist(sample_path())


@pytest.fixture(scope="module")
def quick_json(tmp_path_factory):
    """`python -m benchmarks --quick --only gradients training --json PATH`, in process, at tiny sizes."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    assert cli.main(["--quick", "--only", "gradients", "training", "--mnist", str(sample_path()),
                     "--json", str(path)], sizes=TINY) == 0
    return json.loads(path.read_text())


def test_quick_run_writes_machine_load_and_both_sections(quick_json):
    assert quick_json["quick"] is True
    assert len(quick_json["machine"]["loadavg"]) == 3 and len(quick_json["loadavg_after"]) == 3
    assert [s["name"] for s in quick_json["sections"]] == [gradient_check.NAME, training.NAME]
    for section in quick_json["sections"]:
        assert section["available"] is True
        for row in section["rows"]:
            assert set(row) == ROW_KEYS


def test_quick_gradient_row_checked_all_parameters_to_the_tolerance(quick_json):
    (row,) = quick_json["sections"][0]["rows"]
    values = row["values"]
    assert values["parameters"] == 26_506
    assert values["max_relative_difference"] <= gradient_check.TOLERANCE
    assert values["vectorised_s"] > 0 and values["naive_s"] > 0
    assert row["met"] in (True, False) and row["speedup"] == pytest.approx(values["naive_s"] / values["vectorised_s"])


def test_quick_training_rows_are_bit_identical_to_both_baselines(quick_json):
    rows = quick_json["sections"][1]["rows"]
    steps = [r for r in rows if r["values"].get("baseline")]
    assert {r["values"]["baseline"] for r in steps} == {"sgd_step", "textbook"}
    assert all(r["values"]["bit_identical"] for r in steps)
    epochs = rows[-1]["values"]
    assert epochs["steps"] == 3 * TINY.train_limit and len(epochs["test_accuracy"]) == 4


def test_assert_same_gradient_rejects_a_gradient_off_by_a_millionth():
    x = np.arange(784, dtype=np.float64) % 255
    params = gradients.probe_point(x, 0)
    fast = gradients.finite_difference_gradient(params, x, 3)
    assert max(gradient_check.assert_same_gradient(fast, fast).values()) == 0.0
    off = ([w.copy() for w in fast[0]], [b.copy() for b in fast[1]])
    off[1][1] *= 1 + 1e-6
    with pytest.raises(AssertionError, match="b2"):
        gradient_check.assert_same_gradient(fast, off)


def test_textbook_step_is_bit_identical_to_sgd_step(sample):
    flat = flattened(sample, 5)
    params = network.init_params()
    for x, label in zip(flat.x_train, flat.y_train, strict=True):
        expected = network.sgd_step(*params, x, int(label))
        weights, biases = [w.copy() for w in params[0]], [b.copy() for b in params[1]]
        training.textbook_step(weights, biases, x, int(label))
        assert training.largest_difference((weights, biases), expected) == (0.0, True)
        params = expected


def test_assert_same_parameters_rejects_a_run_with_another_learning_rate(sample):
    flat = flattened(sample, 20)
    params = network.init_params()
    fast = training.skipping_epoch(params, flat.x_train, flat.y_train)
    assert training.assert_same_parameters(fast, training.sgd_step_epoch(params, flat.x_train, flat.y_train),
                                           "sgd_step") is True
    other = training.sgd_step_epoch(params, flat.x_train, flat.y_train, learning_rate=0.0031)
    with pytest.raises(AssertionError, match="different parameters"):
        training.assert_same_parameters(fast, other, "sgd_step")


def test_tensorflow_standin_loads_the_npz_both_ways_a_student_imports_it(tmp_path, sample):
    npz = end_to_end.write_subset(sample, tmp_path / "tiny.npz", 7, 3)
    standin = end_to_end.write_tensorflow_standin(tmp_path / "standin")
    code = ("import tensorflow as tf\nfrom tensorflow.keras.datasets import mnist\n"
            "(a, b), (c, d) = tf.keras.datasets.mnist.load_data(path='mnist.npz')\n"
            "assert mnist.load_data()[0][0].shape == a.shape\n"
            "print(a.shape, a.dtype, b.shape, c.shape, d.shape)\n")
    out = subprocess.run([sys.executable, "-c", code], env=end_to_end.student_env(standin, npz),
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(7, 28, 28) uint8 (7,) (3, 28, 28) (3,)"


def test_grade_outcome_counts_checks_and_reads_a_grader_failure_as_unavailable(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"score": 3, "max_score": 10, "errors": [], "gradients": {"W1": {}, "b1": {}},
                                "questions": [{"checks": [{}, {}]}, {"checks": [{}]}]}))
    assert end_to_end.grade_outcome(good) == {"ok": True, "checks": 3, "gradient_tensors": 2,
                                              "score": 3, "max_score": 10}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"grader_failed": True, "questions": [],
                               "errors": [{"kind": "grader", "message": "the grader failed: boom"}]}))
    assert end_to_end.grade_outcome(bad) == {"ok": False, "reason": "the grader failed: boom"}
    assert end_to_end.grade_outcome(tmp_path / "missing.json")["ok"] is False


def test_batch_takes_gradable_fixtures_only_and_makes_distinct_copies(tmp_path):
    fixtures = batch_grading.gradable_fixtures(ROOT / "tests")
    assert fixtures, "expected at least the sandbox fixtures"
    assert not any({"hostile", "attacks"} & set(p.parts) or p.name.startswith("test_") for p in fixtures)
    assert len({p.parent for p in fixtures[:6]}) >= 4  # interleaved: a varied class, not one folder
    copies = batch_grading.make_batch([ROOT / "submissions/kv2154.py", *fixtures[:1]], 4, tmp_path)
    assert len({p.name for p in copies}) == 4
    assert len({p.read_bytes() for p in copies}) == 4


def test_run_measured_sees_the_peak_of_a_grandchild(tmp_path):
    child = "import numpy as np, time; a = np.ones(25_000_000); time.sleep(0.4)"  # 200 MB
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    measured = run_measured([sys.executable, "-c", code], tmp_path, interval=0.02)
    assert measured.ok
    assert measured.maxrss_mib > 180
    roles = peak_by_role(list(measured.peaks))
    assert roles["grader"]["max_mib"] < 100 and roles["worker"]["max_mib"] > 150


def test_run_measured_kills_a_command_past_its_time_limit(tmp_path):
    measured = run_measured([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, timeout_s=0.5)
    assert measured.timed_out and not measured.ok and measured.seconds < 10


def test_table_says_yes_no_and_not_available():
    rows = (Row("s", "fast", "1 ms", "100 ms", 100.0, ">= 50x", True),
            Row("s", "slow", "1 ms", "1.5 ms", 1.5, ">= 2x", False))
    table = format_table([Section("s", rows, ("a note",)), unavailable("t", "grade", "no CLI yet")])
    lines = table.splitlines()
    assert lines[2].endswith("| 100x | >= 50x | yes |") and lines[3].endswith("| 1.50x | >= 2x | no |")
    assert "| grade | not available: no CLI yet |" in lines[4]
    assert lines[-1] == "- s: a note"


def test_why_not_names_the_exit_code_and_the_last_line_of_stderr(tmp_path):
    code = "import sys; print('grading is not built yet', file=sys.stderr); sys.exit(1)"
    measured = run_measured([sys.executable, "-c", code], tmp_path)
    assert end_to_end.why_not(measured) == "grade exited 1: grading is not built yet"
    ok = run_measured([sys.executable, "-c", "pass"], tmp_path / "ok")
    assert end_to_end.why_not(ok) is None
    assert end_to_end.why_not(ok, {"ok": False, "reason": "the grader failed: boom"}) == "the grader failed: boom"
