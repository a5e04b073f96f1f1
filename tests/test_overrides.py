"""Staff overrides: validated like the rubric, applied at scoring time, shown, counted, kept on re-grade."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader.overrides import Override, OverridesError, load_overrides, overrides_for, overrides_key
from grader.report import grades_csv, render_report, results_json
from grader.rubric import DEFAULT_RUBRIC
from grader.scoring import apply_overrides
from grader.summary import submission_lines

ROOT = Path(__file__).resolve().parents[1]
KV2154 = ROOT / "submissions" / "kv2154.py"
ENTRY = {"submission": "kv2154", "check": "Q4.training", "points": 15,
         "comment": "Trained on the full data in office hours: 71%.", "by": "TA Jane Doe"}


def write(tmp_path: Path, entries, name: str = "overrides.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def kv2154(grade_once):
    return grade_once(KV2154)


def check(result, check_id):
    return next(c for q in result.questions for c in q.checks if c.id == check_id)


# --- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, named", [
    ({"check": "Q4.trainin"}, "unknown check 'Q4.trainin'"),
    ({"submission": "kv2155"}, "unknown submission 'kv2155'"),
    ({"points": 16}, "16 is more than Q4.training's 15 points"),
    ({"points": -1}, "expected a finite number of points >= 0, got -1"),
    ({"points": "all"}, "got 'all'"),
    ({"by": ""}, "entry 1.by: expected non-empty text"),
    ({"grade": 3}, "unknown key(s) 'grade'"),
])
def test_a_bad_entry_is_refused_naming_the_entry_and_what_is_wrong(tmp_path, rubric, change, named):
    path = write(tmp_path, [{**ENTRY, **change}])
    with pytest.raises(OverridesError, match="entry 1") as raised:
        load_overrides(path, rubric, [(KV2154, "kv2154")])
    assert named in str(raised.value) and str(path) in str(raised.value)


def test_missing_keys_duplicates_and_non_lists_are_refused(tmp_path, rubric):
    graded = [(KV2154, "kv2154")]
    with pytest.raises(OverridesError, match="missing key.*'comment'"):
        load_overrides(write(tmp_path, [{k: v for k, v in ENTRY.items() if k != "comment"}]), rubric, graded)
    with pytest.raises(OverridesError, match="entries 1 and 2 both override Q4.training of kv2154.py"):
        load_overrides(write(tmp_path, [ENTRY, {**ENTRY, "submission": "kv2154.py"}]), rubric, graded)
    with pytest.raises(OverridesError, match="expected a list"):
        load_overrides(write(tmp_path, {"kv2154": 3}), rubric, graded)


def test_an_entry_names_a_submission_by_report_name_file_name_or_path(tmp_path, rubric):
    for name in ("kv2154", "kv2154.py", str(KV2154)):
        (entry,) = load_overrides(write(tmp_path, [{**ENTRY, "submission": name}]), rubric, [(KV2154, "kv2154")])
        assert overrides_for([entry], KV2154, "kv2154") == (entry,)
        assert overrides_for([entry], KV2154.with_name("other.py"), "other") == ()
    assert load_overrides(write(tmp_path, {"overrides": [ENTRY]}), rubric, [(KV2154, "kv2154")])[0].points == 15
    assert overrides_key([]) == "" and overrides_key([Override(**ENTRY)]) != overrides_key([Override(**{
        **ENTRY, "points": 14})])


# --- scoring and reports ---------------------------------------------------------------------------------------


def test_an_override_sets_the_checks_score_and_keeps_what_the_grader_gave(kv2154):
    graded = check(kv2154, "Q4.training")
    adjusted = apply_overrides(kv2154, [Override(**ENTRY)])
    c = check(adjusted, "Q4.training")
    assert (c.score, c.max_score, c.status, c.message) == (15, 15, graded.status, graded.message)
    assert (c.staff.points, c.staff.comment, c.staff.by, c.staff.graded_score) == (
        15, ENTRY["comment"], ENTRY["by"], graded.score)
    assert adjusted.score == pytest.approx(kv2154.score + 15 - graded.score)
    assert check(kv2154, "Q4.training").staff is None  # a pure function: the graded result is unchanged
    again = apply_overrides(adjusted, [Override(**{**ENTRY, "points": 10})])
    assert check(again, "Q4.training").staff.graded_score == graded.score  # the grader's, not the last override's


def test_an_override_is_shown_in_every_report_and_counted_in_every_total(kv2154):
    adjusted = apply_overrides(kv2154, [Override(**{**ENTRY, "points": 14})])
    page = render_report(adjusted, staff=False)
    assert "Adjusted by staff (TA Jane Doe):</strong>" in page and "Trained on the full data" in page
    costs = page[page.index('id="costs"'):page.index('<section class="question"')]
    assert '<a href="#check-Q4-Q4.training"><span class="lost">−1</span>' in costs and "adjusted by staff" in costs
    doc = results_json(adjusted)
    test = next(t for t in doc["tests"] if t["extra_data"]["check"] == "Q4.training")
    assert test["score"] == 14 and test["output"].startswith("Adjusted by staff (TA Jane Doe): Trained on")
    assert doc["score"] == pytest.approx(adjusted.score)
    row = next(csv.DictReader(io.StringIO(grades_csv([adjusted]))))
    assert float(row["total"]) == pytest.approx(adjusted.score, abs=0.005) and float(row["Q4"]) == 24
    assert any("adjusted by staff" in line for line in submission_lines(adjusted.to_dict(), detailed=True,
                                                                         self_check=False))


# --- the command line: exit 2 for a bad file, kept on re-grade, part of the cache key ---------------------------


def grade(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grader", *args, "--quiet"], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_grade_applies_overrides_keeps_them_on_regrade_and_regrades_when_they_change(tmp_path):
    out, overrides = tmp_path / "reports", write(tmp_path, [ENTRY])
    first = grade(str(KV2154), "--out", str(out), "--overrides", str(overrides), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    saved = json.loads((out / "kv2154.json").read_text())
    training = next(c for q in saved["questions"] for c in q["checks"] if c["id"] == "Q4.training")
    assert training["score"] == 15 and training["staff"]["by"] == "TA Jane Doe"
    assert json.loads((out / "kv2154.results.json").read_text())["score"] == saved["score"]
    assert "Adjusted by staff" in (out / "kv2154.html").read_text()

    again = grade(str(KV2154), "--out", str(out), "--overrides", str(overrides), "--force", cwd=tmp_path)
    resaved = json.loads((out / "kv2154.json").read_text())
    assert again.returncode == 0 and resaved["score"] == saved["score"]  # re-graded, the override kept
    same = grade(str(KV2154), "--out", str(out), "--overrides", str(overrides), cwd=tmp_path)
    assert "0 graded now, 1 up to date" in same.stdout
    changed = write(tmp_path, [{**ENTRY, "points": 12}])
    after = grade(str(KV2154), "--out", str(out), "--overrides", str(changed), cwd=tmp_path)
    assert "1 graded now, 0 up to date" in after.stdout
    assert json.loads((out / "kv2154.json").read_text())["score"] == pytest.approx(saved["score"] - 3)


def test_grade_refuses_a_bad_overrides_file_with_exit_2_naming_it(tmp_path):
    bad = write(tmp_path, [{**ENTRY, "submission": "nobody"}])
    run = grade(str(KV2154), "--out", str(tmp_path / "r"), "--overrides", str(bad), cwd=tmp_path)
    assert run.returncode == 2 and "unknown submission 'nobody'" in run.stderr
    assert not (tmp_path / "r" / "kv2154.json").exists()


def test_overrides_yaml_beside_a_given_rubric_is_used(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copyfile(DEFAULT_RUBRIC, course / "rubric.yaml")
    write(course, [{**ENTRY, "check": "Q4.trainin"}])
    run = grade(str(KV2154), "--rubric", str(course / "rubric.yaml"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert run.returncode == 2 and "unknown check 'Q4.trainin'" in run.stderr
