"""The regression corpus: every file under tests/fixtures/ gets the fair grade written in expectations.yaml there.

Each submission is graded once per session (a session-wide cache) and compared with its expectation: a score
range, which gradient tensors are right or wrong, which checks keep or lose points, and words its messages must
(or must never) contain. A rubric fixture is either rejected by `grade` with exit code 2 and words naming the
problem, or accepted and used to grade a submission. An expectation marked `xfail: "issue N: ..."` records an
unfairness of today's grader: the case is a strict xfail, so it fails loudly once the grader is fixed.
Grading all ~100 files takes about 11 minutes on the 2-core machine, so a plain `pytest` grades only wild2/ (the
classes of issue 10, about 2 minutes) and the rejected rubrics; the rest (attacks/, bends/, students/, wild/,
several of which other modules also grade) is marked slow: `pytest -m slow` (and CI) grades it, and
`pytest tests/test_fixture_corpus.py -m "slow or not slow"` grades everything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader import cli
from grader.grading import grade_submission
from grader.results import SubmissionResult
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
EXPECTATIONS_FILE = FIXTURES / "expectations.yaml"
NOT_FIXTURES = {"README.md", "EXPECTED.md", "EXPECTED.json", "expectations.yaml", "results_digest.json"}
DEFAULT_RUN = "wild2/"  # graded by a plain `pytest`; the other folders only with -m slow
TENSORS = ("W1", "b1", "W2", "b2", "W3", "b3")
KEYS = {"why", "score", "max_score", "right", "wrong", "full", "lost", "says", "never_says", "gradable",
        "xfail", "rubric", "grade", "visible_only", "limits"}

EXPECTATIONS: dict[str, dict[str, Any]] = yaml.safe_load(EXPECTATIONS_FILE.read_text(encoding="utf-8"))
# The grades as they are, recorded: a change that moves any of them (a refactor, a speed-up) shows here, and one
# that means to is recorded again with `UPDATE_RESULTS_DIGEST=1 pytest tests/test_fixture_corpus.py -m "slow or
# not slow" -k recorded` (then the diff of this file is part of the change).
DIGEST_FILE = FIXTURES / "results_digest.json"
UPDATE_DIGEST = os.environ.get("UPDATE_RESULTS_DIGEST") == "1"


def fixture_files() -> list[str]:
    """Every fixture under tests/fixtures/, as a path relative to it (hidden files included)."""
    return sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*")
                  if p.is_file() and p.name not in NOT_FIXTURES and "__pycache__" not in p.parts)


def cases(rubrics: bool) -> list[Any]:
    """The expectations of submissions (or of rubrics) as pytest params; `xfail` ones strictly expected to fail."""
    params = []
    for name, expected in EXPECTATIONS.items():
        if ("rubric" in expected) != rubrics:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=expected["xfail"])] if "xfail" in expected else []
        if not name.startswith(DEFAULT_RUN) and expected.get("rubric") != "rejected":
            marks.append(pytest.mark.slow)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(scope="session")
def graded(rubric, data, grade_once):
    """grade(name, rubric_file=None, visible_only=False) -> SubmissionResult, each graded once per session
    (with the shipped rubric through conftest's grade_once, which other test modules share).

    A fixture whose expectation has `limits` (e.g. the slow attacks) is graded with those sandbox limits in
    place of the rubric's: what it tests is that the limits hold, and the shipped ones would take minutes."""
    results: dict[tuple[str, str | None, bool], SubmissionResult] = {}

    def grade(name: str, rubric_file: str | None = None, visible_only: bool = False) -> SubmissionResult:
        limits = EXPECTATIONS.get(name, {}).get("limits")
        if rubric_file is None and not limits and not visible_only:
            return grade_once(FIXTURES / name)
        key = (name, rubric_file, visible_only)
        if key not in results:
            chosen = rubric if rubric_file is None else load_rubric(FIXTURES / rubric_file)
            if limits:
                chosen = replace(chosen, limits=replace(chosen.limits, **limits))
            results[key] = grade_submission(FIXTURES / name, chosen, data, visible_only=visible_only)
        return results[key]

    return grade


# ----------------------------------------------------------------------------------------- comparisons

def checks_of(result: SubmissionResult) -> dict[str, Any]:
    return {c.id: c for q in result.questions for c in q.checks}


def texts_of(result: SubmissionResult) -> dict[str, str]:
    """Where words may be looked for: each check's message, each tensor's diagnosis, errors, adaptations."""
    texts = {c.id: c.message for c in checks_of(result).values()}
    texts.update({t: f"{v.verdict} {v.diagnosis or ''}" for t, v in result.gradients.items()})
    texts["errors"] = "\n".join(f"{e.kind} {e.where}: {e.message}" for e in result.errors)
    texts["adaptations"] = "\n".join(result.adaptations)
    texts["any"] = "\n".join(texts.values())
    return texts


def digest(result: SubmissionResult) -> dict[str, Any]:
    """What must not move unless a change means it to: the score, each check's status and score, each verdict."""
    return {"score": round(result.score, 4),
            "checks": {c.id: [c.status, round(c.score, 4)] for c in checks_of(result).values()},
            "gradients": {t: v.verdict for t, v in sorted(result.gradients.items())}}


# Q4.training trains the student's code 9,000 steps: per-sample SGD is chaotic, and another CPU's BLAS kernels
# (summing in another order) can move its accuracy, and so its partial credit, by a few points.
CHAOTIC = {"Q4.training": 5.0}  # check id -> how many points it may move


def digest_differences(recorded: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Each difference between a recorded digest and a new one, in words (CHAOTIC checks within their margin)."""
    found = []
    moved = 0.0
    for part in ("checks", "gradients"):
        for key in sorted(set(recorded[part]) | set(got[part])):
            before, after = recorded[part].get(key, "absent"), got[part].get(key, "absent")
            if key in CHAOTIC and "absent" not in (before, after):
                moved += after[1] - before[1]
                if abs(after[1] - before[1]) <= CHAOTIC[key]:
                    continue
            if before != after:
                found.append(f"{key}: {before} -> {after}")
    if abs(got["score"] - recorded["score"] - moved) > 1e-3:
        found.append(f"score {recorded['score']} -> {got['score']}")
    return found


def contains(text: str, word: str) -> bool:
    """Case-insensitive; 'a|b' is met by either alternative."""
    return any(alternative.lower() in text.lower() for alternative in word.split("|"))


def tensors(listed: str | list[str]) -> list[str]:
    return list(TENSORS) if listed == "all" else list(listed)


def unmet(expected: dict[str, Any], result: SubmissionResult) -> Iterator[str]:
    """Each part of the expectation that the result does not meet, in words."""
    if "score" in expected:
        low, high = expected["score"]
        if not low <= result.score <= high:
            yield f"score {result.score} is outside [{low}, {high}]"
    if "max_score" in expected and result.max_score != expected["max_score"]:
        yield f"max_score {result.max_score}, expected {expected['max_score']}"
    for ok, key in ((True, "right"), (False, "wrong")):
        for tensor in tensors(expected.get(key, [])):
            verdict = result.gradients.get(tensor)
            if verdict is None or verdict.ok != ok:
                got = "missing" if verdict is None else f"{verdict.verdict}: {verdict.diagnosis}"
                yield f"{tensor} should be {key}, got {got}"
    checks = checks_of(result)
    for key, keeps in (("full", True), ("lost", False)):
        for check_id in expected.get(key, []):
            check = checks.get(check_id)
            if check is None:
                yield f"{check_id} missing"
            elif (check.score >= check.max_score) != keeps:
                yield f"{check_id} should {'get full marks' if keeps else 'lose points'}: " \
                      f"{check.score}/{check.max_score} {check.message[:300]}"
    texts = texts_of(result)
    for where, words in expected.get("says", {}).items():
        for word in words:
            if not contains(texts.get(where, ""), word):
                yield f"{where} should say {word!r}: {texts.get(where, '(nothing)')[:400]}"
    for word in expected.get("never_says", []):
        if contains(texts["any"], word):
            yield f"nothing should say {word!r}"
    if "gradable" in expected and (not any(e.kind == "not_gradable" for e in result.errors)) != expected["gradable"]:
        yield f"gradable should be {expected['gradable']}: {texts['errors'][:300]}"


# ----------------------------------------------------------------------------------------------- tests

def test_every_fixture_has_an_expectation_and_every_expectation_a_fixture():
    files = set(fixture_files())
    assert sorted(files - set(EXPECTATIONS)) == [], "fixtures without an expectation"
    assert sorted(set(EXPECTATIONS) - files) == [], "expectations of missing fixtures"


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_expectations_are_well_formed(name):
    expected = EXPECTATIONS[name]
    assert set(expected) <= KEYS, f"unknown keys {set(expected) - KEYS}"
    assert expected.get("why"), "say what the fixture is"
    assert "xfail" not in expected or expected["xfail"].startswith("issue "), "xfail names its issue"
    if "rubric" in expected:
        assert expected["rubric"] in ("rejected", "accepted")
        assert expected["rubric"] == "rejected" or expected.get("grade") in EXPECTATIONS
    else:
        assert "score" in expected or expected.get("gradable") is False, "every submission has a score range"
    for tensor in tensors(expected.get("right", [])) + tensors(expected.get("wrong", [])):
        assert tensor in TENSORS


@pytest.mark.parametrize("name", cases(rubrics=False))
def test_submission_gets_its_fair_grade(name, graded):
    problems = list(unmet(EXPECTATIONS[name], graded(name)))
    assert problems == [], "\n".join(problems)


def digest_cases() -> list[Any]:
    """Every submission fixture, without xfail marks (a recorded grade holds for unfair ones too)."""
    return [pytest.param(name, marks=[] if name.startswith(DEFAULT_RUN) else [pytest.mark.slow], id=name)
            for name, expected in EXPECTATIONS.items() if "rubric" not in expected]


@pytest.fixture(scope="module")
def recorded_digests():
    """The recorded digests; with UPDATE_RESULTS_DIGEST=1, the ones this run made are merged in and saved."""
    recorded = json.loads(DIGEST_FILE.read_text(encoding="utf-8")) if DIGEST_FILE.exists() else {}
    made: dict[str, Any] = {}
    yield recorded, made
    if UPDATE_DIGEST and made:
        merged = {**recorded, **made}
        DIGEST_FILE.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n", encoding="utf-8")


@pytest.mark.parametrize("name", digest_cases())
def test_submission_grades_as_recorded(name, graded, recorded_digests):
    recorded, made = recorded_digests
    got = digest(graded(name))
    if UPDATE_DIGEST:
        made[name] = got
        return
    assert name in recorded, f"no recorded grade for {name}: record it (see DIGEST_FILE's comment)"
    differences = digest_differences(recorded[name], got)
    assert differences == [], "the grade moved:\n" + "\n".join(differences)


@pytest.mark.parametrize("name", cases(rubrics=True))
def test_rubric_is_rejected_clearly_or_grades(name, graded, tmp_path, capsys):
    expected = EXPECTATIONS[name]
    if expected["rubric"] == "rejected":
        code = cli.main(["--rubric", str(FIXTURES / name), "--out", str(tmp_path), "--quiet",
                         str(FIXTURES / "attacks" / "good.py")])
        error = capsys.readouterr().err
        assert code == cli.EXIT_USAGE, error
        missing = [w for w in expected.get("says", {}).get("errors", []) if not contains(error, w)]
        assert missing == [], error
        assert list(tmp_path.iterdir()) == [], "a rejected rubric grades nothing"
    else:
        result = graded(expected["grade"], name, expected.get("visible_only", False))
        problems = list(unmet(expected, result))
        assert problems == [], "\n".join(problems)
