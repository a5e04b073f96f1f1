"""Reports render what the results say: HTML (student and staff), the class index, grades.csv, results.json.

The results rendered here are built by `sample_results()` from real computations (the reference's gradients
on MNIST digits at a healthy probe point, a student's backprop with the seed's mistakes, real init draws).
When grader/grading.py lands, replace the body of the `graded` fixture with `grade_submission(...)` over
tests/fixtures; every test below takes its results from that one fixture.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from pathlib import Path

import jsonschema
import markupsafe
import numpy as np
import pytest

from grader.report import figures as figs
from grader.report import (
    grades_csv,
    render_index,
    render_report,
    report_names,
    results_json,
    write_class_outputs,
    write_outputs,
)
from grader.report import writer as writer_module
from grader.results import CheckResult, GradientVerdict, QuestionResult, RunError, SubmissionResult
from reference import network

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
MNIST = Path(os.environ.get("MNIST_PATH", Path(__file__).resolve().parents[2] / "shared/data/mnist.npz"))
STUDENT_SCRIPT = "<script>alert('pwned')</script>"
SEED_DIAGNOSIS = (
    "The hidden-layer bias gradients are missing the factor sigma'(z): "
    "dL/db = W^T delta, not W^T delta * s'(z)."
)


# --- realistic results ---------------------------------------------------------------------------------


def probe_digits(n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """n MNIST training digits of different classes (n, 784) raw pixels; random sparse ones without MNIST."""
    if MNIST.exists():
        with np.load(MNIST, allow_pickle=False) as d:
            x, y = d["x_train"][:200], d["y_train"][:200]
        picks = [int(np.flatnonzero(y == label)[0]) for label in range(n)]
        return network.flatten_images(x[picks]), y[picks].astype(int)
    rng = np.random.default_rng(0)
    x = np.where(rng.random((n, 784)) < 0.19, rng.integers(1, 256, (n, 784)), 0).astype(np.float64)
    return x, np.arange(n)


def probe_point(x: np.ndarray) -> network.Params:
    """A healthy, non-saturated point: W1 ~ N(0, 1/||x||^2), other layers N(0, 1/max(n_in, n_out))."""
    rng = np.random.default_rng(7)
    sizes = network.LAYER_SIZES
    weights = [rng.normal(0, 1 / np.linalg.norm(x), (784, 32))]
    weights += [
        rng.normal(0, np.sqrt(1 / max(a, b)), (a, b)) for a, b in zip(sizes[1:-1], sizes[2:], strict=True)
    ]
    biases = [rng.normal(0, 0.1, n) for n in sizes[1:]]
    return weights, biases


def seed_student_gradient(weights, biases, x, label) -> network.Params:
    """The seed's backprop: hidden bias gradients without sigma'(z); W1 through sigma'(a1), not sigma'(z1)."""
    fwd = network.forward(weights, biases, x)
    d3 = fwd.probabilities - network.one_hot(label)
    d2 = (weights[2] @ d3) * network.sigmoid_prime(fwd.preactivations[1])
    wrong_d1 = (weights[1] @ d2) * network.sigmoid_prime(fwd.activations[1])
    grad_w = [np.outer(x, wrong_d1), np.outer(fwd.activations[1], d2), np.outer(fwd.activations[2], d3)]
    grad_b = [weights[1] @ d2, weights[2] @ d3, d3]
    return grad_w, grad_b


def verdict(name: str, g: np.ndarray, f: np.ndarray, diagnosis: str | None = None) -> GradientVerdict:
    """The per-tensor comparison the Q3 checks make: relative error, worst entry, signs, ratio."""
    e = float(np.linalg.norm(g - f) / max(np.linalg.norm(g), np.linalg.norm(f), 1e-300))
    worst = np.unravel_index(int(np.argmax(np.abs(g - f))), g.shape)
    nonzero = np.abs(f) > 1e-12
    signs = float(np.mean(np.sign(g[nonzero]) == np.sign(f[nonzero]))) if nonzero.any() else 1.0
    ratio = float(np.dot(g.ravel(), f.ravel()) / max(np.dot(f.ravel(), f.ravel()), 1e-300))
    kind = "correct" if e <= 1e-5 else ("wrong" if e > 1e-2 else "inconclusive")
    return GradientVerdict(
        name,
        kind == "correct",
        kind,
        e,
        [int(i) for i in worst],
        float(g[worst]),
        float(f[worst]),
        signs,
        ratio,
        None if kind == "correct" else diagnosis,
    )


def gradient_part(student: network.Params, expected: network.Params, diagnosis: str | None):
    """Verdicts, Q3 checks and figure data for a student's gradient against the expected one."""
    names = ["W1", "W2", "W3"], ["b1", "b2", "b3"]
    verdicts, checks, figure = {}, [], {}
    for kind in (0, 1):
        for layer, name in enumerate(names[kind]):
            g, f = student[kind][layer], expected[kind][layer]
            v = verdict(name, g, f, diagnosis)
            verdicts[name] = v
            figure[name] = {"student": g.tolist(), "expected": f.tolist()}
            message = (
                f"{name} gradient matches finite differences (relative error {v.rel_error:.1e})."
                if v.ok
                else f"{name} gradient is wrong: relative error {v.rel_error:.2f} vs finite differences, "
                f"worst at {v.worst_index}: got {v.worst_student:.3e}, expected {v.worst_expected:.3e}."
            )
            checks.append(
                CheckResult(
                    f"grad_{name}",
                    f"{name} gradient",
                    "passed" if v.ok else "failed",
                    1.0 if v.ok else 0.0,
                    1.0,
                    message,
                    details={
                        "rel_error": v.rel_error,
                        "worst_index": v.worst_index,
                        "sign_agreement": v.sign_agreement,
                        "ratio": v.ratio,
                        **(
                            {"diagnosis": diagnosis, "mistake": "bias_missing_sigma_prime"}
                            if not v.ok and diagnosis
                            else {}
                        ),
                    },
                )
            )
    return verdicts, checks, figure


def init_part(sigma_w3: float):
    """Q1 checks and histogram data for weights drawn with the handout's sigmas except W3's."""
    rng = np.random.default_rng(80085)
    expected = {"W1": 1 / np.sqrt(784), "W2": 1 / np.sqrt(32), "W3": 1 / np.sqrt(32)}
    drawn = {
        "W1": rng.normal(0, expected["W1"], 784 * 32),
        "W2": rng.normal(0, expected["W2"], 32 * 32),
        "W3": rng.normal(0, sigma_w3, 32 * 10),
    }
    checks = [
        CheckResult(
            "shapes",
            "weight and bias shapes",
            "passed",
            1.0,
            1.0,
            "weights are (784, 32), (32, 32), (32, 10); biases (32,), (32,), (10,).",
        )
    ]
    for name, values in drawn.items():
        ok = abs(values.std() / expected[name] - 1) < 0.15
        checks.append(
            CheckResult(
                f"init_{name}",
                f"{name} initial distribution",
                "passed" if ok else "failed",
                1.0 if ok else 0.0,
                1.0,
                f"{name} has standard deviation {values.std():.4f}"
                + ("." if ok else f", expected {expected[name]:.4f} (variance 1/max(n_in, n_out))."),
                details={
                    "std": float(values.std()),
                    "expected_std": float(expected[name]),
                    "mean": float(values.mean()),
                },
            )
        )
    figure = {
        name: {"values": values[:4000].tolist(), "sigma": float(expected[name])}
        for name, values in drawn.items()
    }
    return checks, figure


def forward_question(extra_hidden: bool = True) -> QuestionResult:
    """Q2 as a correct student gets it, with one hidden check."""
    checks = [
        CheckResult(
            "loss",
            "feed_forward_sample loss",
            "passed",
            2.0,
            2.0,
            "loss matches the reference on 20 digits (max abs error 3.1e-15).",
            details={"max_abs_error": 3.1e-15, "samples": 20},
        ),
        CheckResult(
            "guess", "one-hot guess", "passed", 1.0, 1.0, "returns a one-hot (10,) vector of the argmax."
        ),
    ]
    if extra_hidden:
        checks.append(
            CheckResult(
                "dataset_hidden",
                "feed_forward_dataset on unseen digits",
                "passed",
                1.0,
                1.0,
                "average loss and accuracy printed within 1e-9 of the reference.",
                visibility="hidden",
            )
        )
    return QuestionResult("Q2", "Forward pass", tuple(checks))


def common(**kw) -> dict:
    """Fields every sample shares: rubric, grader version, time."""
    return {
        "rubric": "rubric.yaml",
        "rubric_sha256": "3f2a" * 16,
        "grader_version": "0.1.0",
        "graded_at": "2024-05-02T14:03:11+00:00",
        "protections": ("pid namespace", "no network", "rlimit AS 2 GiB"),
        **kw,
    }


def sample_results() -> dict[str, SubmissionResult]:
    """A perfect submission, the seed's (kv2154), a time-out with a student traceback, a not-gradable one."""
    x, y = probe_digits()
    weights, biases = probe_point(x[0])
    expected = network.gradient(weights, biases, x[0], int(y[0]))
    training = {"epochs": [0, 1, 2, 3], "reference": [0.098, 0.641, 0.688, 0.706]}

    verdicts, q3, grad_fig = gradient_part(expected, expected, None)
    q1, init_fig = init_part(1 / np.sqrt(32))
    perfect = SubmissionResult(
        "perfect",
        "/submissions/perfect.py",
        (
            QuestionResult("Q1", "Initialisation", tuple(q1)),
            forward_question(),
            QuestionResult("Q3", "Backpropagation", tuple(q3)),
            QuestionResult(
                "Q4",
                "Training",
                (
                    CheckResult(
                        "accuracy",
                        "accuracy after 3 epochs",
                        "passed",
                        2.0,
                        2.0,
                        "test accuracy 70.6% (reference 70.6%).",
                    ),
                ),
            ),
        ),
        gradients=verdicts,
        training={"accuracy": training["reference"]},
        figures={
            "gradients": grad_fig,
            "training": {**training, "student": training["reference"]},
            "init": init_fig,
        },
        adaptations=("weights are a list of (n_in, n_out) arrays, as the handout writes them",),
        duration_s=11.4,
        **common(),
    )

    student = seed_student_gradient(weights, biases, x[0], int(y[0]))
    verdicts, q3, grad_fig = gradient_part(student, expected, SEED_DIAGNOSIS)
    q1, init_fig = init_part(1 / np.sqrt(10))
    seed = SubmissionResult(
        "kv2154",
        "/submissions/kv2154.py",
        (
            QuestionResult("Q1", "Initialisation", tuple(q1)),
            forward_question(),
            QuestionResult("Q3", "Backpropagation", tuple(q3)),
            QuestionResult(
                "Q4",
                "Training",
                (
                    CheckResult(
                        "accuracy",
                        "accuracy after 3 epochs",
                        "failed",
                        0.5,
                        2.0,
                        "test accuracy 43.2% after 3 epochs, reference 70.6%.",
                        details={"student": 0.432, "reference": 0.706},
                    ),
                ),
            ),
        ),
        gradients=verdicts,
        figures={
            "gradients": grad_fig,
            "init": init_fig,
            "training": {**training, "student": [0.101, 0.312, 0.405, 0.432]},
        },
        adaptations=(
            "weights transposed: the student stores (n_out, n_in) and uses W @ a",
            "train_one_sample(sample, y, learning_rate) takes the label as an integer",
        ),
        duration_s=14.9,
        **common(),
    )

    tb = (
        'Traceback (most recent call last):\n  File "kv_timeout.py", line 88, in train_one_sample\n'
        f'    print("{STUDENT_SCRIPT}")\n  File "kv_timeout.py", line 91, in train_one_sample\n'
        "    delta = weights[2] @ err\n"
        "ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0 "
        "(size 10 is different from 32)"
    )
    timeout = SubmissionResult(
        "kv_timeout",
        "/submissions/other/kv_timeout.ipynb",
        (
            QuestionResult("Q1", "Initialisation", tuple(init_part(1 / np.sqrt(32))[0])),
            forward_question(),
            QuestionResult(
                "Q3",
                "Backpropagation",
                (
                    CheckResult(
                        "grad_W1",
                        "W1 gradient",
                        "error",
                        0.0,
                        1.0,
                        "train_one_sample raised ValueError, so its gradient could not be checked.",
                        traceback=tb,
                    ),
                    CheckResult(
                        "lr_used",
                        "uses learning_rate",
                        "skipped",
                        0.0,
                        1.0,
                        "skipped: train_one_sample failed.",
                    ),
                ),
            ),
            QuestionResult(
                "Q4",
                "Training",
                (
                    CheckResult(
                        "accuracy",
                        "accuracy after 3 epochs",
                        "error",
                        0.0,
                        2.0,
                        "train_one_epoch did not finish within 300 s.",
                        details={"epochs_done": 0, "rel_error": float("nan")},
                    ),
                ),
            ),
        ),
        errors=(
            RunError(
                "timeout", "call train_one_epoch", "stopped after 300 s (the limit); its process was killed."
            ),
            RunError("exception", "call train_one_sample", "ValueError: matmul mismatch", tb),
        ),
        duration_s=312.0,
        **common(),
    )

    broken = SubmissionResult(
        '=HYPERLINK("x")',
        '/submissions/=HYPERLINK("x").py',
        (),
        errors=(
            RunError(
                "not_gradable",
                "cell 3 (lines 20-31)",
                "SyntaxError: invalid syntax (line 24): "
                "'def train_one_sample(sample, y learning_rate=0.003):'",
                '  File "broken.py", line 24\n    def train_one_sample(sample, y learning_rate=0.003):\n'
                "                                   ^\nSyntaxError: invalid syntax",
            ),
        ),
        duration_s=0.4,
        **common(),
    )
    return {"perfect": perfect, "kv2154": seed, "timeout": timeout, "broken": broken}


@pytest.fixture(scope="module")
def graded() -> dict[str, SubmissionResult]:
    """The results every test renders (switch to real graded fixtures here when the orchestrator lands)."""
    return sample_results()


@pytest.fixture(scope="module")
def plain(graded) -> dict[str, SubmissionResult]:
    """The same results without figure data: for tests of files and names, where pictures only cost time."""
    return {name: dataclasses.replace(r, figures={}) for name, r in graded.items()}


@pytest.fixture(scope="module")
def pages(graded) -> dict[tuple[str, bool], str]:
    """Each sample's report, rendered once per view: (name, staff) -> HTML."""
    return {
        (name, staff): render_report(r, staff=staff) for name, r in graded.items() for staff in (True, False)
    }


def escape(text: str) -> str:
    """Text as the autoescaping templates write it."""
    return str(markupsafe.escape(text))


def all_checks(result: SubmissionResult):
    return [c for q in result.questions for c in q.checks]


# --- HTML report ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["perfect", "kv2154", "timeout", "broken"])
def test_staff_report_shows_every_check_message_and_the_total(graded, pages, name):
    result = graded[name]
    page = pages[name, True]
    assert f'{result.score:g} <span class="of">/ {result.max_score:g}' in page
    for q in result.questions:
        assert f'id="{q.id}"' in page
    for check in all_checks(result):
        assert escape(check.message) in page, check.id


def test_report_renders_the_same_from_the_json_as_from_the_result(graded, pages):
    result = graded["kv2154"]
    from_json = json.loads(json.dumps(result.to_dict()))
    assert render_report(from_json, staff=True) == pages["kv2154", True]


def test_student_traceback_is_escaped_not_executed(graded, pages):
    page = pages["timeout", False]
    assert STUDENT_SCRIPT not in page
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page
    assert '<pre class="traceback">' in page


def test_student_view_hides_hidden_checks_and_says_how_many(graded, pages):
    result = graded["perfect"]
    hidden = [c for c in all_checks(result) if c.visibility != "visible"]
    assert hidden
    student, staff = pages["perfect", False], pages["perfect", True]
    for c in hidden:
        assert escape(c.message) not in student
        assert escape(c.message) in staff
    assert "1 hidden check" in student
    assert "Protections while running" not in student and "pid namespace" in staff


def test_seed_report_names_the_mistake_and_tabulates_each_tensor(graded, pages):
    page = pages["kv2154", False]
    assert escape(SEED_DIAGNOSIS) in page
    assert page.count('<tr class="bad">') == 3  # W1, b1, b2
    assert page.count('<tr class="good">') == 3
    assert "weights transposed" in page


def test_report_embeds_all_pictures_when_figure_data_is_present(graded, pages):
    page = pages["kv2154", True]
    assert page.count('<img src="data:image/png;base64,') == 4  # W1 tiles, small heat maps, training, init


def test_report_without_or_with_malformed_figure_data_has_no_pictures_and_does_not_crash(graded):
    data = graded["perfect"].to_dict()
    assert "<img" not in render_report({**data, "figures": {}}, staff=True)
    bad = {
        "gradients": {"W1": {"student": [[1, 2]], "expected": "nope"}, "b1": {"student": [1]}},
        "training": {"epochs": "x"},
        "init": {"W1": {"values": []}},
    }
    assert "<img" not in render_report({**data, "figures": bad}, staff=True)


def test_not_gradable_report_explains_why(graded, pages):
    page = pages["broken", False]
    assert "could not be graded" in page
    assert "SyntaxError: invalid syntax (line 24)" in page
    assert "What went wrong while running" in page


def test_run_errors_are_in_plain_words(graded, pages):
    page = pages["timeout", False]
    assert "Your code ran out of time" in page and "call train_one_epoch" in page
    assert "Your code raised an exception" in page


def test_tile_mosaic_puts_hidden_unit_j_in_tile_j():
    columns = np.arange(784 * 32, dtype=float).reshape(784, 32)
    mosaic = figs.tile_mosaic(columns)
    r, c = divmod(13, 8)
    tile = mosaic[r * 29 : r * 29 + 28, c * 29 : c * 29 + 28]
    assert np.array_equal(tile, columns[:, 13].reshape(28, 28))
    assert np.isnan(mosaic[28, :]).all()


# --- index -----------------------------------------------------------------------------------------------


def test_index_links_every_report_and_counts_diagnoses(graded):
    results = list(graded.values())
    page = render_index(results, links={r.path: f"{i}.html" for i, r in enumerate(results)})
    for i, r in enumerate(results):
        assert f'href="{i}.html"' in page
        assert escape(r.submission) in page
    assert escape(SEED_DIAGNOSIS) in page
    assert page.count('<img src="data:image/png;base64,') == 1
    assert "not gradable" in page


def test_index_pass_rates_count_passes_over_submissions_that_ran_the_check(graded):
    from grader.report.common import as_dict
    from grader.report.html import pass_rates

    rates = {(r["question"], r["check"]): r for r in pass_rates([as_dict(r) for r in graded.values()])}
    assert (rates["Q3", "grad_W1"]["passed"], rates["Q3", "grad_W1"]["total"]) == (1, 3)
    assert (rates["Q3", "grad_W3"]["passed"], rates["Q3", "grad_W3"]["total"]) == (2, 2)


# --- grades.csv ------------------------------------------------------------------------------------------


def test_grades_csv_has_one_row_per_submission_and_stable_columns(graded):
    results = list(graded.values())
    rows = list(csv.DictReader(io.StringIO(grades_csv(results))))
    assert list(rows[0].keys()) == [
        "submission",
        "path",
        "Q1",
        "Q2",
        "Q3",
        "Q4",
        "total",
        "max_score",
        "status",
    ]
    assert len(rows) == len(results)
    by_path = {r["path"]: r for r in rows}
    for r in results:
        row = by_path[r.path]
        assert float(row["total"]) == pytest.approx(r.score)
        assert sum(float(row[q]) for q in ("Q1", "Q2", "Q3", "Q4")) == pytest.approx(r.score)
    assert grades_csv(reversed(results)) == grades_csv(results)


def test_grades_csv_neutralises_spreadsheet_formulas_and_marks_not_gradable(graded):
    rows = list(csv.DictReader(io.StringIO(grades_csv([graded["broken"]]))))
    assert rows[0]["submission"].startswith("'=")
    assert rows[0]["status"] == "not gradable" and rows[0]["total"] == "0"


# --- Gradescope results.json -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["perfect", "kv2154", "timeout", "broken"])
def test_results_json_follows_gradescope_spec(graded, name):
    doc = results_json(graded[name])
    jsonschema.validate(json.loads(json.dumps(doc, allow_nan=False)), SCHEMA)


def test_results_json_has_one_test_per_check_named_and_numbered_by_question(graded):
    result = graded["kv2154"]
    tests = results_json(result)["tests"]
    assert len(tests) == len(all_checks(result))
    w1 = next(t for t in tests if t["name"] == "Q3 · W1 gradient")
    assert w1["number"] == "3.1" and w1["status"] == "failed" and w1["max_score"] == 1.0
    assert SEED_DIAGNOSIS in next(t for t in tests if t["name"] == "Q3 · b1 gradient")["output"]
    assert results_json(result)["score"] == pytest.approx(sum(t["score"] for t in tests))
    hidden = next(t for t in tests if t["name"].startswith("Q2 · feed_forward_dataset"))
    assert hidden["visibility"] == "hidden"


def test_results_json_of_an_ungradable_submission_scores_zero_and_says_why(graded):
    doc = results_json(graded["broken"])
    assert doc["score"] == 0
    assert doc["tests"][0]["status"] == "failed" and "SyntaxError" in doc["tests"][0]["output"]
    assert "could not be graded" in doc["output"]


def test_results_json_handles_a_batch_grader_failure_dict():
    failure = {
        "submission": "x",
        "path": "/s/x.py",
        "score": 0.0,
        "max_score": 0.0,
        "questions": [],
        "errors": [{"kind": "grader", "where": "grader", "message": "worker died", "traceback": None}],
    }
    doc = results_json(failure)
    jsonschema.validate(doc, SCHEMA)
    assert "worker died" in doc["tests"][0]["output"]


def test_schema_rejects_what_gradescope_would(graded):
    doc = results_json(graded["kv2154"])
    for broken in (
        {**doc, "tests": [{**doc["tests"][0], "status": "error"}]},
        {**doc, "tests": [{**doc["tests"][0], "visibility": "students"}]},
        {**doc, "tests": [{**doc["tests"][0], "number": 3.1}]},
        {k: v for k, v in doc.items() if k not in ("score", "tests")},
        {**doc, "tests": [{k: v for k, v in doc["tests"][0].items() if k != "score"}], "score": None},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def test_results_json_turns_nan_details_into_strict_json(graded):
    text = json.dumps(results_json(graded["timeout"]), allow_nan=False)
    assert "NaN" not in text


# --- writing files -----------------------------------------------------------------------------------------


def test_write_outputs_writes_json_html_and_results_json(plain, tmp_path):
    result = plain["kv2154"]
    paths = write_outputs(result, tmp_path, extra={"cache_key": "abc"})
    assert {p.name for p in paths.values()} == {"kv2154.json", "kv2154.html", "kv2154.results.json"}
    saved = json.loads(paths["json"].read_text())
    assert saved["cache_key"] == "abc" and saved["score"] == result.score
    assert saved["questions"] == json.loads(json.dumps(result.to_dict()))["questions"]
    jsonschema.validate(json.loads(paths["results"].read_text()), SCHEMA)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_interrupted_write_leaves_the_previous_file_whole(plain, tmp_path, monkeypatch):
    paths = write_outputs(plain["perfect"], tmp_path, name="same")
    before = paths["html"].read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(writer_module.os, "replace", crash)
    with pytest.raises(OSError):
        write_outputs(plain["kv2154"], tmp_path, name="same")
    assert paths["html"].read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.html", "same.json", "same.results.json"]


def test_same_stem_from_different_folders_gets_distinct_deterministic_names(plain, tmp_path):
    a, b = "/course/sec1/kv2154.py", "/course/sec2/kv2154.py"
    names = report_names([a, b, "/course/sec1/other.ipynb"])
    assert names["/course/sec1/other.ipynb"] == "other"
    assert names[a] != names[b] and names[a].startswith("kv2154-") and names[b].startswith("kv2154-")
    assert report_names([b, a]) == {a: names[a], b: names[b]}

    first = write_outputs(plain["kv2154"], tmp_path)
    other = SubmissionResult(**{**plain["kv2154"].__dict__, "path": b})
    second = write_outputs(other, tmp_path)
    assert first["json"] != second["json"]
    assert json.loads(first["json"].read_text())["path"] == plain["kv2154"].path


def test_class_outputs_link_each_report_by_its_file_name(plain, tmp_path):
    results = list(plain.values())
    names = report_names(r.path for r in results)
    for r in results:
        write_outputs(r, tmp_path, name=names[r.path])
    paths = write_class_outputs(results, tmp_path, names=names)
    index = paths["index"].read_text()
    for r in results:
        assert f'href="{escape(names[r.path])}.html"' in index
        assert (tmp_path / f"{names[r.path]}.html").exists()
    assert len(list(csv.DictReader(paths["csv"].open(newline="")))) == len(results)
