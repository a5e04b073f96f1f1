"""Q3: backpropagation. The gradient train_one_sample's update implies, against finite differences, per
tensor; one ordinary step; and credit only for what the student's own loop confirms (checks/own_loop.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from grader.checks.backprop import BackpropSettings, check_backprop
from grader.checks.failures import SHARE
from grader.checks.forward import loss_factor_words
from grader.checks.own_loop import (
    OwnLoopRun,
    began_with_first_sample,
    first_step_errors,
    replaced_weights,
    trajectory_errors,
    withhold_credit,
    wrong_tensors,
)
from grader.checks.real_step import RealStep, check_real_step
from grader.checks.signatures import check_signatures
from grader.checks.watched_step import watched_step_errors
from grader.data import GradingData
from grader.gradients import implied_gradient, least_squares_ratio, probe_point, relative_error
from grader.questions.base import Context, Question
from grader.results import CheckResult, GradientVerdict
from grader.student import Params, Student, StudentCodeError
from reference import network

TENSORS = ("W1", "b1", "W2", "b2", "W3", "b3")
FUNCTIONS = ("train_one_sample",)


def run(student: Student, ctx: Context) -> list[CheckResult]:
    """The tensors at the probes, the ordinary step, the own-scale and own-loop decisions, the signature."""
    data, settings, init = ctx.data, ctx.settings["Q3"], ctx.init
    results, verdicts = check_backprop(student, list(data.probes), settings)
    ctx.gradients.update(verdicts)
    (x, label), (x2, label2) = (data.train_images[0], int(data.train_labels[0])), data.probes[1]
    steps = [RealStep("the handout's initialisation", init, x, label),
             RealStep("weights after one epoch of training", data.trained, x2, label2)]
    decay = {c.id.split(".")[-1]: c.details["weight_decay"] for c in results if "weight_decay" in c.details}
    checks = results + [check_real_step(student, steps, SHARE, probes_passed=all(v.ok for v in verdicts.values()),
                                        decay=decay or None)]
    checks, own_scale = _judge_own_input_scale(student, ctx, checks, steps)
    checks, loss_factor = _judge_own_loss_factor(student, ctx, checks, steps) if own_scale is None else (checks, None)
    checks = _distrust_probes_if_real_step_fails(checks)
    loop = ctx.loop_check(student) if student.has("train_one_epoch") else None
    if loop is not None and decay:
        lr = ctx.settings["Q4"].loop_learning_rate
        loop = replace(loop, details={**loop.details, "trajectory_rel_error": _trajectory(student, ctx, lr, decay)})
    own = ctx.own_loop(student) if loop else None
    if loss_factor is not None and loop is not None:
        # a loss c times the handout's steps as the handout's loss does at c times the rate: compare so
        lr = ctx.settings["Q4"].loop_learning_rate * loss_factor
        loop = replace(loop, details={**loop.details, "trajectory_rel_error": _trajectory(student, ctx, lr, decay)})
        own = replace(own, learning_rate=own.learning_rate * loss_factor) if own is not None else None
    checks = _credit_only_what_the_own_loop_confirms(checks, [loop] if loop else [], own, own_scale, decay)
    if loop is not None and own_scale is None:
        checks = _credit_only_what_the_watched_step_confirms(checks, student, ctx, loss_factor, decay)
    ctx.gradients.update(_verdicts_agreeing_with(checks, ctx.gradients))
    if any(not v.ok for v in ctx.gradients.values()):
        ctx.figures.update(_gradient_figures(student, data, settings.seed, _named_probe(checks)))
    return checks + [check_signatures("Q3", student, FUNCTIONS)]


def _judge_own_input_scale(student: Student, ctx: Context, checks: list[CheckResult], steps: list[RealStep]
                           ) -> tuple[list[CheckResult], float | None]:
    """A student whose whole gradient is right for inputs divided by 255 is graded against that network when
    their forward pass divides the same way, and told of the inconsistency when it does not."""
    if not any(v.verdict == "wrong" for v in ctx.gradients.values()):
        return checks, None
    seed = ctx.settings["Q3"].seed
    scale = _own_input_scale(student, ctx.data, seed)
    if scale is None:
        return checks, None
    forward_scale = _forward_input_scale(student, ctx.data, seed)
    if forward_scale != scale:
        for name, v in list(ctx.gradients.items()):
            if v.verdict == "wrong":
                ctx.gradients[name] = replace(v, diagnosis=_inconsistent_sentence(scale, forward_scale))
        return [_inconsistent(c, scale, forward_scale) for c in checks], None
    rejudged = check_real_step(student, steps, SHARE, input_scale=scale,
                               probes_passed=True)
    checks = [rejudged if c.id == rejudged.id else _graded_on_own_forward(c, scale) for c in checks]
    for name, v in list(ctx.gradients.items()):
        # judged against the student's own network: ok and verdict agree (the e above is the handout's)
        ctx.gradients[name] = replace(v, ok=True, verdict="correct", diagnosis=_scaled_sentence(scale))
    return checks, scale


def _distrust_probes_if_real_step_fails(checks: list[CheckResult]) -> list[CheckResult]:
    """A step right at the probes but wrong at ordinary weights has recognised the probes: no tensor credit.

    A correct train_one_sample passes both; one that computes the gradient only when probed does not.
    """
    by_id = {c.id: c for c in checks}
    real = by_id.get("Q3.real_step")
    tensors = [by_id.get(f"Q3.{t}") for t in ("W1", "b1", "W2", "b2", "W3", "b3")]
    if real is None or real.status != "failed" or not all(t is not None and t.status == "passed" for t in tensors):
        return checks
    if "weight_decay" in real.details:  # the step is the probes' step, decay included: it is charged there
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


def _trajectory(student: Student, ctx: Context, learning_rate: float,
                decay: dict[str, float] | None) -> dict[str, float]:
    """Q4.loop's 20-step trajectory errors against the reference's steps at learning_rate, with the student's L2
    weight decay (name -> lambda) where Q3 found one."""
    run = ctx.loop_run(student)
    if isinstance(run, StudentCodeError) or run.params is None:
        return {}
    q4 = ctx.settings["Q4"]
    images, labels = ctx.data.train_images[: q4.loop_samples], ctx.data.train_labels[: q4.loop_samples]
    return trajectory_errors(ctx.init, run.params, images, labels, learning_rate, decay or None)


def _judge_own_loss_factor(student: Student, ctx: Context, checks: list[CheckResult], steps: list[RealStep]
                           ) -> tuple[list[CheckResult], float | None]:
    """A student whose whole gradient is c times the right one, where their own feed_forward_sample's loss is c
    times the handout's (a mean over the 10 outputs: c = 0.1), backpropagates their own loss correctly: Q2 charges
    the loss, Q3 grades the backprop of it (the tensors, and the ordinary step at c times the rate)."""
    if not any(v.verdict == "wrong" for v in ctx.gradients.values()):
        return checks, None
    seed = ctx.settings["Q3"].seed
    factor = _own_gradient_factor(student, ctx.data, seed)
    forward = _forward_loss_factor(student, ctx.data, seed) if factor is not None else None
    if factor is None or forward is None or abs(forward - factor) > 1e-6 * factor:
        return checks, None
    rejudged = check_real_step(student, steps, SHARE, probes_passed=True, loss_factor=factor)
    if rejudged.status != "passed":
        return checks, None
    sentence = _loss_factor_sentence(factor)
    checks = [rejudged if c.id == rejudged.id else _graded_on_own_loss(c, factor, sentence) for c in checks]
    for name, v in list(ctx.gradients.items()):
        ctx.gradients[name] = replace(v, ok=True, verdict="correct", diagnosis=sentence)
    return checks, factor


def _own_gradient_factor(student: Student, data: GradingData, seed: int) -> float | None:
    """The one factor c (positive, not 1) with the student's whole implied gradient c times the right one to
    1e-5 at two probe digits, or None."""
    found = []
    for i, (x, label) in enumerate(data.probes[:2]):
        params = probe_point(x, seed + i)
        try:
            implied = implied_gradient(params, student.train_one_sample(params, x, label, 1.0), 1.0)
        except (StudentCodeError, ValueError, TypeError, IndexError):
            return None
        right = network.gradient(*params, x, label)
        g = [np.asarray(t, dtype=np.float64) for t in implied[0] + implied[1]]
        f = [np.asarray(t, dtype=np.float64) for t in right[0] + right[1]]
        if any(a.shape != b.shape or not np.isfinite(a).all() for a, b in zip(g, f, strict=True)):
            return None
        c = least_squares_ratio(np.concatenate([a.ravel() for a in g]), np.concatenate([b.ravel() for b in f]))
        if c is None or not c > 0 or abs(c - 1) < 1e-3:
            return None
        if not all(relative_error(a, c * b) <= 1e-5 for a, b in zip(g, f, strict=True)):
            return None
        found.append(c)
    return found[0] if found and max(found) <= (1 + 1e-6) * min(found) else None


def _forward_loss_factor(student: Student, data: GradingData, seed: int) -> float | None:
    """The one factor c with the student's feed_forward_sample loss c times the handout's at two probe digits."""
    found = []
    for i, (x, label) in enumerate(data.probes[:2]):
        params = probe_point(x, seed + i)
        try:
            loss, _ = student.feed_forward_sample(params, x, label)
            loss = float(np.asarray(loss, dtype=np.float64).reshape(()))
        except (StudentCodeError, ValueError, TypeError, IndexError):
            return None
        expected = float(network.loss(*params, x, label))
        if not (np.isfinite(loss) and expected > 0):
            return None
        found.append(loss / expected)
    return found[0] if found and max(found) <= (1 + 1e-6) * min(found) and found[0] > 0 else None


def _loss_factor_sentence(factor: float) -> str:
    return (f"Your gradient is right for your own loss, which is the handout's cross-entropy times {factor:.4g}: "
            f"{loss_factor_words(factor)}. Every step is then that factor times the handout's; Q2 charges the "
            "loss, and your backpropagation of it is right.")


def _graded_on_own_loss(check: CheckResult, factor: float, sentence: str) -> CheckResult:
    """A Q3 tensor check re-judged against the gradient of the student's own (scaled) loss."""
    if check.id.split(".")[-1] not in TENSORS:
        return check
    return replace(check, status="passed", score=check.max_score, message=sentence, mistake_id=None, fix=None,
                   details={**check.details, "graded_against": f"{factor:.6g} times the reference gradient",
                            "against_handout": check.message})


def _credit_only_what_the_own_loop_confirms(q3: list[CheckResult], q4: list[CheckResult], own: OwnLoopRun | None,
                                            scale: float | None, decay: dict[str, float] | None = None
                                            ) -> list[CheckResult]:
    """Q3 tensors right at the probes but wrong in the steps of the student's own train_one_epoch: no credit.

    Only where the loop itself is sound (a loop that skips, scales or rescales is Q4's business) and the
    student's network is the handout's (an own-scale network is judged at the probes only). decay: the L2 weight
    decay the probes found (name -> lambda), which the loop's steps are compared with too."""
    if scale is not None:
        return q3
    # A loop that trains other weights than it is given (it re-initialises them) is Q4.loop's finding: its first
    # step says nothing of the gradient then.
    if own is not None and began_with_first_sample(own) and not replaced_weights(own):
        q3 = withhold_credit(q3, wrong_tensors(first_step_errors(own, decay)), "the first step of your own "
                             "train_one_epoch (from the same kind of weights, on a full-length x_train)")
    loop = next((c for c in q4 if c.id == "Q4.loop"), None)
    tensors = [c for c in q3 if c.id.split(".")[-1] in ("W1", "b1", "W2", "b2", "W3", "b3")]
    # Over 20 steps one wrong tensor moves every other: the trajectory speaks only when all six were right
    if loop is not None and loop.status == "passed" and tensors and all(c.status == "passed" for c in tensors):
        q3 = withhold_credit(q3, wrong_tensors(loop.details.get("trajectory_rel_error") or {}),
                             "where your own train_one_epoch takes 20 steps from the handout's initialisation, the "
                             "result")
    return q3


def _credit_only_what_the_watched_step_confirms(q3: list[CheckResult], student: Student, ctx: Context,
                                                 loss_factor: float | None, decay: dict[str, float] | None
                                                 ) -> list[CheckResult]:
    """Q3 tensors right until now (at the probes and in the loop's first steps) but wrong in the step watched deep
    in Q4's training run (checks/watched_step.py): the step recognises the grader's calls, so no credit, and none
    for Q3.real_step either. Compared with the student's own loss factor and weight decay where Q3 found them."""
    watched = ctx.watched_step(student)
    if watched is None:
        return q3
    q4 = ctx.settings["Q4"]
    images, labels = ctx.data.train_images[: q4.train_samples], ctx.data.train_labels[: q4.train_samples]
    errors = watched_step_errors(watched, images, labels, q4.learning_rate * (loss_factor or 1.0), decay or None)
    wrong = wrong_tensors(errors)
    if not any(c.id.split(".")[-1] in wrong and c.status == "passed" for c in q3):
        return q3
    where = f"step {watched.index + 1} of the first epoch of your own training run (Q4), from the weights your " \
            "loop had reached there,"
    return withhold_credit(q3, {**wrong, "real_step": max(wrong.values())}, where)


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




QUESTION = Question("Q3", "Q3 Backpropagation", 3, BackpropSettings,
                    tuple(f"Q3.{t}" for t in TENSORS) + ("Q3.real_step", "Q3.learning_rate", "Q3.determinism",
                                                          "Q3.zero_pixels", "Q3.signature"),
                    FUNCTIONS, run, figures=("gradients",))
