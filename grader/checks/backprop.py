"""Q3: the student's train_one_sample, judged by the gradient its step implies, tensor by tensor.

From the grader's own healthy probe point, each probe digit is stepped at two learning rates from the
same restored state; (before - after) / lr is compared with central finite differences of the
reference loss for W1, b1, W2, b2, W3, b3. Each tensor gets its own verdict, points and diagnosis.
Side checks: the two rates agree, a repeated call repeats itself, W1 rows of zero pixels stay put.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from grader.checks.failures import SHARE, grader_failed, student_failed
from grader.checks.step_probe import SIDE_CHECKS, BackpropSettings, Probe, probe_digit
from grader.diagnosis import Diagnosis, RateProbe, WeightDecay, diagnose, weight_decay, weight_decay_sentence
from grader.gradients import (
    TENSOR_NAMES,
    compare_tensor,
    describe,
    relative_error,
    tensor,
)
from grader.results import CheckResult, FirstWrong, GradientVerdict
from grader.student import Params, Student, StudentCodeError

TITLE = "train_one_sample: gradient of {}"
DEFAULT_SETTINGS = BackpropSettings()


def _severity(v: GradientVerdict) -> float:
    """Orders verdicts from best to worst: structural failures beat any e."""
    return np.inf if v.rel_error is None else v.rel_error


def _worst(probes: list[Probe], name: str) -> tuple[Probe, GradientVerdict]:
    """The probe and verdict with the largest e for tensor name, at the large rate."""
    probe = max(probes, key=lambda p: _severity(p.large[name]))
    return probe, probe.large[name]


def _inconclusive(probes: list[Probe]) -> bool:
    return any(_worst(probes, n)[1].verdict == "inconclusive" for n in TENSOR_NAMES)


def _judged(probes: list[Probe], name: str, settings: BackpropSettings) -> tuple[Probe, GradientVerdict]:
    """The tensor's verdict over all probes: the worst at the large rate, unless the small rate is wrong."""
    probe, verdict = _worst(probes, name)
    small = max(probes, key=lambda p: _severity(p.small[name]))
    v_small = small.small[name]
    if verdict.ok and (v_small.rel_error is None or v_small.rel_error > settings.wrong_threshold):
        note = (f"At learning rate {settings.small_learning_rate:g} the implied gradient is off by "
                f"e = {_severity(v_small):.2g}, though it matches at {settings.large_learning_rate:g}.")
        return small, replace(v_small, ok=False, verdict="wrong", diagnosis=note)
    return probe, verdict


def _diagnosis(probe: Probe, name: str, settings: BackpropSettings) -> Diagnosis | None:
    if probe.at_large is None or probe.at_small is None:
        return None
    rates = RateProbe(settings.large_learning_rate, settings.small_learning_rate, probe.at_small)
    return diagnose(name, probe.at_large, probe.params, probe.x, probe.label, rates=rates,
                    policy=settings.policy)


def _first_wrong(probes: list[Probe], name: str) -> FirstWrong | None:
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


def _decay_at(probe: Probe, grads: Params | None, name: str, lr: float,
              settings: BackpropSettings) -> WeightDecay | None:
    if grads is None:
        return None
    f = tensor(probe.expected, name)
    return weight_decay(_canonical(tensor(grads, name), f), f, tensor(probe.params, name), lr, settings.policy)


def _weight_decays(probes: list[Probe], settings: BackpropSettings) -> dict[str, float]:
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


def _explained_by(probes: list[Probe], name: str, decay: float) -> bool:
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


def _without_decay(probe: Probe, decays: dict[str, float], settings: BackpropSettings) -> Probe:
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


def _tensor_result(probes: list[Probe], name: str, settings: BackpropSettings,
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


def _rate_disagreement(probes: list[Probe], small_rate: float) -> tuple[float, str, int] | None:
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


def _rate_result(probes: list[Probe], settings: BackpropSettings) -> CheckResult:
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


def _note_result(probes: list[Probe], check_id: str, points: float, passed: str) -> CheckResult:
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
                   settings: BackpropSettings = DEFAULT_SETTINGS) -> tuple[list[CheckResult],
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
    probes: list[Probe] = []
    try:
        for index, (x, label) in enumerate(samples[: settings.max_samples]):
            if index >= settings.samples and not _inconclusive(probes):
                break
            x = np.asarray(x, dtype=np.float64).ravel()
            probes.append(probe_digit(student, index, x, int(label), settings))
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
