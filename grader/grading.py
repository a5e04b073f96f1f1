"""Grade one submission: run it in the sandbox, run every question's checks, score them by the rubric."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from grader import __version__
from grader.adapt.student import SECONDS_PER_SAMPLE, build_student
from grader.checks.backprop import RealStep, check_backprop, check_real_step
from grader.checks.forward import ForwardCase, check_feed_forward_dataset, check_feed_forward_sample
from grader.checks.helpers import check_helpers
from grader.checks.initialisation import check_initialisation
from grader.checks.own_loop import OwnLoopRun, first_step_errors, run_own_loop, withhold_credit, wrong_tensors
from grader.checks.signatures import FUNCTIONS, check_signatures
from grader.checks.training import check_short_training, check_training_loop, reference_history
from grader.gradients import probe_point, probe_samples
from grader.problems import problem_labels
from grader.registry import KNOWN_CHECKS, SETTINGS_CLASSES
from grader.results import CheckResult, GradientVerdict, QuestionResult, RunError, SubmissionResult
from grader.rubric import Rubric
from grader.sandbox import Sandbox, SandboxData
from grader.scoring import score_question
from grader.student import Params, Student
from grader.submission import NotGradable, load_submission
from reference import network
from reference.mnist import Mnist, load_mnist

QUESTION_ORDER = ("helpers", "Q1", "Q2", "Q3", "Q4")


@dataclass(frozen=True)
class GradingData:
    """The MNIST arrays grading uses, cut to the rubric's sizes; images flattened to (n, 784) float64."""

    source: str
    toplevel: SandboxData  # raw uint8 images (n, 28, 28) for the student's own top-level code
    train_images: np.ndarray  # (n_train, 784) for Q4
    train_labels: np.ndarray
    test_images: np.ndarray  # (n_test, 784) for Q2's dataset and Q4's evaluation
    test_labels: np.ndarray
    probes: tuple[tuple[np.ndarray, int], ...]  # Q2/Q3 probe digits (784,), of different classes
    trained: Params  # reference parameters after one epoch on 3,000 images: Q2's dataset accuracy is not chance


def prepare_data(rubric: Rubric, mnist: Mnist | None = None, *, full: bool = False) -> GradingData:
    """Cut the loaded MNIST to what the rubric asks for (`full`: Q4 on every image, as the handout does)."""
    mnist = mnist or load_mnist()
    q4 = rubric.questions["Q4"].settings if "Q4" in rubric.questions else SETTINGS_CLASSES["Q4"]()
    q3 = rubric.questions["Q3"].settings if "Q3" in rubric.questions else SETTINGS_CLASSES["Q3"]()
    n_train = len(mnist.y_train) if full else min(q4.train_samples, len(mnist.y_train))
    n_test = len(mnist.y_test) if full else min(q4.test_samples, len(mnist.y_test))
    toplevel = SandboxData(
        mnist.x_train[: rubric.data.toplevel_train], mnist.y_train[: rubric.data.toplevel_train],
        mnist.x_test[: rubric.data.toplevel_test], mnist.y_test[: rubric.data.toplevel_test],
    )
    test_images = network.flatten_images(mnist.x_test[:n_test])
    test_labels = mnist.y_test[:n_test].astype(np.int64)
    probes = probe_samples(test_images, test_labels, max(q3.max_samples, 5))
    train_images = network.flatten_images(mnist.x_train[:n_train])
    train_labels = mnist.y_train[:n_train].astype(np.int64)
    trained = network.train_epoch(*network.init_params(), train_images[:3000], train_labels[:3000])
    return GradingData(
        mnist.source, toplevel, train_images, train_labels, test_images, test_labels,
        tuple((np.asarray(x), int(y)) for x, y in probes), trained,
    )


def grade_submission(
    path: str | Path,
    rubric: Rubric,
    data: GradingData,
    *,
    name: str | None = None,
    visible_only: bool = False,
    hide: Sequence[str | Path] = (),
) -> SubmissionResult:
    """Grade one .py/.ipynb file; never raises on anything the student did."""
    started = time.monotonic()
    path = Path(path)
    submission = load_submission(path)
    header = _header(path, name or path.stem, rubric)
    if isinstance(submission, NotGradable):
        error = RunError("not_gradable", path.name, f"not gradable: {submission.reason}")
        questions = tuple(score_question(q, [], rubric) for q in _question_ids(rubric))
        return _finish(header, questions, errors=(error,), problems=problem_labels(submission, (error,)),
                       started=started, visible_only=visible_only)

    _start_reference_training(rubric, data)
    limits = rubric.limits
    # Q4 trains the student's code for a few epochs: give a long (e.g. --full) run the time it needs.
    epochs = _q4_settings(rubric, data).epochs
    needed = (epochs + 1) * len(data.train_labels) * SECONDS_PER_SAMPLE + rubric.limits.total_timeout_s
    limits = replace(limits, total_timeout_s=max(limits.total_timeout_s, needed))
    with Sandbox(submission, data.toplevel, limits, hide=hide) as box:
        run = box.run_cells()
        student = build_student(box, run)
        variant = int(hashlib.sha256(path.read_bytes()).hexdigest()[:12], 16)
        checks, gradients, training, figures = run_checks(student, rubric, data, variant)
        protections = box.protections()
        errors = tuple(run.errors) + _problems_as_errors(student)
        adaptations = tuple(getattr(student, "adaptations", ()))
    questions = tuple(score_question(q, checks.get(q, []), rubric) for q in _question_ids(rubric))
    return _finish(header, questions, gradients=gradients, training=training, errors=errors,
                   problems=problem_labels(submission, errors),
                   adaptations=adaptations, protections=protections, figures=figures,
                   started=started, visible_only=visible_only)


def _q4_settings(rubric: Rubric, data: GradingData) -> Any:
    """Q4's settings, sized to the data prepared for it (all of it with --full)."""
    settings = rubric.questions["Q4"].settings if "Q4" in rubric.questions else SETTINGS_CLASSES["Q4"]()
    return replace(settings, train_samples=len(data.train_labels), test_samples=len(data.test_labels))


def _start_reference_training(rubric: Rubric, data: GradingData) -> None:
    """Train the reference for Q4 on a second thread while the student's code runs in its child.

    The parent only waits on the child meanwhile, so on two cores this hides the reference's training.
    """
    settings = _q4_settings(rubric, data)  # sized to the prepared data: Q4 trains on all of it
    threading.Thread(
        target=reference_history,
        args=(network.init_params(), data.train_images, data.train_labels, data.test_images, data.test_labels,
              settings.epochs, settings.learning_rate),
        daemon=True,
    ).start()


def run_checks(
    student: Student, rubric: Rubric, data: GradingData, variant: int = 0
) -> tuple[dict[str, list[CheckResult]], dict[str, GradientVerdict], dict[str, Any], dict[str, Any]]:
    """Every question's checks on one student, each question on its own (a crash costs only that question)."""
    settings = {q: (rubric.questions[q].settings if q in rubric.questions else cls())
                for q, cls in SETTINGS_CLASSES.items()}
    settings["Q4"] = _q4_settings(rubric, data)
    checks: dict[str, list[CheckResult]] = {}
    gradients: dict[str, GradientVerdict] = {}
    training: dict[str, Any] = {}
    figures: dict[str, Any] = {}
    init = network.init_params()

    checks["helpers"] = _guarded("helpers", lambda: check_helpers(student, settings["helpers"]))
    checks["Q1"] = _guarded("Q1", lambda: check_initialisation(student, settings["Q1"], _layout_note(student)))

    def q2() -> list[CheckResult]:
        cases = [ForwardCase(probe_point(x, settings["Q3"].seed + i), x, y, f"probe digit {i + 1}")
                 for i, (x, y) in enumerate(data.probes[:3])]
        cases += [ForwardCase(init, x, y, f"handout initialisation, digit {i + 1}")
                  for i, (x, y) in enumerate(data.probes[3:5])]
        # Which 200 test images: fixed by the submission's own bytes, so the same file always gets the same
        # figures while figures copied from another run's report do not fit.
        n = min(200, len(data.test_labels))
        start = variant % (len(data.test_labels) - n + 1)
        return (check_feed_forward_sample(student, cases, settings["Q2"])
                + check_feed_forward_dataset(student, data.trained, data.test_images[start:start + n],
                                             data.test_labels[start:start + n], settings["Q2"]))

    checks["Q2"] = _guarded("Q2", q2)

    def q3() -> list[CheckResult]:
        results, verdicts = check_backprop(student, list(data.probes), settings["Q3"])
        gradients.update(verdicts)
        (x, label), (x2, label2) = (data.train_images[0], int(data.train_labels[0])), data.probes[1]
        steps = [RealStep("the handout's initialisation", init, x, label),
                 RealStep("weights after one epoch of training", data.trained, x2, label2)]
        real_steps.extend(steps)
        probes_passed = all(v.ok for v in verdicts.values())
        return results + [check_real_step(student, steps, settings["Q3"].real_step_points,
                                          probes_passed=probes_passed)]

    real_steps: list[RealStep] = []
    checks["Q3"] = _guarded("Q3", q3)
    own_scale = None  # the student's own network divides the inputs by this, consistently
    if any(v.verdict == "wrong" for v in gradients.values()):
        scale = _own_input_scale(student, data, settings["Q3"].seed)
        forward_scale = _forward_input_scale(student, data, settings["Q3"].seed) if scale is not None else None
        if scale is not None and forward_scale != scale:
            for name, v in list(gradients.items()):
                if v.verdict == "wrong":
                    gradients[name] = replace(v, diagnosis=_inconsistent_sentence(scale, forward_scale))
            checks["Q3"] = [_inconsistent(c, scale, forward_scale) for c in checks["Q3"]]
        elif scale is not None:
            own_scale = scale
            rejudged = check_real_step(student, real_steps, settings["Q3"].real_step_points, input_scale=scale,
                                       probes_passed=True)
            checks["Q3"] = [rejudged if c.id == rejudged.id else _graded_on_own_forward(c, scale)
                            for c in checks["Q3"]]
            for name, v in list(gradients.items()):
                # judged against the student's own network: ok and verdict agree (the e above is the handout's)
                gradients[name] = replace(v, ok=True, verdict="correct", diagnosis=_scaled_sentence(scale))
    checks["Q3"] = _distrust_probes_if_real_step_fails(checks["Q3"])
    own = _guarded_value(lambda: run_own_loop(student, data.train_images, data.train_labels,
                                              settings["Q4"].epoch_length, settings["Q4"].loop_learning_rate,
                                              settings["Q3"].seed))

    def q4() -> list[CheckResult]:
        loop = check_training_loop(student, init, data.train_images, data.train_labels, settings["Q4"], own)
        short = check_short_training(student, init, data.train_images, data.train_labels,
                                     data.test_images, data.test_labels, settings["Q4"])
        if short.details.get("student_accuracy"):
            training.update(epochs=short.details.get("epochs"), student=short.details["student_accuracy"],
                            reference=short.details.get("reference_accuracy"))
        return [loop, short]

    checks["Q4"] = _guarded("Q4", q4)
    checks["Q3"] = _credit_only_what_the_own_loop_confirms(checks["Q3"], checks["Q4"], own, own_scale)
    gradients.update(_verdicts_agreeing_with(checks["Q3"], gradients))
    for question in FUNCTIONS:
        checks[question] += _guarded(question, lambda q=question: [check_signatures(q, student)])
    checks["Q4"] = [_accuracy_caveat(c, gradients, training) for c in checks["Q4"]]
    if training.get("student") is not None:
        figures["training"] = training
    figures.update(_init_figures(student.initial_params))
    if any(not v.ok for v in gradients.values()):
        figures.update(_gradient_figures(student, data, settings["Q3"].seed, _named_probe(checks["Q3"])))
    return checks, gradients, training, figures


def _guarded_value(thunk: Callable[[], Any]) -> Any:
    """thunk(), or None when the grader itself fails there (the checks that use it then draw no conclusion)."""
    try:
        return thunk()
    except Exception:  # noqa: BLE001 - the grader's own failure; the checks go on without this evidence
        return None


def _credit_only_what_the_own_loop_confirms(q3: list[CheckResult], q4: list[CheckResult], own: OwnLoopRun | None,
                                            scale: float | None) -> list[CheckResult]:
    """Q3 tensors right at the probes but wrong in the steps of the student's own train_one_epoch: no credit.

    Only where the loop itself is sound (a loop that skips, scales or rescales is Q4's business) and the
    student's network is the handout's (an own-scale network is judged at the probes only)."""
    if scale is not None:
        return q3
    if own is not None and own.keys and own.keys[0] == _key(own.x):
        q3 = withhold_credit(q3, wrong_tensors(first_step_errors(own)), "the first step of your own "
                             "train_one_epoch (from the same kind of weights, on a full-length x_train)")
    loop = next((c for c in q4 if c.id == "Q4.loop"), None)
    tensors = [c for c in q3 if c.id.split(".")[-1] in ("W1", "b1", "W2", "b2", "W3", "b3")]
    # Over 20 steps one wrong tensor moves every other: the trajectory speaks only when all six were right
    if loop is not None and loop.status == "passed" and tensors and all(c.status == "passed" for c in tensors):
        q3 = withhold_credit(q3, wrong_tensors(loop.details.get("trajectory_rel_error") or {}),
                             "where your own train_one_epoch takes 20 steps from the handout's initialisation, the "
                             "result")
    return q3


def _key(x: np.ndarray) -> list[Any]:
    """[sum, sum of squares, first non-zero] of a canonical sample, as the sandbox records a step's sample."""
    nonzero = np.flatnonzero(x)
    return [float(x.sum()), float(x @ x), int(nonzero[0]) if nonzero.size else -1]


def _accuracy_caveat(
    check: CheckResult, gradients: dict[str, GradientVerdict], training: dict[str, Any]
) -> CheckResult:
    """Q4.training's message, plus a warning when the network trains well although Q3 found wrong gradients."""
    wrong = [name for name, v in gradients.items() if v.verdict == "wrong"]
    student, reference = training.get("student") or [], training.get("reference") or []
    if check.id != "Q4.training" or not wrong or not student or not reference or student[-1] < reference[-1]:
        return check
    note = (f" Your network trains as well as the reference although Q3 found wrong gradients "
            f"({', '.join(wrong)}): accuracy alone does not show that backpropagation is right.")
    return replace(check, message=check.message + note)


def _verdicts_agreeing_with(q3: list[CheckResult], gradients: dict[str, GradientVerdict]
                            ) -> dict[str, GradientVerdict]:
    """A tensor right at the probes whose credit was withheld (its step is not what trains) is not `ok` in the
    JSON either: verdict 'wrong', the reason as its diagnosis; the probe's e is kept."""
    changed = {}
    for check in q3:
        name = check.id.split(".")[-1]
        verdict = gradients.get(name)
        withheld = check.details.get("credit_withheld")
        if verdict is not None and verdict.ok and withheld:
            changed[name] = replace(verdict, ok=False, verdict="wrong", diagnosis=withheld)
    return changed


def _distrust_probes_if_real_step_fails(checks: list[CheckResult]) -> list[CheckResult]:
    """A step right at the probes but wrong at ordinary weights has recognised the probes: no tensor credit.

    A correct train_one_sample passes both; one that computes the gradient only when probed does not.
    """
    by_id = {c.id: c for c in checks}
    real = by_id.get("Q3.real_step")
    tensors = [by_id.get(f"Q3.{t}") for t in ("W1", "b1", "W2", "b2", "W3", "b3")]
    if real is None or real.status != "failed" or not all(t is not None and t.status == "passed" for t in tensors):
        return checks
    note = ("Not credited: the gradient is right at the grader's probe points but an ordinary step is not "
            "(see 'one ordinary step'), so the probes do not show how your step trains.")
    return [replace(c, status="failed", score=0.0, message=f"{note} {c.message}",
                    details={**c.details, "credit_withheld": note}) if c in tensors else c for c in checks]


INPUT_SCALES = {255.0: "divides inputs by 255", 256.0: "divides inputs by 256"}


def _own_input_scale(student: Student, data: GradingData, seed: int) -> float | None:
    """255 (or 256) when the student's whole gradient is exactly right for inputs divided by it, else None.

    A student who scales pixels inside their own functions computes a different network than the handout's;
    their backpropagation can still be right for it, and Q3 grades backpropagation.
    """
    from grader.gradients import implied_gradient, relative_error
    from grader.student import StudentCodeError

    for i, (x, label) in enumerate(data.probes[:2]):
        params = probe_point(x, seed + i)
        try:
            implied = implied_gradient(params, student.train_one_sample(params, x, label, 1.0), 1.0)
        except (StudentCodeError, ValueError, TypeError, IndexError):
            return None
        matches = [d for d in INPUT_SCALES
                   if _all_close(implied, network.gradient(*params, x / d, label), relative_error)]
        if not matches:
            return None
    return matches[0]


def _forward_input_scale(student: Student, data: GradingData, seed: int) -> float | None:
    """The scale the student's feed_forward_sample divides inputs by (1.0: raw pixels), or None if unclear."""
    from grader.student import StudentCodeError

    found = None
    for i, (x, label) in enumerate(data.probes[:2]):
        params = probe_point(x, seed + i)
        try:
            loss, _ = student.feed_forward_sample(params, x, label)
            loss = float(np.asarray(loss, dtype=np.float64).reshape(()))
        except (StudentCodeError, ValueError, TypeError, IndexError):
            return None
        errors = {d: abs(loss - float(network.loss(*params, x / d, label))) / max(abs(loss), 1e-12)
                  for d in (1.0, *INPUT_SCALES)}
        best = min(errors, key=errors.get)
        if errors[best] > 1e-6 or found not in (None, best):  # float32 losses agree to ~1e-7
            return None
        found = best
    return found


def _inconsistent_sentence(scale: float, forward_scale: float | None) -> str:
    forward = ("feeds the raw pixels" if forward_scale == 1.0 else
               "does not divide the same way" if forward_scale is None else f"divides by {forward_scale:g}")
    return (f"Your train_one_sample {INPUT_SCALES[scale]} but your feed_forward_sample {forward}: the "
            "gradient your step uses belongs to another network than the one you evaluate. Scale the inputs "
            "in one place (or not at all, as the handout does).")


def _inconsistent(check: CheckResult, scale: float, forward_scale: float | None) -> CheckResult:
    """A failed Q3 tensor check whose message names the inconsistent input scaling."""
    if check.id.split(".")[-1] not in ("W1", "b1", "W2", "b2", "W3", "b3") or check.status == "passed":
        return check
    return replace(check, message=f"{_inconsistent_sentence(scale, forward_scale)} {check.message}",
                   details={**check.details, "inconsistent_input_scale": scale})


def _all_close(student: Params, expected: Params, metric: Callable[..., float], tolerance: float = 1e-5) -> bool:
    pairs = list(zip(student[0] + student[1], expected[0] + expected[1], strict=True))
    return all(np.shape(g) == np.shape(f) and metric(np.asarray(g), np.asarray(f)) <= tolerance for g, f in pairs)


def _scaled_sentence(scale: float) -> str:
    return (f"Your gradient is right for your own forward pass, which {INPUT_SCALES[scale]}; the handout's "
            "does not (it feeds the raw pixels 0..255), so Q2 checks your forward pass against the handout's.")


def _graded_on_own_forward(check: CheckResult, scale: float) -> CheckResult:
    """A Q3 tensor check re-judged against the student's own (scaled-input) network."""
    if check.id.split(".")[-1] not in ("W1", "b1", "W2", "b2", "W3", "b3"):
        return check
    return replace(check, status="passed", score=check.max_score, message=_scaled_sentence(scale),
                   details={**check.details, "graded_against": f"the reference at x / {scale:g}",
                            "against_handout": check.message})


def _init_figures(params: Params | None) -> dict[str, Any]:
    """figures["init"]: each weight matrix's values against the expected N(0, 1/max(n_in, n_out))."""
    if params is None:
        return {}
    init = {}
    for layer, w in enumerate(params[0]):
        w = np.asarray(w, dtype=np.float64)
        if w.ndim == 2 and np.isfinite(w).all():
            init[f"W{layer + 1}"] = {"values": w.ravel().tolist(), "sigma": float(np.sqrt(1.0 / max(w.shape))),
                                     "mean": 0.0}
    return {"init": init} if init else {}


def _named_probe(q3: list[CheckResult]) -> int:
    """The index of the probe digit Q3.W1's message names as its worst (0 when it names none)."""
    w1 = next((c for c in q3 if c.id == "Q3.W1"), None)
    labels = w1.details.get("labels") if w1 else None
    named = w1.details.get("worst_label") if w1 else None
    return labels.index(named) if isinstance(labels, list) and named in labels else 0


def _gradient_figures(student: Student, data: GradingData, seed: int, index: int = 0) -> dict[str, Any]:
    """figures["gradients"]: the student's implied gradient and the finite differences at probe `index` (the
    digit the W1 check names), with that digit's label and pixels."""
    from grader.gradients import TENSOR_NAMES, finite_difference_gradient, implied_gradient, tensor
    from grader.student import StudentCodeError

    x, label = data.probes[index]
    params = probe_point(x, seed + index)
    try:
        after = student.train_one_sample(params, x, label, 1.0)
        implied = implied_gradient(params, after, 1.0)
    except (StudentCodeError, ValueError, TypeError, IndexError):
        return {}
    expected = finite_difference_gradient(params, x, label)
    pictures = {}
    for name in TENSOR_NAMES:
        g, f = np.asarray(tensor(implied, name)), np.asarray(tensor(expected, name))
        if g.shape == f.shape and np.isfinite(g).all():
            pictures[name] = {"student": g.tolist(), "expected": f.tolist()}
    if pictures:
        pictures["probe"] = {"label": int(label), "pixels": np.asarray(x, dtype=np.float64).tolist()}
    return {"gradients": pictures} if pictures else {}


def _guarded(qid: str, fn: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """The question's checks, or one 'error' result worded as the grader's failure, never a crash."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a grader bug must cost the grader, not the whole report
        import traceback

        return [CheckResult(f"{qid}.grader", f"{qid}: grader failure", "error", 0.0, 0.0,
                            f"The grader failed while checking {qid} (not your code's fault): {exc!r}. "
                            "Please report this to the course staff.", "hidden",
                            details={"traceback": traceback.format_exc()[-4000:]})]


def _layout_note(student: Student) -> str | None:
    notes = [a for a in getattr(student, "adaptations", ()) if "transposed" in a]
    return notes[0] if notes else None


def _problems_as_errors(student: Student) -> tuple[RunError, ...]:
    return tuple(RunError("adaptation", "reading your code", p) for p in getattr(student, "problems", ()))


def _question_ids(rubric: Rubric) -> list[str]:
    return [q for q in QUESTION_ORDER if q in rubric.questions or q in KNOWN_CHECKS]


def _header(path: Path, name: str, rubric: Rubric) -> dict[str, Any]:
    return {"submission": name, "path": str(path), "rubric": rubric.name, "rubric_sha256": rubric.sha256,
            "grader_version": __version__,
            "graded_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}


def _finish(header: dict[str, Any], questions: tuple[QuestionResult, ...], *, started: float,
            visible_only: bool, **fields: Any) -> SubmissionResult:
    if visible_only:
        # A grader failure stays visible: hiding it would show a question with nothing in it.
        questions = tuple(replace(q, checks=tuple(c for c in q.checks
                                                  if c.visibility == "visible" or c.id.endswith(".grader")))
                          for q in questions)
    return SubmissionResult(questions=questions, duration_s=round(time.monotonic() - started, 3),
                            **header, **fields)
