"""Q3.real_step: one ordinary step (realistic weights, the handout's learning rate 0.003) equals the reference's.

The probes use the grader's own weights and learning rates 1 and 1e-3; a step that behaves differently there
than in training (one that recognises the probe, say) shows here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.checks.failures import student_failed
from grader.checks.step_probe import UnusableParams, read_params
from grader.diagnosis import step_with_decay
from grader.gradients import TENSOR_NAMES, relative_error, tensor
from grader.results import CheckResult
from grader.student import Params, Student, StudentCodeError, copy_params

REAL_LEARNING_RATE = 0.003  # the handout's
FLOAT32_RESOLUTION = 1e4  # compare only changes this many float32 spacings above the weight they change


@dataclass(frozen=True)
class RealStep:
    """Where the grader takes one ordinary step: realistic parameters (canonical), a sample (784,), its label."""

    name: str
    params: Params
    x: np.ndarray
    label: int


def _visible_change(before: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Entries whose change a float32 student can represent well: (…) bool."""
    return np.abs(change) > FLOAT32_RESOLUTION * np.spacing(np.abs(before).astype(np.float32)).astype(np.float64)


def check_real_step(student: Student, steps: list[RealStep], points: float,
                    threshold: float = 1e-2, input_scale: float = 1.0, probes_passed: bool = False,
                    decay: dict[str, float] | None = None, loss_factor: float = 1.0) -> CheckResult:
    """Q3.real_step: at ordinary weights and the handout's learning rate, the step equals the reference's.

    The probes above use the grader's own weights and learning rates 1 and 1e-3; a step that behaves
    differently there than in training (say, one that recognises the probe) shows here. decay: the L2 weight
    decay the probes found in the step (name -> lambda); a step that is the reference's plus that decay fails
    here, once, with the decay named (details["weight_decay"]), and is no sign of a step that recognises probes.
    loss_factor: for a student whose own loss is c times the handout's, its step is the reference's at c times
    the rate (grader/questions/q3_backprop.py decides).
    """
    check_id, title = "Q3.real_step", "train_one_sample: one ordinary step (learning rate 0.003)"
    if not student.has("train_one_sample"):
        return CheckResult(check_id, title, "failed", 0.0, points, "train_one_sample is not defined at top level.")
    problems, worst = [], {}
    for step in steps:
        try:
            after = read_params(student.train_one_sample(copy_params(step.params), step.x.copy(), step.label,
                                                          REAL_LEARNING_RATE))
        except StudentCodeError as exc:
            return student_failed(check_id, title, points, exc, f"one step at {step.name}")
        except UnusableParams as exc:
            return CheckResult(check_id, title, "failed", 0.0, points, f"At {step.name}: unusable parameters: {exc}.")
        # input_scale: for a student whose own network divides the pixels (grader/grading.py decides)
        expected = step_with_decay(step.params, step.x / input_scale, step.label, REAL_LEARNING_RATE * loss_factor,
                                   decay)
        for name in TENSOR_NAMES:
            before, want, got = (np.asarray(tensor(p, name), dtype=np.float64)
                                 for p in (step.params, expected, after))
            if got.shape != before.shape:
                problems.append(f"{name} changed shape from {before.shape} to {got.shape} at {step.name}")
                continue
            mask = _visible_change(before, before - want)
            if mask.sum() < 3:
                continue  # the reference's change is too small to judge here (a saturated layer)
            e = relative_error((before - got)[mask], (before - want)[mask])
            worst[name] = max(worst.get(name, 0.0), e)
            if not e <= threshold:
                problems.append(f"{name} at {step.name}: its change is off the reference step's by e = {e:.2g}")
    details = {"rel_error": worst, "learning_rate": REAL_LEARNING_RATE, "points": [s.name for s in steps]}
    if not problems and decay:
        return _decayed(check_id, title, points, decay, details)
    if not problems:
        rate = "" if loss_factor == 1.0 else f" at {loss_factor:.4g} times the rate, as your loss is scaled"
        message = (f"One step from {' and from '.join(s.name for s in steps)} with learning rate 0.003 "
                   f"matches the reference's step{rate} (largest e = {max(worst.values(), default=0.0):.2g}).")
        return CheckResult(check_id, title, "passed", points, points, message, details=details)
    message = ("Your step at ordinary weights and the handout's learning rate differs from the reference's: "
               + "; ".join(problems[:4]) + (" (and more)" if len(problems) > 4 else "") + ".")
    if probes_passed:
        message += " The gradient checks above passed, so your train_one_sample computes something else here than " \
                   "at the grader's probe points."
    return CheckResult(check_id, title, "failed", 0.0, points, message, details=details)


def _decayed(check_id: str, title: str, points: float, decay: dict[str, float], details: dict) -> CheckResult:
    """Q3.real_step failed for one reason: the step is the handout's plus L2 weight decay (name -> lambda)."""
    rates = sorted({float(f"{v:.3g}") for v in decay.values()})
    named = ", ".join(decay)
    lam = f"lambda = {rates[0]:.3g}" if len(rates) == 1 else "lambda = " + " / ".join(f"{r:.3g}" for r in rates)
    fix = ("The handout's step is plain SGD on the cross-entropy loss, W -= learning_rate * dW: leave the L2 "
           "weight decay (regularisation) out.")
    message = (f"Your step adds L2 weight decay to {named} ({lam}): it moves each by learning_rate * (its gradient "
               f"+ lambda * itself); otherwise it matches the reference's step. {fix}")
    return CheckResult(check_id, title, "failed", 0.0, points, message, details={**details, "weight_decay": decay},
                       mistake_id="weight_decay", fix=fix)
