"""Pointing at the line: each buggy step names its first wrong quantity and the line assigning it, in every
layout the grader adapts to; correct steps never get a first_wrong (tests/fixtures/pinpoint/EXPECTED.json)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from grader.adapt.build import build_student
from grader.checks.backprop import check_backprop
from grader.gradients import probe_point, probe_samples
from grader.pinpoint import QUANTITIES, Pinpoint, TracedArray, as_shape, intermediates
from grader.sandbox import Limits, Sandbox, SandboxData
from grader.submission import load_submission
from reference import network
from reference.mnist import load_mnist

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = json.loads((ROOT / "tests" / "fixtures" / "pinpoint" / "EXPECTED.json").read_text())
TENSORS = ("W1", "b1", "W2", "b2", "W3", "b3")
LIMITS = Limits(cell_timeout_s=30, call_timeout_s=10)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(ROOT / "reference" / "data" / "mnist_sample.npz")


@pytest.fixture(scope="module")
def sandbox_data(mnist):
    return SandboxData(mnist.x_train[:100], mnist.y_train[:100], mnist.x_test[:50], mnist.y_test[:50])


@pytest.fixture(scope="module")
def samples(mnist):
    return probe_samples(mnist.x_train, mnist.y_train, 5)


def _graded(path: str, sandbox_data, samples):
    with Sandbox(load_submission(ROOT / path), data=sandbox_data, limits=LIMITS) as box:
        student = build_student(box, box.run_cells())
        return check_backprop(student, list(samples))


def _source_line(path: str, line: int, file: str) -> str:
    """Line `line` of the submission (of the cell named in `file`, for a notebook), stripped."""
    full = ROOT / path
    if full.suffix == ".ipynb":
        cell = int(file.rsplit(" ", 1)[-1])
        source = "".join(json.loads(full.read_text())["cells"][cell - 1]["source"])
        return source.split("\n")[line - 1].strip()
    return full.read_text().split("\n")[line - 1].strip()


@pytest.mark.parametrize("path", sorted(EXPECTED["buggy"]))
def test_each_bug_names_its_first_wrong_quantity_and_the_line_assigning_it(path, sandbox_data, samples):
    results, verdicts = _graded(path, sandbox_data, samples)
    expected = EXPECTED["buggy"][path]
    for name in TENSORS:
        verdict, want = verdicts[name], expected.get(name)
        if want is None:
            assert verdict.first_wrong is None, (name, verdict.first_wrong)
            assert "first_wrong" not in verdict.to_dict()
            if name in expected:  # listed as null: wrong for the check, but nothing to point at
                assert not verdict.ok
            continue
        found = verdict.first_wrong
        assert not verdict.ok and found is not None, (name, verdict)
        assert (found.quantity, found.variable, found.line) == (want["quantity"], want["variable"], want["line"])
        line = _source_line(path, found.line, found.file)
        assert found.source == line
        target = line.split("=")[0]  # the line assigns the variable: its name is left of the first '='
        assert re.sub(r"\[.*", "", found.variable) in target, (found.variable, line)
        assert found.rel_error > 1e-2
        as_json = verdict.to_dict()["first_wrong"]
        assert set(as_json) >= {"quantity", "variable", "function", "line", "rel_error"}
        check = next(r for r in results if r.id == f"Q3.{name}")
        assert check.details["first_wrong"] == as_json
        assert f"is {found.quantity}: {found.variable}" in check.message


@pytest.mark.parametrize("path", EXPECTED["correct"])
def test_a_correct_step_never_gets_a_first_wrong(path, sandbox_data, samples):
    results, verdicts = _graded(path, sandbox_data, samples)
    assert all(v.first_wrong is None and "first_wrong" not in v.to_dict() for v in verdicts.values())
    assert all("first_wrong" not in r.details for r in results)


def test_the_reference_intermediates_are_the_reference_gradient(mnist):
    x, label = mnist.x_train[0].reshape(-1).astype(float), int(mnist.y_train[0])
    params = probe_point(x, 0)
    values = intermediates(params, x, label)
    (gw, gb) = network.gradient(*params, x, label)
    for i, layer in enumerate("123"):
        assert np.allclose(values[f"dW{layer}"], gw[i]) and np.allclose(values[f"db{layer}"], gb[i])
    assert np.allclose(values["p"], network.forward(*params, x).probabilities)


def test_layouts_are_read_canonically():
    assert as_shape(np.arange(32.0).reshape(32, 1), (32,)).shape == (32,)
    assert as_shape(np.ones((10, 32)), (32, 10)).shape == (32, 10)
    assert np.array_equal(as_shape(np.array([[2.0]]), (32,)), np.full(32, 2.0))  # a (1, 1) sum, broadcast
    square = np.arange(4.0).reshape(2, 2)
    assert np.array_equal(as_shape(square, (2, 2), square_transposed=True), square.T)
    assert as_shape(np.ones((3, 5)), (5, 4)) is None


def test_a_trace_holding_only_right_arrays_points_at_nothing(mnist):
    x, label = mnist.x_train[1].reshape(-1).astype(float), int(mnist.y_train[1])
    params = probe_point(x, 1)
    values = intermediates(params, x, label)
    traced = [TracedArray(q, "train_one_sample", i + 1, "", values[q].astype(np.float32))
              for i, q in enumerate(QUANTITIES)]
    wrong = ([w.copy() for w in params[0]], [b.copy() for b in params[1]])
    wrong[1][2] = 2 * values["db3"]  # a factor of two applied in the update: no array holds it
    right = ([values["dW1"], values["dW2"], values["dW3"]], [values["db1"], values["db2"], values["db3"]])
    pinpoint = Pinpoint(traced, params, x, label)
    assert pinpoint.first_wrong("b3", wrong) is None
    assert all(pinpoint.first_wrong(name, right) is None for name in TENSORS)


LOOPING_STEP = '''
import numpy as np
weights = [np.zeros((784, 32)), np.zeros((32, 32)), np.zeros((32, 10))]
biases = [np.zeros(32), np.zeros(32), np.zeros(10)]

def train_one_sample(sample, y, learning_rate=0.003):
    x = sample.reshape(-1).astype(float)
    grad = np.zeros((784, 32))
    for i in range(784):  # a line event per pixel, each changing a 25,088-number array
        grad[i, :] = x[i]
    weights[0] -= learning_rate * grad
'''


def test_tracing_is_bounded_and_changes_nothing(tmp_path, sandbox_data, mnist):
    path = tmp_path / "looping.py"
    path.write_text(LOOPING_STEP)
    x = mnist.x_train[0]
    with Sandbox(load_submission(path), data=sandbox_data, limits=LIMITS) as box:
        box.run_cells()
        plain = box.call("train_one_sample", [x, 3, 1.0], get_globals=["weights"])
        started = time.monotonic()
        traced = box.call("train_one_sample", [x, 3, 1.0], get_globals=["weights"], trace=True)
        elapsed = time.monotonic() - started
    assert plain.trace is None and traced.ok and traced.trace
    assert sum(r["value"].size for r in traced.trace) <= 400_000 + 25_088
    assert elapsed < 3  # the tracer stops after 0.5 s and the call goes on untraced
    assert np.array_equal(traced.globals["weights"][0], 2 * plain.globals["weights"][0])  # the step ran whole


@pytest.fixture(scope="module")
def kv2154_and_solution(grade_once):
    return grade_once(ROOT / "submissions" / "kv2154.py"), grade_once(ROOT / "reference" / "solution.py")


def test_kv2154s_report_opens_q3_with_the_first_wrong_quantity_and_its_quoted_line(kv2154_and_solution):
    from html.parser import HTMLParser

    from grader.report.html import render_index, render_report

    kv2154, solution = kv2154_and_solution
    gradients = kv2154.to_dict()["gradients"]
    assert gradients["W1"]["first_wrong"]["quantity"] == "delta1"
    assert gradients["b2"]["first_wrong"]["variable"] == "SecondLayerBiases"
    assert all("first_wrong" not in v for v in solution.to_dict()["gradients"].values())
    page = render_report(kv2154, staff=False)
    q3 = page[page.index('<section class="question" id="Q3">'):]
    block = q3[:q3.index('<div class="check')]
    assert 'id="first-wrong"' in block  # before the first check of Q3
    assert "270 | FirstLayerUpdate = np.multiply(FirstLastLayer, dsigmoid(FirstLayer))" in block
    assert "267 | SecondLayerBiases = SecondLastLayer" in block
    assert block.index('data-quantity="delta1"') < block.index('data-quantity="db2"')  # computation order
    HTMLParser().feed(page)
    assert 'id="first-wrong"' not in render_report(solution, staff=False)
    index = render_index([kv2154, solution])
    counted = index[index.index('<section id="first-wrong">'):]
    assert '<tr data-quantity="delta1"><td class="num">1 (50%)</td>' in counted
    assert 'data-quantity="db2"' not in counted  # a submission counts once, at its earliest quantity


HOSTILE_STEP = '''
import numpy as np
weights = [np.zeros((784, 32)), np.zeros((32, 32)), np.zeros((32, 10))]
biases = [np.zeros(32), np.zeros(32), np.zeros(10)]


class EvilKey(str):
    def __repr__(self):
        raise RuntimeError("no repr for you")


class Evil:
    @property
    def __dict__(self):
        raise RuntimeError("no attributes for you")

    def step(self, x):
        found = {EvilKey("k"): np.ones(3)}
        return found, x.sum()


def train_one_sample(sample, y, learning_rate=0.003):
    _, total = Evil().step(sample.reshape(-1).astype(float))
    weights[0][:] = total
'''


def test_a_step_whose_objects_break_the_tracer_runs_as_without_it(tmp_path, sandbox_data, mnist):
    path = tmp_path / "hostile.py"
    path.write_text(HOSTILE_STEP)
    x = mnist.x_train[0]
    with Sandbox(load_submission(path), data=sandbox_data, limits=LIMITS) as box:
        box.run_cells()
        traced = box.call("train_one_sample", [x, 3, 1.0], get_globals=["weights"], trace=True)
    assert traced.ok, traced.error
    assert np.all(traced.globals["weights"][0] == float(x.sum()))
