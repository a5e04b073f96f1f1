"""Frozen results: what a check found, what a question scored, what a submission got."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["passed", "failed", "error", "skipped"]
Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]


@dataclass(frozen=True)
class StaffAdjustment:
    """A staff override of one check: the points it now earns, why, who decided, and what the grader gave."""

    points: float
    comment: str
    by: str
    graded_score: float  # the grader's own score for the check, before the override

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: status, points earned out of max, a message a student can act on.

    `details` holds the numbers behind the verdict (JSON-serialisable: floats, lists, dicts);
    `traceback` the student's own traceback where their code raised. A recognised mistake is data:
    `mistake_id` names it the same way for every student who made it (the class index counts by it) and
    `fix` is one sentence saying what to change, without per-student measurements. `staff` is a staff
    override applied at scoring time (the score already includes it).
    """

    id: str
    title: str
    status: Status
    score: float
    max_score: float
    message: str
    visibility: Visibility = "visible"
    details: dict[str, Any] = field(default_factory=dict)
    traceback: str | None = None
    mistake_id: str | None = None
    fix: str | None = None
    staff: StaffAdjustment | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QuestionResult:
    """A question (Q1..Q4, or the informational 'helpers') and its checks."""

    id: str
    title: str
    checks: tuple[CheckResult, ...]

    @property
    def score(self) -> float:
        return round(sum(c.score for c in self.checks), 6)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_score for c in self.checks), 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "score": self.score,
            "max_score": self.max_score,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class FirstWrong:
    """The first wrong quantity of the student's step (grader/pinpoint.py): which one, the student's variable
    holding it, where it is assigned, its quoted source line and e against the reference's value."""

    quantity: str  # z1 .. p, delta3 .. delta1, dW3 .. db1
    variable: str
    function: str
    line: int
    rel_error: float
    source: str = ""  # the line, quoted
    file: str = ""  # "hw.py", or "hw.ipynb cell 4" for a notebook

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GradientVerdict:
    """Q3 verdict for one tensor (W1, b1, ... b3): relative error e = ||g - f|| / max(||g||, ||f||)."""

    tensor: str
    ok: bool
    verdict: Literal["correct", "float32", "inconclusive", "wrong", "missing"]
    rel_error: float | None
    worst_index: list[int] | None = None
    worst_student: float | None = None
    worst_expected: float | None = None
    sign_agreement: float | None = None
    ratio: float | None = None
    diagnosis: str | None = None
    first_wrong: FirstWrong | None = None  # only on a wrong tensor, where the traced step shows where

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        if found["first_wrong"] is None or self.ok:
            del found["first_wrong"]  # absent, not null, where nothing was found; never on a tensor judged right
        return found


@dataclass(frozen=True)
class RunError:
    """Something that went wrong while running the student's code: where and what, in plain words."""

    kind: Literal[
        "exception", "timeout", "memory", "output_limit", "exit", "crash", "not_gradable", "grader", "adaptation"
    ]
    where: str  # e.g. "cell 4 (lines 30-52)", "call train_one_sample"
    message: str
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SubmissionResult:
    """Everything graded for one submission; `to_dict()` is the documented JSON schema."""

    submission: str
    path: str
    questions: tuple[QuestionResult, ...]
    gradients: dict[str, GradientVerdict] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    errors: tuple[RunError, ...] = ()
    problems: tuple[str, ...] = ()  # plain labels a TA can sort by: "syntax error at line 2", "empty file"
    adaptations: tuple[str, ...] = ()
    protections: tuple[str, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)  # raw numbers for plots, never rendered here
    rubric: str = ""
    rubric_sha256: str = ""
    grader_version: str = ""
    graded_at: str = ""
    duration_s: float = 0.0

    @property
    def score(self) -> float:
        return round(sum(q.score for q in self.questions), 6)

    @property
    def max_score(self) -> float:
        return round(sum(q.max_score for q in self.questions), 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "submission": self.submission,
            "path": self.path,
            "score": self.score,
            "max_score": self.max_score,
            "questions": [q.to_dict() for q in self.questions],
            "gradients": {k: v.to_dict() for k, v in self.gradients.items()},
            "training": self.training,
            "errors": [e.to_dict() for e in self.errors],
            "problems": list(self.problems),
            "adaptations": list(self.adaptations),
            "protections": list(self.protections),
            "figures": self.figures,
            "rubric": self.rubric,
            "rubric_sha256": self.rubric_sha256,
            "grader_version": self.grader_version,
            "graded_at": self.graded_at,
            "duration_s": self.duration_s,
        }
