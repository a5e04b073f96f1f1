"""Q1: the initialisation, read right after the statement that completed the network."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.initialisation import InitSettings, check_initialisation
from grader.questions.base import Context, Question
from grader.results import CheckResult
from grader.student import Params, Student


def run(student: Student, ctx: Context) -> list[CheckResult]:
    """Structure, each weight matrix's distribution, zero biases; the weights' histograms as a figure."""
    notes = [a for a in getattr(student, "adaptations", ()) if "transposed" in a]
    ctx.figures.update(init_figures(student.initial_params))
    return check_initialisation(student, ctx.settings["Q1"], notes[0] if notes else None)


def init_figures(params: Params | None) -> dict[str, Any]:
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


QUESTION = Question("Q1", "Q1 Initialisation", 1, InitSettings,
                    ("Q1.structure", "Q1.W1.distribution", "Q1.W2.distribution", "Q1.W3.distribution", "Q1.biases"),
                    (), run, figures=("init",))
