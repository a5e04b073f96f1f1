"""rubric.yaml: points, visibility, tolerances, data sizes and limits, validated before anything runs."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grader.sandbox.records import Limits

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.yaml")
# Settings that make no sense at zero: sizes, counts, time and memory limits, learning rates.
POSITIVE_SETTINGS = ("samples", "epochs", "_s", "_mb", "_kb", "nproc", "learning_rate", "toplevel_train",
                     "toplevel_test", "threshold", "tolerance", "alpha")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


class RubricError(ValueError):
    """The rubric is unusable; the message names the file and the offending key."""


@dataclass(frozen=True)
class CheckRule:
    """Points and visibility of one check."""

    points: float
    visibility: str = "visible"


@dataclass(frozen=True)
class QuestionRule:
    """A question's title, its checks' rules and the settings passed to its check functions."""

    id: str
    title: str
    checks: dict[str, CheckRule]
    settings: Any  # the question's settings dataclass (grader/questions/: Question.settings)

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks.values())


@dataclass(frozen=True)
class DataSettings:
    """How much MNIST each part of grading uses (images are taken in order from the loaded set)."""

    toplevel_train: int = 500  # what `tf.keras.datasets.mnist.load_data()` gives the student's top level
    toplevel_test: int = 200
    seed: int = 0  # the grader's own probe points and sample choice


@dataclass(frozen=True)
class Rubric:
    """A validated rubric."""

    name: str
    path: str
    sha256: str
    total: float
    questions: dict[str, QuestionRule]
    data: DataSettings
    limits: Limits  # the sandbox's limits for one submission

    def rule(self, check_id: str) -> CheckRule | None:
        question = self.questions.get(check_id.split(".")[0])
        return None if question is None else question.checks.get(check_id)


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read and validate a rubric.yaml (default: the shipped one); raises RubricError naming the problem."""
    path = Path(path) if path is not None else DEFAULT_RUBRIC
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise RubricError(f"{path}: cannot read the rubric: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RubricError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return _build(raw, str(path), hashlib.sha256(raw_bytes).hexdigest())


def _build(raw: dict[str, Any], where: str, sha: str) -> Rubric:
    from grader.questions import known_checks, settings_classes

    KNOWN_CHECKS, SETTINGS_CLASSES = known_checks(), settings_classes()  # noqa: N806 - read once per rubric

    _only_keys(raw, {"name", "total", "questions", "data", "limits"}, where)
    for key in ("name", "total", "questions"):
        if key not in raw:
            raise RubricError(f"{where}: missing required key '{key}'")
    if not isinstance(raw["questions"], dict):
        raise RubricError(f"{where}: 'questions' must be a mapping of question id to its rules")
    questions = {}
    for qid, q in raw["questions"].items():
        qwhere = f"{where}: questions.{qid}"
        if qid not in KNOWN_CHECKS:
            raise RubricError(f"{qwhere}: unknown question (known: {', '.join(KNOWN_CHECKS)})")
        if not isinstance(q, dict):
            raise RubricError(f"{qwhere}: expected a mapping with 'title' and 'checks'")
        _only_keys(q, {"title", "checks", "settings"}, qwhere)
        checks = {
            cid: _check_rule(cid, rule, f"{qwhere}.checks.{cid}")
            for cid, rule in (q.get("checks") or {}).items()
        }
        for cid in checks:
            if cid not in KNOWN_CHECKS[qid]:
                raise RubricError(
                    f"{qwhere}.checks: unknown check '{cid}' (known: {', '.join(KNOWN_CHECKS[qid])})"
                )
        settings = _settings(q.get("settings") or {}, SETTINGS_CLASSES[qid], f"{qwhere}.settings")
        questions[qid] = QuestionRule(qid, str(q.get("title", qid)), checks, settings)
    total = _number(raw["total"], f"{where}: total")
    summed = sum(q.points for q in questions.values())
    if abs(summed - total) > 1e-9:
        per_q = ", ".join(f"{q.id} {q.points:g}" for q in questions.values())
        raise RubricError(f"{where}: check points add up to {summed:g} ({per_q}), but 'total' says {total:g}")
    return Rubric(
        name=str(raw["name"]),
        path=where,
        sha256=sha,
        total=total,
        questions=questions,
        data=_dataclass_from(DataSettings, raw.get("data") or {}, f"{where}: data"),
        limits=_dataclass_from(Limits, raw.get("limits") or {}, f"{where}: limits"),
    )


def _check_rule(cid: str, rule: Any, where: str) -> CheckRule:
    if isinstance(rule, (int, float)) and not isinstance(rule, bool):
        rule = {"points": rule}
    if not isinstance(rule, dict):
        raise RubricError(f"{where}: expected a number of points or a mapping with 'points' and 'visibility'")
    _only_keys(rule, {"points", "visibility"}, where)
    if "points" not in rule:
        raise RubricError(f"{where}: missing 'points'")
    visibility = rule.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise RubricError(f"{where}.visibility: '{visibility}' is not one of {', '.join(VISIBILITIES)}")
    points = _number(rule["points"], f"{where}.points")
    if points < 0:
        raise RubricError(f"{where}.points: must not be negative, got {points:g}")
    return CheckRule(points, visibility)


def _settings(values: Any, cls: type, where: str) -> Any:
    """The question's settings dataclass; points belong under `checks`, not here."""
    if not isinstance(values, dict):
        raise RubricError(f"{where}: expected a mapping")
    points = sorted(k for k in values if str(k).endswith("_points"))
    if points:
        raise RubricError(f"{where}: {', '.join(points)}: points are set under 'checks', not 'settings'")
    return _dataclass_from(cls, values, where)


def _dataclass_from(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise RubricError(f"{where}: expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _only_keys(values, set(fields), where)
    converted = {name: _typed(fields[name], value, f"{where}.{name}") for name, value in values.items()}
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:
        raise RubricError(f"{where}: {exc}") from None


def _typed(f: dataclasses.Field, value: Any, where: str) -> Any:
    """Check a setting against its default's type; nested settings dataclasses are built recursively."""
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return value
    if dataclasses.is_dataclass(default):
        return _dataclass_from(type(default), value, where)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RubricError(f"{where}: expected true or false, got {value!r}")
    elif isinstance(default, (int, float)):
        number = _number(value, where)
        if number < 0 or (number == 0 and f.name.endswith(POSITIVE_SETTINGS)):
            raise RubricError(f"{where}: must be {'positive' if number == 0 else 'zero or more'}, got {value!r}")
        return int(number) if isinstance(default, int) and number.is_integer() else number
    elif isinstance(default, str) and not isinstance(value, str):
        raise RubricError(f"{where}: expected a string, got {value!r}")
    elif isinstance(default, tuple):
        if not isinstance(value, list):
            raise RubricError(f"{where}: expected a list, got {value!r}")
        return tuple(value)
    return value


def _only_keys(mapping: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise RubricError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(allowed))})"
        )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RubricError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise RubricError(f"{where}: expected a finite number, got {value!r}")
    return float(value)
