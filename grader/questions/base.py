"""What a question is (`Question`) and what it sees while it runs (`Context`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grader.checks.own_loop import OwnLoopRun, run_own_loop
from grader.checks.short_training import check_short_training
from grader.checks.training import check_training_loop
from grader.checks.watched_step import watch_index
from grader.data import GradingData
from grader.results import CheckResult, GradientVerdict
from grader.student import EpochRun, Params, Student, StudentCodeError, WatchedStep
from reference import network


@dataclass(frozen=True)
class Question:
    """One question of the homework: its checks, the settings its rubric section fills, the handout functions it
    grades (a one-question self-check hides the others from it), the figures it draws, and how it runs."""

    id: str
    title: str
    order: int  # place in reports: helpers 0, Q1 1, ...
    settings: type  # the dataclass its rubric `settings` fill
    checks: tuple[str, ...]
    functions: tuple[str, ...]
    run: Callable[[Student, Context], list[CheckResult]]
    figures: tuple[str, ...] = ()  # keys of Context.figures it fills, shown under it


@dataclass
class Context:
    """One submission's grading: the data, every question's settings, what questions hand on to later ones
    (Q3's verdicts for Q4's caveat), the figures, and runs of the student's loop that several questions read."""

    data: GradingData
    settings: dict[str, Any]
    variant: int = 0  # from the submission's bytes: which 200 test images Q2's dataset check uses
    gradients: dict[str, GradientVerdict] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def init(self) -> Params:
        """The handout's initialisation (default_rng(80085)), canonical."""
        return network.init_params()

    def loop_run(self, student: Student) -> EpochRun | StudentCodeError:
        """The student's train_one_epoch over the first Q4 `loop_samples` images from the handout's
        initialisation, its train_one_sample calls recorded (the steps still run); once per submission."""
        if "loop" not in self._cache:
            q4 = self.settings["Q4"]
            images, labels = self.data.train_images[:q4.loop_samples], self.data.train_labels[:q4.loop_samples]
            try:
                self._cache["loop"] = student.train_one_epoch(self.init, images, labels, q4.loop_learning_rate, True)
            except StudentCodeError as exc:
                self._cache["loop"] = exc
        return self._cache["loop"]

    def own_loop(self, student: Student) -> OwnLoopRun | None:
        """The student's train_one_epoch over a handout-length x_train, one real step (checks/own_loop.py);
        None when the grader itself failed there (no conclusion is drawn from it then)."""
        if "own" not in self._cache:
            q3, q4 = self.settings["Q3"], self.settings["Q4"]
            try:
                self._cache["own"] = run_own_loop(student, self.data.train_images, self.data.train_labels,
                                                  q4.epoch_length, q4.loop_learning_rate, q3.seed)
            except Exception:  # noqa: BLE001 - the grader's own failure: the checks go on without this evidence
                self._cache["own"] = None
        return self._cache["own"]


    def short_training(self, student: Student) -> CheckResult:
        """Q4.training's result, its first epoch's step at watch_index watched (checks/watched_step.py); once per
        submission (Q3 reads the watched step, Q4 scores the training)."""
        if "training" not in self._cache:
            q4, data, seen = self.settings["Q4"], self.data, []
            self._cache["training"] = check_short_training(
                student, self.init, data.train_images, data.train_labels, data.test_images, data.test_labels, q4,
                watch_step=watch_index(min(q4.train_samples, len(data.train_labels)), self.variant), seen=seen)
            self._cache["watched"] = seen[0] if seen else None
        return self._cache["training"]

    def watched_step(self, student: Student) -> WatchedStep | None:
        """The step of Q4's training run watched by short_training (its network before and after), if it was seen."""
        self.short_training(student)
        return self._cache.get("watched")

    def loop_check(self, student: Student) -> CheckResult:
        """Q4.loop's result from the two loop runs above; once per submission (Q3 reads its trajectory, Q4
        scores it)."""
        if "loop_check" not in self._cache:
            has = student.has("train_one_epoch")
            self._cache["loop_check"] = check_training_loop(
                student, self.init, self.data.train_images, self.data.train_labels, self.settings["Q4"],
                self.own_loop(student) if has else None, self.loop_run(student) if has else None)
        return self._cache["loop_check"]


def guarded(qid: str, thunk: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """The question's checks, or one 'error' result worded as the grader's failure, never a crash."""
    try:
        return thunk()
    except Exception as exc:  # noqa: BLE001 - a grader bug must cost the grader, not the whole report
        import traceback

        return [CheckResult(f"{qid}.grader", f"{qid}: grader failure", "error", 0.0, 0.0,
                            f"The grader failed while checking {qid} (not your code's fault): {exc!r}. "
                            "Please report this to the course staff.", "hidden",
                            details={"traceback": traceback.format_exc()[-4000:]})]
