"""Q3: the student's train_one_sample, judged by the gradient its step implies, tensor by tensor.

From the grader's own healthy probe point, each probe digit is stepped at two learning rates from the
same restored state; (before - after) / lr is compared with central finite differences of the
reference loss for W1, b1, W2, b2, W3, b3. Each tensor gets its own verdict, points and diagnosis.
Side checks: the two rates agree, a repeated call repeats itself, W1 rows of zero pixels stay put.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from grader.checks.failures import SHARE, grader_failed, student_failed
from grader.diagnosis import Diagnosis, RateProbe, WeightDecay, diagnose, weight_decay, weight_decay_sentence
from grader.gradients import (
    TENSOR_NAMES,
    GradientPolicy,
    compare_tensor,
    describe,
    finite_difference_gradient,
    implied_gradient,
    probe_point,
    relative_error,
    tensor,
)
from grader.pinpoint import Pinpoint, TracedArray
from grader.results import CheckResult, FirstWrong, GradientVerdict
from grader.student import Params, Student, StudentCodeError, copy_params

TITLE = "train_one_sample: gradient of {}"
SIDE_CHECKS = {
    "Q3.learning_rate": "train_one_sample: the step scales with learning_rate",
    "Q3.determinism": "train_one_sample: the same call gives the same step",
    "Q3.zero_pixels": "train_one_sample: W1 rows of zero pixels stay unchanged",
}
FLOAT32_ROUNDING = 2.0**-24  # largest relative change float64 -> float32 -> float64 makes


@dataclass(frozen=True)
class BackpropSettings:
    """Q3 settings (the rubric fills them): learning rates, probe digits, thresholds on e."""

    large_learning_rate: float = 1.0  # (before - after) / 1 is exact in float64
    small_learning_rate: float = 1e-3
    samples: int = 3  # probe digits always used
    max_samples: int = 5  # probe digits used at most while a tensor stays inconclusive
    seed: int = 0  # probe point of digit i: probe_point(x_i, seed + i)
    correct_threshold: float = 1e-5
    wrong_threshold: float = 1e-2
    float64_threshold: float = 1e-8
    match_threshold: float = 1e-3
    inconclusive_credit: float = 0.5  # share of a tensor's points when e stays between the thresholds
    rate_threshold: float = 1e-2  # largest e between the two rates' gradients (float32 reaches ~1e-4)

    @property
    def policy(self) -> GradientPolicy:
        return GradientPolicy(self.correct_threshold, self.wrong_threshold, self.float64_threshold,
                              self.match_threshold)



@dataclass(frozen=True)
class _Probe:
    """One probe digit: the point, the two implied gradients, finite differences and the verdicts."""

    index: int
    x: np.ndarray
    label: int
    params: Params
    at_large: Params | None
    at_small: Params | None
    expected: Params
    large: dict[str, GradientVerdict]
    small: dict[str, GradientVerdict]
    notes: dict[str, list[str]] = field(default_factory=dict)  # side check id -> problems found
    pinpoint: Pinpoint | None = None  # the step at the large rate, traced (first probe digit, sandbox only)


class UnusableParams(Exception):
    """train_one_sample came back with something that is not (weights, biases)."""


def read_params(value: Any) -> Params:
    """(weights, biases) as lists of three float arrays; raises UnusableParams otherwise."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise UnusableParams(f"got {type(value).__name__}, expected (weights, biases)")
    weights, biases = value
    if not all(isinstance(v, (list, tuple)) and len(v) == 3 for v in (weights, biases)):
        raise UnusableParams("expected three weight matrices and three bias vectors")
    try:
        return ([np.asarray(w, dtype=np.float64) for w in weights],
                [np.asarray(b, dtype=np.float64) for b in biases])
    except (TypeError, ValueError) as exc:
        raise UnusableParams(f"weights or biases are not numeric arrays ({exc})") from None


def _step(student: Student, params: Params, x: np.ndarray, label: int, lr: float) -> Params | str:
    """The student's parameters after one step, or why they cannot be read (StudentCodeError propagates)."""
    try:
        return read_params(student.train_one_sample(copy_params(params), x.copy(), int(label), lr))
    except UnusableParams as exc:
        return f"after train_one_sample the parameters are unusable: {exc}"


def _traced_step(student: Student, params: Params, x: np.ndarray, label: int,
                 lr: float) -> tuple[Params | str, Pinpoint | None]:
    """_step, traced where the student runs in a sandbox: (parameters after the step, the traced arrays
    matched against the reference's intermediates, None where nothing could be traced)."""
    traced_step = getattr(student, "traced_train_one_sample", None)
    if traced_step is None:
        return _step(student, params, x, label, lr), None
    try:
        after, records = traced_step(copy_params(params), x.copy(), int(label), lr)
        after = read_params(after)
    except UnusableParams as exc:
        return f"after train_one_sample the parameters are unusable: {exc}", None
    except StudentCodeError as exc:
        if exc.error.kind != "timeout":
            raise
        return _step(student, params, x, label, lr), None  # tracing must never cost a slow step its points
    layout = getattr(student, "layout", None)
    square_transposed = bool(layout is not None and layout.layers[1].transposed)
    traced = [TracedArray.from_record(r) for r in records]
    return after, Pinpoint(traced, params, x, label, square_transposed) if traced else None


def _verdicts(grads: Params | None, expected: Params, policy: GradientPolicy) -> dict[str, GradientVerdict]:
    return {n: compare_tensor(n, None if grads is None else tensor(grads, n), tensor(expected, n), policy)
            for n in TENSOR_NAMES}


def _same(a: Params, b: Params) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a[0] + a[1], b[0] + b[1], strict=True))


def _zero_pixel_problem(params: Params, after: Params, x: np.ndarray, lr: float) -> str | None:
    """Why W1 rows of zero pixels changed in the step at lr, or None (float32 rounding tolerated)."""
    before, moved = params[0][0], after[0][0]
    if moved.shape != before.shape:
        return None
    rows = x == 0
    change = np.abs(moved[rows] - before[rows])
    if not change.any():
        return None
    if np.all(change <= FLOAT32_ROUNDING * np.abs(before[rows])):
        return None  # the float32 round trip, not a step
    i, j = np.unravel_index(int(np.argmax(change)), change.shape)
    pixel = int(np.flatnonzero(rows)[i])
    moved_rows = int((change > 0).any(axis=1).sum())
    return (f"at learning rate {lr:g}, W1[{pixel}, {j}] moved by {change[i, j]:.3g} though pixel {pixel} "
            "is 0 "
            f"(dL/dW1[{pixel}, :] = x[{pixel}] * delta1 = 0); {moved_rows} such rows moved")


def _probe(student: Student, index: int, x: np.ndarray, label: int, settings: BackpropSettings) -> _Probe:
    """Step the student from the probe point of one digit at both rates and judge each tensor."""
    params = probe_point(x, settings.seed + index)
    expected = finite_difference_gradient(params, x, label)
    notes: dict[str, list[str]] = {k: [] for k in SIDE_CHECKS}
    grads, pinpoint = {}, None
    for lr in (settings.large_learning_rate, settings.small_learning_rate):
        if index == 0 and lr == settings.large_learning_rate:
            after, pinpoint = _traced_step(student, params, x, label, lr)
        else:
            after = _step(student, params, x, label, lr)
        if isinstance(after, str):
            return _Probe(index, x, label, params, None, None, expected,
                          *(2 * [{n: GradientVerdict(n, False, "missing", None, diagnosis=after)
                                  for n in TENSOR_NAMES}]))
        grads[lr] = implied_gradient(params, after, lr)
        problem = _zero_pixel_problem(params, after, x, lr)
        if problem:
            notes["Q3.zero_pixels"].append(f"digit {index + 1} (a {label}): {problem}")
        if index == 0 and lr == settings.large_learning_rate:
            again = _step(student, params, x, label, lr)
            if isinstance(again, str) or not _same(after, again):
                notes["Q3.determinism"].append(
                    f"two calls with the same parameters, digit (a {label}) and learning rate {lr:g} "
                    "gave different results: the step must depend only on its inputs (no randomness, "
                    "no state kept between calls)")
    at_large, at_small = grads[settings.large_learning_rate], grads[settings.small_learning_rate]
    policy = settings.policy
    return _Probe(index, x, label, params, at_large, at_small, expected,
                  _verdicts(at_large, expected, policy), _verdicts(at_small, expected, policy), notes, pinpoint)


def _severity(v: GradientVerdict) -> float:
    """Orders verdicts from best to worst: structural failures beat any e."""
    return np.inf if v.rel_error is None else v.rel_error


def _worst(probes: list[_Probe], name: str) -> tuple[_Probe, GradientVerdict]:
    """The probe and verdict with the largest e for tensor name, at the large rate."""
    probe = max(probes, key=lambda p: _severity(p.large[name]))
    return probe, probe.large[name]


def _inconclusive(probes: list[_Probe]) -> bool:
    return any(_worst(probes, n)[1].verdict == "inconclusive" for n in TENSOR_NAMES)


def _judged(probes: list[_Probe], name: str, settings: BackpropSettings) -> tuple[_Probe, GradientVerdict]:
    """The tensor's verdict over all probes: the worst at the large rate, unless the small rate is wrong."""
    probe, verdict = _worst(probes, name)
    small = max(probes, key=lambda p: _severity(p.small[name]))
    v_small = small.small[name]
    if verdict.ok and (v_small.rel_error is None or v_small.rel_error > settings.wrong_threshold):
        note = (f"At learning rate {settings.small_learning_rate:g} the implied gradient is off by "
                f"e = {_severity(v_small):.2g}, though it matches at {settings.large_learning_rate:g}.")
        return small, replace(v_small, ok=False, verdict="wrong", diagnosis=note)
    return probe, verdict


def _diagnosis(probe: _Probe, name: str, settings: BackpropSettings) -> Diagnosis | None:
    if probe.at_large is None or probe.at_small is None:
        return None
    rates = RateProbe(settings.large_learning_rate, settings.small_learning_rate, probe.at_small)
    return diagnose(name, probe.at_large, probe.params, probe.x, probe.label, rates=rates,
                    policy=settings.policy)


def _first_wrong(probes: list[_Probe], name: str) -> FirstWrong | None:
    """Where the traced step first goes wrong on the way to tensor name, if the trace shows it."""
    traced = probes[0]
    if traced.pinpoint is None or traced.at_large is None:
        return None
    return traced.pinpoint.first_wrong(name, traced.at_large)


def first_wrong_sentence(found: FirstWrong) -> str:
    """One sentence naming the first wrong quantity, the student's variable and line."""
    where = f"{found.variable} in {found.function}, line {found.line}"
    quoted = f" ({found.source})" if found.source else ""
    return (f"The first quantity of your step that goes wrong is {found.quantity}: {where}{quoted}, "
            f"e = {found.rel_error:.2g} against the reference's {found.quantity}.")


def _canonical(g: np.ndarray, f: np.ndarray) -> np.ndarray:
    """g in f's shape where they differ only by axes of length 1 (a (1, n) bias)."""
    g = np.asarray(g, dtype=np.float64)
    same = g.size == f.size and tuple(n for n in g.shape if n != 1) == tuple(n for n in f.shape if n != 1)
    return g.reshape(f.shape) if g.shape != f.shape and same else g


def _decay_at(probe: _Probe, grads: Params | None, name: str, lr: float,
              settings: BackpropSettings) -> WeightDecay | None:
    if grads is None:
        return None
    f = tensor(probe.expected, name)
    return weight_decay(_canonical(tensor(grads, name), f), f, tensor(probe.params, name), lr, settings.policy)


def _weight_decays(probes: list[_Probe], settings: BackpropSettings) -> dict[str, float]:
    """Per tensor, the L2 weight decay every probe's step adds to the right gradient (diagnosis.weight_decay),
    the same within 1% at every probe digit; tensors without one are left out."""
    decays = {}
    for name in TENSOR_NAMES:
        found = [_decay_at(p, p.at_large, name, settings.large_learning_rate, settings) for p in probes]
        if found and all(d is not None for d in found):
            rates = [d.decay for d in found if d is not None]
            if max(rates) <= 1.01 * min(rates):
                decays[name] = float(np.median(rates))
    if decays:  # the same decay where it is too small to fit alone (W1 of a float32 student): taken if it explains
        lam = float(np.median(list(decays.values())))
        decays.update({n: lam for n in TENSOR_NAMES if n not in decays and _explained_by(probes, n, lam)})
    return decays


def _explained_by(probes: list[_Probe], name: str, decay: float) -> bool:
    """True when taking decay * tensor out of every probe's step brings tensor name at least twice as close to
    the right gradient, from further than float64 rounding."""
    for p in probes:
        if p.at_large is None:
            return False
        f = tensor(p.expected, name)
        g = _canonical(tensor(p.at_large, name), f)
        theta = np.asarray(tensor(p.params, name), dtype=np.float64)
        if g.shape != f.shape or not theta.any():
            return False
        before, after = relative_error(g, f), relative_error(g - decay * theta, f)
        if not (before > 1e-8 and after <= 0.5 * before):
            return False
    return True


def _without_decay(probe: _Probe, decays: dict[str, float], settings: BackpropSettings) -> _Probe:
    """The probe's verdicts on the gradients its steps used, each tensor's weight decay taken out."""
    judged = {}
    for rate, grads, verdicts in ((settings.large_learning_rate, probe.at_large, probe.large),
                                  (settings.small_learning_rate, probe.at_small, probe.small)):
        verdicts = dict(verdicts)
        for name, decay in decays.items():
            if grads is None:
                continue
            f = tensor(probe.expected, name)
            fit = _decay_at(probe, grads, name, rate, settings) or WeightDecay(decay, 1.0)
            used = fit.remove(_canonical(tensor(grads, name), f), tensor(probe.params, name))
            verdicts[name] = compare_tensor(name, used, f, settings.policy)
        judged[rate] = verdicts
    return replace(probe, large=judged[settings.large_learning_rate], small=judged[settings.small_learning_rate])


NOT_REPEATABLE = "step_not_repeatable"


def _not_repeatable_sentence(name: str) -> str:
    return (f"{name}: your step does not depend on its inputs alone: two identical calls of train_one_sample moved "
            "the parameters differently (randomness, a momentum or velocity buffer, a cache kept in a global, ...), "
            "so a step is not the gradient of the sample it is given. The handout's step is plain SGD: "
            f"{name} -= learning_rate * d{name}, from this sample only.")


def _tensor_result(probes: list[_Probe], name: str, settings: BackpropSettings,
                   decay: float | None = None) -> tuple[CheckResult, GradientVerdict]:
    """One tensor's check; decay: the L2 weight decay its step adds, already taken out of the probes' verdicts
    (Q3.real_step charges it, once). A wrong tensor no known mistake explains, of a step that two identical calls
    moved differently, is said to be that."""
    probe, verdict = _judged(probes, name, settings)
    found = None if verdict.ok else _diagnosis(probe, name, settings)
    if found is None and not verdict.ok and any(p.notes.get("Q3.determinism") for p in probes):
        sentence = _not_repeatable_sentence(name)
        found = Diagnosis(name, NOT_REPEATABLE, sentence, float("nan"), verdict.rel_error or float("nan"))
        verdict = replace(verdict, diagnosis=" ".join(t for t in (verdict.diagnosis, sentence) if t))
    elif found is not None:
        verdict = replace(verdict, diagnosis=" ".join(t for t in (verdict.diagnosis, found.text) if t))
    if decay is not None:
        verdict = replace(verdict, diagnosis=" ".join(t for t in (verdict.diagnosis,
                                                                   weight_decay_sentence(name, decay)) if t))
    first = None if verdict.ok else _first_wrong(probes, name)
    if first is not None:
        verdict = replace(verdict, first_wrong=first)
    points = SHARE
    credit = {"correct": 1.0, "float32": 1.0, "inconclusive": settings.inconclusive_credit}
    fraction = credit.get(verdict.verdict, 0.0)
    where = f"worst of {len(probes)} probe digits: a {probe.label}" if len(probes) > 1 else f"a {probe.label}"
    message = f"{describe(verdict, settings.policy)} ({where})"
    if first is not None:
        message += " " + first_wrong_sentence(first)
    details = {
        "verdict": verdict.to_dict(),
        "rel_error_per_digit": [p.large[name].rel_error for p in probes],
        "rel_error_per_digit_small_rate": [p.small[name].rel_error for p in probes],
        "labels": [p.label for p in probes],
        "worst_label": probe.label,  # the probe digit the message names
        "mistake": found.mistake if found else None,
    }
    if first is not None:
        details["first_wrong"] = first.to_dict()
    if decay is not None:
        details["weight_decay"] = decay
    if found is None and decay is not None:
        mistake_id, fix = "weight_decay", weight_decay_sentence(name, decay).split(": ", 1)[1]
    else:
        mistake_id, fix = (found.mistake, found.sentence) if found else (None, None)
    status = "passed" if verdict.ok else "failed"
    result = CheckResult(f"Q3.{name}", TITLE.format(name), status, round(points * fraction, 6), points,
                         message, details=details, mistake_id=mistake_id, fix=fix)
    return result, verdict


ROUNDING_ULPS = 4.0  # a float32 step reads back to within a few spacings of the weight


def _rate_error(small: np.ndarray, large: np.ndarray, before: np.ndarray, small_rate: float) -> float:
    """e between the implied gradients at the two rates, where a difference below the rounding of a step at the
    small rate (a few float32 spacings of the weight, divided by the rate) does not count."""
    floor = ROUNDING_ULPS * np.spacing(np.abs(np.asarray(before, dtype=np.float32))).astype(np.float64) / small_rate
    excess = np.maximum(np.abs(small - large) - floor, 0.0)
    scale = max(float(np.linalg.norm(small)), float(np.linalg.norm(large)))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(excess)) / scale


def _rate_disagreement(probes: list[_Probe], small_rate: float) -> tuple[float, str, int] | None:
    """The largest e between the two rates' implied gradients, its tensor and label; None if unreadable."""
    worst = None
    for p in probes:
        if p.at_large is None or p.at_small is None:
            return None
        for n in TENSOR_NAMES:
            g, s = tensor(p.at_large, n), tensor(p.at_small, n)
            if g.shape != s.shape:
                return None
            finite = np.isfinite(g).all() and np.isfinite(s).all()
            e = _rate_error(s, g, tensor(p.params, n), small_rate) if finite else np.inf
            if worst is None or e > worst[0]:
                worst = (e, n, p.label)
    return worst


def _rate_result(probes: list[_Probe], settings: BackpropSettings) -> CheckResult:
    check_id, points = "Q3.learning_rate", SHARE
    large, small = settings.large_learning_rate, settings.small_learning_rate
    worst = _rate_disagreement(probes, small)
    if worst is None:
        return CheckResult(check_id, SIDE_CHECKS[check_id], "failed", 0.0, points,
                           "The step could not be read at both learning rates.")
    e, name, label = worst
    details = {"rel_error": e, "tensor": name, "label": label, "rates": [large, small]}
    if e <= settings.rate_threshold:
        return CheckResult(check_id, SIDE_CHECKS[check_id], "passed", points, points,
                           f"The implied gradients at learning rates {large:g} and {small:g} agree "
                           f"(largest e = {e:.1e}, {name}).", details=details)
    probe = next(p for p in probes if p.label == label)
    found = _diagnosis(probe, name, settings)
    message = (f"The implied gradients (before - after) / learning_rate at rates {large:g} and {small:g} "
               f"differ: e = {e:.2g} for {name} (digit {label}); expected the same gradient at any rate.")
    if found is not None:
        message += " " + found.text
        details["mistake"] = found.mistake
    return CheckResult(check_id, SIDE_CHECKS[check_id], "failed", 0.0, points, message, details=details,
                       mistake_id=found.mistake if found else None, fix=found.sentence if found else None)


def _note_result(probes: list[_Probe], check_id: str, points: float, passed: str) -> CheckResult:
    problems = [n for p in probes for n in p.notes.get(check_id, [])]
    if not problems:
        return CheckResult(check_id, SIDE_CHECKS[check_id], "passed", points, points, passed)
    message = problems[0][0].upper() + problems[0][1:] + "."
    return CheckResult(check_id, SIDE_CHECKS[check_id], "failed", 0.0, points, message,
                       details={"problems": problems})


def _all_failed(settings: BackpropSettings, make) -> list[CheckResult]:
    """One result per check, each built by make(check_id, title, points)."""
    ids = [(f"Q3.{n}", TITLE.format(n), SHARE) for n in TENSOR_NAMES]
    ids += [(cid, title, SHARE) for cid, title in SIDE_CHECKS.items()]
    return [make(*i) for i in ids]


def _missing_verdicts(message: str) -> dict[str, GradientVerdict]:
    return {n: GradientVerdict(n, False, "missing", None, diagnosis=message) for n in TENSOR_NAMES}


def check_backprop(student: Student, samples: list[tuple[np.ndarray, int]],
                   settings: BackpropSettings = BackpropSettings()) -> tuple[list[CheckResult],
                                                                             dict[str, GradientVerdict]]:
    """Q3 results (Q3.W1 .. Q3.b3, then the side checks) and the per-tensor verdicts for the report.

    samples: probe digits [(x (784,), label)] of different classes (probe_samples); the first
    `settings.samples` are always used, more (up to max_samples) while a tensor is inconclusive.
    """
    if not student.has("train_one_sample"):
        message = ("train_one_sample is not defined at top level, "
                   "expected def train_one_sample(sample, y, learning_rate).")
        return (_all_failed(settings, lambda i, t, p: CheckResult(i, t, "failed", 0.0, p, message)),
                _missing_verdicts(message))
    probes: list[_Probe] = []
    try:
        for index, (x, label) in enumerate(samples[: settings.max_samples]):
            if index >= settings.samples and not _inconclusive(probes):
                break
            x = np.asarray(x, dtype=np.float64).ravel()
            probes.append(_probe(student, index, x, int(label), settings))
        if not probes:
            raise ValueError("no probe samples were given")
        decays = _weight_decays(probes, settings)
        judged = [_without_decay(p, decays, settings) for p in probes] if decays else probes
        tensors = [_tensor_result(judged, n, settings, decays.get(n)) for n in TENSOR_NAMES]
        results = [r for r, _ in tensors]
        results.append(_rate_result(probes, settings))
        results.append(_note_result(probes, "Q3.determinism", SHARE,
                                    "Two identical calls gave bit-identical parameters."))
        results.append(_note_result(probes, "Q3.zero_pixels", SHARE,
                                    "W1 rows of zero pixels were left unchanged, as their gradient is 0."))
        return results, {v.tensor: v for _, v in tensors}
    except StudentCodeError as exc:
        doing = f"calling train_one_sample on probe digit {len(probes) + 1}"
        return (_all_failed(settings, partial(_student_error, exc, doing)),
                _missing_verdicts(f"train_one_sample failed: {exc.error.message}"))
    except Exception as exc:  # a grader bug must cost the grader, not the student
        doing = "checking train_one_sample's gradient"
        return (_all_failed(settings, partial(_grader_error, exc, doing)),
                _missing_verdicts(f"the grader failed: {exc}"))


def _student_error(exc: StudentCodeError, doing: str, check_id: str, title: str,
                   points: float) -> CheckResult:
    return student_failed(check_id, title, points, exc, doing)


def _grader_error(exc: Exception, doing: str, check_id: str, title: str, points: float) -> CheckResult:
    return grader_failed(check_id, title, points, exc, doing)


# ---------------------------------------------------------------- one real step, where training happens
