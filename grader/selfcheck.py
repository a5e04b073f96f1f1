"""The in-notebook self-check: `from grader import check; check()` or `check("Q3")` in a student's cell.

It grades the functions defined in the running kernel (the caller's globals, or `namespace=`) with the
shipped rubric's visible checks, through the same adapter and checks as `grade`, and shows the result: rich
HTML under IPython with a display, plain text elsewhere. The student's code runs in-process (grader/
kernel_box.py); everything it could disturb (globals, arrays, lists, random states) is restored afterwards.

Q1 judges the weights and biases the kernel holds *now*. Trained parameters carry a signature: SGD from zero
biases changes b3 by -lr * (softmax - one_hot) per step, which sums to 0, so trained biases have b3 != 0 with
sum(b3) == 0 (a random bias initialisation essentially never does). Then Q1 is reported as not checked, with
how to check it; otherwise, if some bias is non-zero, a Q1 failure carries a note that training since the
initialisation would show (all-zero biases cannot have been trained: every SGD step moves b3).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

import jinja2
import numpy as np

from grader.adapt.build import build_student
from grader.adapt.student import HANDOUT_FUNCTIONS
from grader.grading import GradingData, prepare_data, run_checks
from grader.kernel_box import KernelBox, caller_namespace
from grader.kernel_state import preserved_state
from grader.questions import QUESTIONS
from grader.questions.helpers import NAMES as HELPER_NAMES
from grader.report.common import check_state
from grader.results import CheckResult, QuestionResult, RunError
from grader.rubric import Rubric, load_rubric
from grader.scoring import score_question
from grader.student import Params, Student, StudentCodeError
from reference.mnist import Mnist, load_mnist

# The handout functions each question calls; the others are hidden from the checks of a one-question run.
NEEDS = {q.id: q.functions for q in QUESTIONS}
MARKS = {"passed": "ok", "partial": "PARTIAL", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}
TRAINED_NOTE = (
    "Not checked: the weights and biases in this kernel have been trained (b3 is non-zero but sums to 0, "
    "which is what SGD steps from zero biases leave), so they are not your initialisation. Re-run your Q1 "
    "cell, then check('Q1') before training.")
MAYBE_TRAINED_NOTE = (
    "Q1 judges the weights and biases this kernel holds now: if you trained the network since initialising "
    "it, re-run your Q1 cell and check again.")
DISCLAIMER = ("Visible checks only, on your kernel's current functions and weights: your grade may include "
              "hidden checks and is computed on your submitted file.")

_DATA_CACHE: list[tuple[Any, GradingData]] = []  # [(key, data)]: MNIST is cut and prepared once per kernel
_DEFAULT_MNIST = object()  # cache key of the default loader's MNIST


@dataclass(frozen=True, repr=False)
class SelfCheckReport:
    """What check() found: visible checks per question, scored; notes; how to show it (text or HTML)."""

    questions: tuple[QuestionResult, ...]
    question: str | None = None  # the one question asked for, or None for all
    notes: Mapping[str, str] = field(default_factory=dict)  # question id -> a note shown under it
    adaptations: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    data_source: str = ""
    duration_s: float = 0.0

    unchecked: tuple[str, ...] = ()  # questions that could not be judged here (Q1 on trained parameters)

    @property
    def score(self) -> float:
        return round(sum(q.score for q in self.questions), 6)

    @property
    def max_score(self) -> float:
        """The points of the questions that were checked (an unchecked question counts neither way)."""
        return round(sum(q.max_score for q in self.questions if q.id not in self.unchecked), 6)

    def failures(self) -> list[CheckResult]:
        """The checks that did not pass (failed, error or skipped)."""
        return [c for q in self.questions for c in q.checks if c.status != "passed"]

    def check(self, check_id: str) -> CheckResult:
        """One check by id, e.g. "Q3.W1"; KeyError if it was not run."""
        for q in self.questions:
            for c in q.checks:
                if c.id == check_id:
                    return c
        raise KeyError(check_id)

    def to_text(self) -> str:
        """The report as plain text: totals, each question's checks, failures with what is wrong."""
        return render_text(self)

    def _repr_html_(self) -> str:
        return render_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _ipython_display_(self) -> None:
        _show(self)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        scope = self.question or "all questions"
        unchecked = f", {', '.join(self.unchecked)} not checked" if self.unchecked else ""
        return (f"<SelfCheckReport {scope}: {_points(self.score)} / {_points(self.max_score)} "
                f"(visible checks{unchecked})>")


# ------------------------------------------------------------------------------------------ check()


def check(question: str | int | None = None, *, namespace: MutableMapping[str, Any] | None = None,
          mnist: Mnist | None = None, show: bool = True) -> SelfCheckReport:
    """Grade the kernel's functions (visible checks; one question if given: "Q1".."Q4" or "helpers"), show
    the report (HTML in Jupyter, text elsewhere) and return it. The namespace is left exactly as it was."""
    started = time.monotonic()
    qid = question_id(question)
    ns = caller_namespace() if namespace is None else namespace
    rubric = load_rubric()
    data = grading_data(rubric, mnist)
    with preserved_state(ns):
        box = KernelBox(ns, rubric.limits)
        student = build_student(box, box.run_cells())
        checks, _, _, _ = run_checks(_OneQuestion(student, qid) if qid else student, rubric, data)
        adaptations, problems = tuple(student.adaptations), tuple(student.problems)
        initial = student.initial_params
    ids = [qid] if qid else [q.id for q in QUESTIONS if q.id in rubric.questions]
    questions = [_visible(score_question(q, checks.get(q, []), rubric)) for q in ids]
    questions, notes = _judge_q1_context(questions, initial)
    unchecked = tuple(q.id for q in questions if q.id == "Q1" and notes.get("Q1") == TRAINED_NOTE)
    report = SelfCheckReport(tuple(questions), qid, notes, adaptations, problems, data.source,
                             round(time.monotonic() - started, 3), unchecked)
    if show:
        _show(report, echo_guard=True)
    return report


def question_id(question: str | int | None) -> str | None:
    """"Q3", "q3", "3" or 3 -> "Q3"; "helpers"; None -> None; ValueError naming the choices otherwise."""
    if question is None:
        return None
    text = str(question).strip()
    qid = "helpers" if text.lower() == "helpers" else f"Q{text[1:] if text[:1] in 'qQ' else text}"
    if qid not in NEEDS:
        raise ValueError(f"unknown question {question!r}: choose one of {', '.join(NEEDS)} (or none for all)")
    return qid


def grading_data(rubric: Rubric, mnist: Mnist | None) -> GradingData:
    """The rubric's cut of MNIST (the default loader's, or `mnist`), prepared once per kernel."""
    key = (rubric.sha256, mnist if mnist is not None else _DEFAULT_MNIST)
    for cached_key, data in _DATA_CACHE:
        if cached_key[0] == key[0] and cached_key[1] is key[1]:
            return data
    data = prepare_data(rubric, mnist if mnist is not None else load_mnist())
    _DATA_CACHE[:] = [*_DATA_CACHE[-1:], (key, data)]
    return data


class _OneQuestion:
    """A Student whose handout functions and helpers outside one question read as undefined, so that the
    other questions' checks stop at once (their results are dropped)."""

    def __init__(self, student: Student, qid: str):
        self._student, self._qid = student, qid

    def has(self, function: str) -> bool:
        if function in HANDOUT_FUNCTIONS and function not in NEEDS[self._qid]:
            return False
        if function in HELPER_NAMES and self._qid != "helpers":
            return False
        return self._student.has(function)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._student, name)

    def _refuse(self, function: str) -> StudentCodeError:
        return StudentCodeError(RunError("not_gradable", f"call {function}", f"not part of {self._qid}"))

    def call_helper(self, name: str, *args: Any) -> Any:
        if not self.has(name):
            raise self._refuse(name)
        return self._student.call_helper(name, *args)


def _visible(question: QuestionResult) -> QuestionResult:
    """Visible checks only, plus any grader failure (the student must know a question was not checked)."""
    kept = tuple(c for c in question.checks if c.visibility == "visible" or c.id.endswith(".grader"))
    return replace(question, checks=kept)


def looks_trained(params: Params | None) -> bool:
    """True when b3 is non-zero yet sums to 0: what SGD steps from zero biases leave, an init never does."""
    if params is None or len(params[1]) == 0:
        return False
    b3 = np.asarray(params[1][-1], dtype=np.float64).ravel()
    if b3.size < 2 or not np.isfinite(b3).all() or not np.any(b3 != 0):
        return False
    return abs(float(b3.sum())) <= 1e-9 * float(np.abs(b3).sum())


def _nonzero_biases(params: Params | None) -> bool:
    """Some bias is non-zero (SGD always moves b3, so all-zero biases have not been trained)."""
    return params is not None and any(np.any(np.asarray(b, dtype=np.float64) != 0) for b in params[1])


def _judge_q1_context(questions: list[QuestionResult], initial: Params | None
                      ) -> tuple[list[QuestionResult], dict[str, str]]:
    """Q1 as not checked when the kernel's parameters are trained; else a note on any Q1 failure."""
    notes: dict[str, str] = {}
    out = []
    for q in questions:
        if q.id == "Q1" and looks_trained(initial):
            q = replace(q, checks=tuple(replace(c, status="skipped", score=0.0, message=TRAINED_NOTE)
                                        for c in q.checks))
            notes["Q1"] = TRAINED_NOTE
        elif q.id == "Q1" and any(c.status != "passed" for c in q.checks) and _nonzero_biases(initial):
            notes["Q1"] = MAYBE_TRAINED_NOTE
        out.append(q)
    return out, notes


# ---------------------------------------------------------------------------------------- rendering


def _points(x: float) -> str:
    return f"{x:.4g}"


def _state(check: CheckResult) -> str:
    """'partial' for a failed check that earned some of its points, else its status (as the reports say it)."""
    return check_state(check.to_dict())


def _traceback_tail(text: str | None, lines: int = 12) -> str | None:
    if not text:
        return None
    kept = text.rstrip().splitlines()
    return "\n".join((["..."] if len(kept) > lines else []) + kept[-lines:])


def _question_lines(q: QuestionResult, note: str | None, checked: bool) -> list[str]:
    """A question's score, its note, each check; a failure's message once (repeats say so), traceback tail."""
    score = f"{_points(q.score)} / {_points(q.max_score)}"
    score = score if checked else f"not checked ({_points(q.max_score)} points)"
    lines = [f"\n{q.title}: {score}"] + ([f"  Note: {note}"] if note else [])
    previous = note
    for c in q.checks:
        lines.append(f"  [{MARKS.get(_state(c), c.status)}] {c.title} ({_points(c.score)}/{_points(c.max_score)})")
        if c.status == "passed":
            continue
        if c.message == previous:
            lines += [] if c.message == note else ["        (the same reason as above)"]
            continue
        previous = c.message
        lines.append(f"        {c.message}")
        tail = _traceback_tail(c.traceback)
        lines += ["        " + t for t in tail.splitlines()] if tail else []
    return lines


def render_text(report: SelfCheckReport) -> str:
    """Plain text: the total, each question's checks (failures with what is wrong), problems, adaptations."""
    scope = f"{report.question}" if report.question else "all questions"
    unchecked = f" ({', '.join(report.unchecked)} not checked)" if report.unchecked else ""
    lines = [f"Self-check ({scope}): {_points(report.score)} / {_points(report.max_score)}{unchecked}"]
    for q in report.questions:
        lines += _question_lines(q, report.notes.get(q.id), q.id not in report.unchecked)
    if report.problems:
        lines.append("\nThe grader could not call some of your functions:")
        lines += [f"  - {p}" for p in report.problems]
    if report.adaptations:
        lines.append("\nThe grader adapted to your code:")
        lines += [f"  - {a}" for a in report.adaptations]
    lines.append(f"\n{DISCLAIMER}")
    return "\n".join(lines)


_CSS = """
.gsc { font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; color: #1f2328;
       --ok: #1e7b34; --bad: #b42318; --warn: #a15c07; --muted: #5f6b76; --line: #d8dee4; --bg: #f6f8fa;
       border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; max-width: 980px; }
.gsc .total { font-size: 1.3em; font-weight: 700; }
.gsc .muted { color: var(--muted); font-size: 0.88em; }
.gsc .q { margin: 10px 0 4px; display: flex; gap: 10px; align-items: baseline; font-weight: 600; }
.gsc .bar { display: inline-block; width: 120px; height: 9px; background: var(--bg); border: 1px solid var(--line);
            border-radius: 3px; overflow: hidden; vertical-align: middle; }
.gsc .bar span { display: block; height: 100%; background: var(--ok); }
.gsc .bar span.low { background: var(--bad); }
.gsc .check { border: 1px solid var(--line); border-left: 5px solid var(--muted); border-radius: 5px;
              padding: 5px 10px; margin: 4px 0 4px 8px; }
.gsc .check.passed { border-left-color: var(--ok); } .gsc .check.failed { border-left-color: var(--bad); }
.gsc .check.error { border-left-color: var(--warn); }
.gsc .check.partial { border-left-color: #d4a72c; } .gsc .badge.partial { background: #d4a72c; color: #1f2328; }
.gsc .badge { display: inline-block; font-size: 0.75em; font-weight: 700; text-transform: uppercase; color: #fff;
              padding: 0 6px; border-radius: 8px; background: var(--muted); margin-right: 6px; }
.gsc .badge.passed { background: var(--ok); } .gsc .badge.failed { background: var(--bad); }
.gsc .badge.error { background: var(--warn); }
.gsc .pts { float: right; font-weight: 700; }
.gsc .msg { margin: 3px 0 0; white-space: pre-wrap; }
.gsc .note { border-left: 4px solid var(--muted); background: var(--bg); padding: 4px 10px; margin: 4px 0 4px 8px; }
.gsc pre { background: #1f2328; color: #f6f8fa; padding: 6px 8px; border-radius: 5px; font-size: 0.82em;
           white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
.gsc details.passed-list { margin: 2px 0 2px 8px; } .gsc details summary { cursor: pointer; color: var(--muted); }
.gsc ul { margin: 4px 0; padding-left: 22px; }
"""

_TEMPLATE = """<div class="gsc"><style>{{ css }}</style>
<div><span class="total">Self-check{% if r.question %} {{ r.question }}{% endif %}:
 {{ points(r.score) }} / {{ points(r.max_score) }}
 {%- if r.unchecked %} ({{ r.unchecked|join(', ') }} not checked){% endif %}</span>
 <span class="muted">&nbsp;{{ r.duration_s|round(1) }} s, MNIST from {{ r.data_source }}</span></div>
{% for q in r.questions %}
<div class="q"><span>{{ q.title }}</span>
{% if q.id in r.unchecked %}<span class="muted">not checked ({{ points(q.max_score) }} points)</span>
{% else %}<span>{{ points(q.score) }} / {{ points(q.max_score) }}</span>{% endif %}
{% if q.max_score > 0 and q.id not in r.unchecked %}
<span class="bar"><span class="{{ 'low' if q.score < q.max_score else '' }}"
 style="width: {{ (100 * q.score / q.max_score)|round(0) }}%"></span></span>{% endif %}</div>
{% set note = r.notes.get(q.id) %}
{% if note %}<div class="note">{{ note }}</div>{% endif %}
{% set failing = q.checks|rejectattr('status', 'equalto', 'passed')|list %}
{% for c in failing if not (c.status == 'skipped' and c.message == note) %}
<div class="check {{ state(c) }}"><span class="badge {{ state(c) }}">{{ state(c) }}</span>{{ c.title }}
 <span class="pts">{{ points(c.score) }} / {{ points(c.max_score) }}</span>
 {% if loop.previtem is defined and loop.previtem.message == c.message %}
 <div class="msg muted">The same reason as above.</div>
 {% else %}<div class="msg">{{ c.message }}</div>
 {% if c.traceback %}<details><summary>traceback</summary><pre>{{ tail(c.traceback) }}</pre></details>{% endif %}
 {% endif %}
</div>
{% endfor %}
{% set passed = q.checks|selectattr('status', 'equalto', 'passed')|list %}
{% if passed %}<details class="passed-list"><summary>{{ passed|length }} passed</summary>
{% for c in passed %}<div class="check passed"><span class="badge passed">passed</span>{{ c.title }}
 <span class="pts">{{ points(c.score) }} / {{ points(c.max_score) }}</span><div class="msg">{{ c.message }}</div></div>
{% endfor %}</details>{% endif %}
{% endfor %}
{% if r.problems %}<div class="q">The grader could not call some of your functions</div>
<ul>{% for p in r.problems %}<li>{{ p }}</li>{% endfor %}</ul>{% endif %}
{% if r.adaptations %}<details><summary>The grader adapted to your code ({{ r.adaptations|length }})</summary>
<ul>{% for a in r.adaptations %}<li>{{ a }}</li>{% endfor %}</ul></details>{% endif %}
<div class="muted">{{ disclaimer }}</div></div>"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(report: SelfCheckReport) -> str:
    """A self-contained, escaped HTML fragment (its CSS scoped to .gsc, so the notebook's styles stay)."""
    template = _ENV.from_string(_TEMPLATE)
    return template.render(r=report, css=_CSS, points=_points, tail=_traceback_tail, disclaimer=DISCLAIMER,
                           state=_state)


def _ipython_shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


_SHOWN: dict[int, int] = {}  # id(report) -> execution count when check() showed it


def _show(report: SelfCheckReport, *, echo_guard: bool = False) -> None:
    """HTML (with a text fallback) under IPython, printed text elsewhere. check() shows its report itself;
    when that report is also the cell's value, IPython's echo of it in the same cell is skipped."""
    shell = _ipython_shell()
    if shell is None:
        print(report.to_text())
        return
    count = getattr(shell, "execution_count", None)
    if not echo_guard and _SHOWN.get(id(report)) == count:
        del _SHOWN[id(report)]
        return
    if echo_guard:
        _SHOWN.clear()
        _SHOWN[id(report)] = count
    from IPython.display import display

    display({"text/plain": report.to_text(), "text/html": report._repr_html_()}, raw=True)
