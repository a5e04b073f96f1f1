"""Recording a student's step function while their own loop calls it: each call's arguments, or in compact
form only each sample's key, so that the grader can count and check the loop's steps."""

import inspect

from .frozen import np


def sample_key(value):
    """[sum, sum of squares, index of the first non-zero] of a sample, enough to tell the grader's samples
    apart; None if it is not an array of numbers."""
    try:
        flat = np.asarray(value).reshape(-1)
        if flat.dtype.kind not in "biuf" or flat.size > 10_000:
            return None
        nonzero = np.flatnonzero(flat)
        flat = flat.astype(np.float64)
        return [float(flat.sum()), float(flat @ flat), int(nonzero[0]) if nonzero.size else -1]
    except Exception:
        return None


def sample_marks(value):
    """The first three pixels of a sample, where the grader marks a long x_train's samples with their index
    (grader/adapt/marks.py); None if it is not an array of numbers."""
    try:
        flat = np.asarray(value).reshape(-1)
        return flat[:3].tolist() if flat.dtype.kind in "biuf" else None
    except Exception:
        return None


def step_recorder(exchange, name, original, log, compact=False):
    """A stand-in for the student's step that logs each call, then runs the step. `compact`: log the first
    call's sample_key and every later call's sample_marks only, and run the real step only once, returning its
    first result after that, so that a loop over 60,000 samples costs little more than its bookkeeping."""
    try:
        signature = inspect.signature(original)
    except (TypeError, ValueError):
        signature = None
    first = []
    # The sample is the step's first parameter (the handout's `sample`), passed by position or by name.
    sample_name = next(iter(signature.parameters), None) if signature is not None else None

    def record(*args, **kwargs):
        if compact:
            sample = args[0] if args else kwargs.get(sample_name, next(iter(kwargs.values()), None))
            log.append(sample_marks(sample) if first else sample_key(sample))
            if not first:
                try:
                    first.append(original(*args, **kwargs))
                except Exception:
                    first.append(None)
            return first[0]
        try:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
        except (AttributeError, TypeError):
            arguments = {"*args": args, "**kwargs": kwargs}
        encoded = {k: exchange.encode(v, fingerprints=True) for k, v in arguments.items()}
        log.append({"function": name, "arguments": encoded})
        # Then the student's own step, so that a loop using its return value goes on; if it raises, the
        # loop is what is being recorded, not the step: carry on as if it had returned None.
        try:
            return original(*args, **kwargs)
        except Exception:
            return None

    return record


def step_watcher(name, original, call, snapshot, found):
    """A stand-in for the student's step `name` that runs every call as it is and, at its `call`-th call (from 0),
    fills `found` with the sample's key and snapshot() of the network before and after that step: an ordinary
    step deep in a real epoch, which a step that counts its calls or watches the loop's index cannot tell from
    any other."""
    try:
        sample_name = next(iter(inspect.signature(original).parameters), None)
    except (TypeError, ValueError):
        sample_name = None
    count = [0]

    def watch(*args, **kwargs):
        index, count[0] = count[0], count[0] + 1
        if index != call:
            return original(*args, **kwargs)
        sample = args[0] if args else kwargs.get(sample_name, next(iter(kwargs.values()), None))
        found.update(function=name, key=sample_key(sample), before=snapshot())
        try:
            return original(*args, **kwargs)
        finally:
            found["after"] = snapshot()

    return watch
