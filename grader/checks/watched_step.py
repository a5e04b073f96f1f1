"""A step deep in the student's own training run, compared with the reference's step from the same parameters.

The probes, the ordinary step and the own loop's first steps are all calls at the start of something; a
train_one_sample that counts its calls (or reads the loop's index) can take a right step there and a wrong one
for the rest of an epoch, where only the accuracy shows, and a wrong gradient can train as well as a right one
(GUIDE: sigma'(a) reaches 85.6%). So the grader watches one step of Q4's real training run, at a place in the
second half of its first epoch chosen from the submission's bytes: the network just before and just after it,
as the student's own loop took it (the step runs as it is; nothing else of the run changes). One step is an exact
check whatever the parameters are. Raw pixels saturate the first layer during the whole run, so its reference
change is mostly below a float32 student's resolution; a change the student makes there is compared too (a
sigma'(a) step moves W1 where the reference's step hardly does)."""

from __future__ import annotations

import numpy as np

from grader.checks.own_loop import TENSORS, _tensor, _visible, only_rescaled
from grader.diagnosis import step_with_decay
from grader.gradients import relative_error
from grader.student import Params, WatchedStep


def change_errors(start: Params, got: Params, want: Params) -> dict[str, float]:
    """Per tensor, e between the student's change and the reference's change from `start`, on the entries
    either of them changes visibly (checks/own_loop.py's float32 resolution); tensors with fewer than 3 such
    entries are left out (a saturated layer both leave alone)."""
    errors = {}
    for name in TENSORS:
        before, g, w = _tensor(start, name), _tensor(got, name), _tensor(want, name)
        if g.shape != before.shape:
            errors[name] = float("inf")
            continue
        mask = _visible(before, before - w) | _visible(before, before - g)
        if mask.sum() >= 3:
            errors[name] = relative_error((before - g)[mask], (before - w)[mask])
    return errors


def watch_index(n: int, variant: int) -> int:
    """The step to watch in an epoch of n samples: one in its second half, from the submission's bytes."""
    half = n // 2
    return half + variant % max(n - half, 1)


def watched_sample(watched: WatchedStep, images: np.ndarray) -> int | None:
    """The index of the sample (n, 784) the watched step took, by its key ([sum, sum of squares, first non-zero]),
    the watched index first; None if no sample has that key (the loop passed something else)."""
    if watched.key is None:
        return None
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    first = np.where(flat.any(axis=1), np.argmax(flat != 0, axis=1), -1)
    total, squares, nonzero = (float(k) for k in watched.key)
    same = (np.isclose(flat.sum(axis=1), total, rtol=1e-9, atol=0) & np.isclose(np.einsum("ij,ij->i", flat, flat),
            squares, rtol=1e-9, atol=0) & (first == int(nonzero)))
    if 0 <= watched.index < len(same) and same[watched.index]:
        return watched.index
    hits = np.flatnonzero(same)
    return int(hits[0]) if hits.size else None


def watched_step_errors(watched: WatchedStep | None, images: np.ndarray, labels: np.ndarray,
                        learning_rate: float, decay: dict[str, float] | None = None) -> dict[str, float]:
    """e per tensor between the watched step's change and the reference's step from the same parameters on the
    same sample (with the L2 weight decay Q3 found, name -> lambda); {} when it tells nothing: not seen, not one
    of the samples, no change (a loop threading its parameters through return values), or a change that is only
    rescaled (a loop not passing the rate on)."""
    if watched is None:
        return {}
    j = watched_sample(watched, images)
    if j is None:
        return {}
    before, after = watched.before, watched.after
    if all(np.array_equal(a, b) for a, b in zip(before[0] + before[1], after[0] + after[1], strict=True)):
        return {}
    want = step_with_decay(before, np.asarray(images[j], dtype=np.float64).reshape(-1), int(labels[j]),
                           learning_rate, decay)
    if only_rescaled(before, after, want) is not None:
        return {}
    return change_errors(before, after, want)
