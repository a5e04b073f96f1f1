"""Q2: the forward pass, feed_forward_sample at probe points and the handout's initialisation, and the figures
feed_forward_dataset prints."""

from __future__ import annotations

from grader.checks.forward import ForwardCase, ForwardSettings, check_feed_forward_sample
from grader.checks.forward_dataset import check_feed_forward_dataset
from grader.checks.signatures import check_signatures
from grader.gradients import probe_point
from grader.questions.base import Context, Question
from grader.results import CheckResult
from grader.student import Student

FUNCTIONS = ("feed_forward_sample", "feed_forward_dataset")


def run(student: Student, ctx: Context) -> list[CheckResult]:
    """Loss and class on 5 digits; the dataset's average loss and accuracy; the signature."""
    data, seed = ctx.data, ctx.settings["Q3"].seed  # the probe points are Q3's: Q2 probes the same network
    cases = [ForwardCase(probe_point(x, seed + i), x, y, f"probe digit {i + 1}")
             for i, (x, y) in enumerate(data.probes[:3])]
    cases += [ForwardCase(ctx.init, x, y, f"handout initialisation, digit {i + 1}")
              for i, (x, y) in enumerate(data.probes[3:5])]
    # Which 200 test images: fixed by the submission's own bytes, so the same file always gets the same
    # figures while figures copied from another run's report do not fit.
    n = min(200, len(data.test_labels))
    start = ctx.variant % (len(data.test_labels) - n + 1)
    return (check_feed_forward_sample(student, cases, ctx.settings["Q2"])
            + check_feed_forward_dataset(student, data.trained, data.test_images[start:start + n],
                                         data.test_labels[start:start + n], ctx.settings["Q2"])
            + [check_signatures("Q2", student, FUNCTIONS)])


QUESTION = Question("Q2", "Q2 Forward pass", 2, ForwardSettings,
                    ("Q2.loss", "Q2.prediction", "Q2.dataset.loss", "Q2.dataset.accuracy", "Q2.signature"),
                    FUNCTIONS, run)
