"""Reports render what the results say: HTML (student and staff), the class index, grades.csv, results.json.

Every result rendered here is really graded (`grade_submission` over the shipped rubric and MNIST sample):
the reference solution, the seed's submission (kv2154), a transposed-weights student, a top-level infinite
loop (graded with a 2 s cell limit), a notebook that is not JSON (named like a spreadsheet formula), and a
script that raises ValueError("<script>...") at top level. The class is these and four more real
submissions: a copy of kv2154 in another folder, a variant with kv2154's mistakes whose numbers differ (its
updates go through float32 and its uniform W3 is wider), a student who scales the inputs by 1/255, and the
reference solution drawing every weight matrix with std 1/max instead of sqrt(1/max).
Hand-made dicts remain only where no graded result can produce the situation (a batch's grader-failure
dict, figure data that is malformed).
"""

from __future__ import annotations

import atexit
import csv
import dataclasses
import functools
import io
import json
import re
import shutil
import tempfile
from pathlib import Path

import graded as shared
import jsonschema
import markupsafe
import pytest
import yaml

from grader.grading import grade_submission
from grader.report import figures as figs
from grader.report import (
    grades_csv,
    render_index,
    render_report,
    report_names,
    results_json,
    write_class_outputs,
    write_outputs,
)
from grader.report import writer as writer_module
from grader.report.class_index import common_mistakes, pass_rates
from grader.report.common import as_dict, check_state, jsonable, mistakes, number
from grader.results import SubmissionResult
from grader.rubric import DEFAULT_RUBRIC, load_rubric
from reference.mnist import sample_path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
STUDENT_SCRIPT = "<script>alert(1)</script>"
DATA_SOURCE = f"bundled sample {sample_path()}"
NAMES = ("solution", "kv2154", "transposed", "timeout", "broken", "script")
PICTURE = '<img src="data:image/svg+xml;base64,'  # every picture is an SVG image (grader/report/figures.py)


# --- real graded results ---------------------------------------------------------------------------------


@functools.cache
def workdir() -> Path:
    """A scratch folder for written submissions and rubrics, removed when the test process ends."""
    path = Path(tempfile.mkdtemp(prefix="test-report-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def write_submissions(where: Path) -> dict[str, Path]:
    """The submissions only tests make: an unreadable notebook and a script raising ValueError("<script>")."""
    broken = where / '=HYPERLINK("x").ipynb'
    broken.write_text("{ not json")
    script = where / "script_raise.py"
    script.write_text(f'x = 1\nraise ValueError("{STUDENT_SCRIPT}")\n')
    return {"broken": broken, "script": script}


def short_cell_rubric(where: Path):
    """The shipped rubric with a 2 s cell limit: an infinite loop then costs 2 s, not 60."""
    raw = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    raw["limits"]["cell_timeout_s"] = 2
    path = where / "rubric-2s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_rubric(path)


def grading_inputs():
    """The shipped rubric and the data cut from the shipped MNIST sample (once per test process)."""
    return shared.inputs()


@functools.cache
def graded_results() -> dict[str, SubmissionResult]:
    """Each of NAMES graded for real, once per test process (test_report_browser.py uses them too)."""
    rubric, data = grading_inputs()
    made = write_submissions(workdir())
    paths = {
        "solution": ROOT / "reference" / "solution.py",
        "kv2154": ROOT / "submissions" / "kv2154.py",
        "transposed": ROOT / "tests" / "fixtures" / "bends" / "transposed.py",
        **made,
    }
    results = {name: shared.graded(path) for name, path in paths.items()}
    loop = ROOT / "tests" / "hostile" / "infinite_loop.py"
    results["timeout"] = grade_submission(loop, short_cell_rubric(workdir()), data)
    return {name: results[name] for name in NAMES}


def kv2154_variant() -> str:
    """kv2154 with the same mistakes but other numbers: float32 updates, W3 uniform on a wider range."""
    source = (ROOT / "submissions" / "kv2154.py").read_text()
    edits = {
        "learning_rate * weight_gradients[i]": "learning_rate * weight_gradients[i].astype(np.float32)",
        "learning_rate * bias_gradients[i]": "learning_rate * bias_gradients[i].astype(np.float32)",
        "Weight3 = np.random.rand(": "Weight3 = 2.5 * np.random.rand(",
    }
    for old, new in edits.items():
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


def std_not_variance() -> str:
    """The reference solution with std 1/max(n_in, n_out) where the handout's variance is meant (all 3 layers)."""
    source = (ROOT / "reference" / "solution.py").read_text()
    old = "np.sqrt(1.0 / max(n_in, n_out))"
    assert source.count(old) == 1
    return source.replace(old, "1.0 / max(n_in, n_out)")


@functools.cache
def class_results() -> dict[str, SubmissionResult]:
    """graded_results() plus a copy of kv2154 in another folder, kv2154_variant(), a student who scales
    the inputs by 1/255 (Q3 graded against their own network) and std_not_variance(), all graded for real."""
    rubric, data = grading_inputs()
    (workdir() / "sec2").mkdir(exist_ok=True)
    copy = workdir() / "sec2" / "kv2154.py"
    shutil.copyfile(ROOT / "submissions" / "kv2154.py", copy)
    variant = workdir() / "kv2154_f32.py"
    variant.write_text(kv2154_variant())
    std = workdir() / "std_init.py"
    std.write_text(std_not_variance())
    # The copy's bytes are kv2154's, so its grade is kv2154's (grading is deterministic: test_grading.py checks
    # it); only its path differs.
    extra = {"kv2154_copy": dataclasses.replace(graded_results()["kv2154"], path=str(copy)),
             "kv2154_f32": grade_submission(variant, rubric, data),
             "scaled": grade_submission(ROOT / "tests" / "fixtures" / "bends" / "scaled_inputs.py", rubric, data),
             "std_init": grade_submission(std, rubric, data)}
    return {**graded_results(), **extra}


@pytest.fixture(scope="module")
def graded() -> dict[str, SubmissionResult]:
    return graded_results()


@pytest.fixture(scope="module")
def klass() -> dict[str, SubmissionResult]:
    return class_results()


@pytest.fixture(scope="module")
def plain(graded) -> dict[str, SubmissionResult]:
    """The same results without figure data: for tests of files and names, where pictures only cost time."""
    return {name: dataclasses.replace(r, figures={}) for name, r in graded.items()}


class Pages(dict):
    """Each result's report, rendered on first use and once per view: (name, staff) -> HTML."""

    def __init__(self, graded: dict[str, SubmissionResult]):
        super().__init__()
        self.graded = graded

    def __missing__(self, key: tuple[str, bool]) -> str:
        name, staff = key
        self[key] = render_report(self.graded[name], staff=staff)
        return self[key]


@pytest.fixture(scope="module")
def pages(graded) -> dict[tuple[str, bool], str]:
    return Pages(graded)


def as_json(result: SubmissionResult) -> dict:
    """What the JSON report says (as a reader of <name>.json gets it)."""
    return json.loads(json.dumps(result.to_dict()))


def escape(text: str) -> str:
    """Text as the autoescaping templates write it."""
    return str(markupsafe.escape(text))


def checks_of(data: dict) -> list[dict]:
    return [c for q in data["questions"] for c in q["checks"]]


def check(result: SubmissionResult, check_id: str):
    return next(c for q in result.questions for c in q.checks if c.id == check_id)


def points_text(x: float) -> str:
    return f"{x:.3g}" if abs(x - round(x)) > 1e-9 else str(int(round(x)))


# --- the results are what the tests below need -------------------------------------------------------------


def test_the_graded_results_cover_the_situations_the_report_must_show(graded):
    assert graded["solution"].score == graded["solution"].max_score == 100
    assert 0 < graded["kv2154"].score < 100
    assert graded["transposed"].adaptations
    assert {e.kind for e in graded["timeout"].errors} >= {"timeout"}
    assert [e.kind for e in graded["broken"].errors] == ["not_gradable"]
    assert any(STUDENT_SCRIPT in (e.traceback or "") for e in graded["script"].errors)
    assert any(c.visibility != "visible" for q in graded["solution"].questions for c in q.checks)


def test_the_readme_states_kv2154s_score_as_grade_computes_it(graded):
    """The README's figure comes from `grade submissions/kv2154.py` on the shipped sample: keep them equal."""
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"The seed submission scores ([\d.]+)/100", readme).group(1)
    assert float(stated) == pytest.approx(graded["kv2154"].score, abs=0.005)
    training = check(graded["kv2154"], "Q4.training")
    assert f"{100 * training.details['gap']:.1f} points below the reference after 3 epochs" in readme
    assert f"({training.score:.2f} of Q4's 15 training points)" in readme


# --- HTML report: it contains what the JSON says ----------------------------------------------------------


# --- HTML report: what cost points comes first ------------------------------------------------------------


def cost_list(page: str) -> list[tuple[str, str, str, str]]:
    """The 'What cost you points' list as (anchor, points lost, titles, sentence)."""
    section = re.search(r'<section id="costs">.*?</section>', page, re.S).group(0)
    return re.findall(r'<li class="\w+"><a href="#([^"]+)"><span class="lost">−([\d.]+)</span>.*?'
                      r'<span class="q">\w+</span> (.*?)</a>.*?<div class="fix">(.*?)</div></li>', section, re.S)


@pytest.mark.parametrize("staff", [False, True])
def test_report_leads_with_every_check_that_cost_points_and_its_fix(graded, pages, staff):
    result, page = graded["kv2154"], pages["kv2154", staff]
    lost = [(q.id, c) for q in result.questions for c in q.checks
            if c.max_score - c.score > 1e-9 and (staff or c.visibility == "visible")]
    listed = cost_list(page)
    assert sum(float(p) for _, p, _, _ in listed) == pytest.approx(sum(c.max_score - c.score for _, c in lost),
                                                                    abs=0.02)
    titles = " | ".join(t for _, _, t, _ in listed)
    for _, c in lost:
        assert escape(c.title) in titles
        sentence = escape(c.fix) if c.fix else None
        entry = next(e for e in listed if escape(c.title) in e[2])
        if sentence:
            assert entry[3] == sentence
        else:  # no recognised mistake: the message's first sentence, cut at a clause when long
            assert escape(c.message).startswith(entry[3].removesuffix(" …"))
    for anchor, _, _, _ in listed:
        assert f'id="{anchor}"' in page  # each entry links to a check's full detail
    assert listed[0][0] == f"check-{lost[0][0]}-{lost[0][1].id}" == "check-Q1-Q1.W3.distribution"
    # the swapped cross-entropy arguments cost both Q2 loss checks: one entry, their points summed
    swapped = [e for e in listed if "feed_forward_sample: loss" in e[2]]
    assert len(swapped) == 1 and "feed_forward_dataset: average loss" in swapped[0][2] and swapped[0][1] == "11"
    assert page.index('id="costs"') < page.index('<section class="question"')
    assert {"Q1.W3.distribution", "Q2.loss", "Q3.W1", "Q3.b1", "Q3.b2", "Q4.training"} <= {c.id for _, c in lost}


def test_a_submission_that_defines_nothing_gets_a_short_list_not_one_line_per_check(graded, pages):
    result, page = graded["script"], pages["script", False]
    lost = [c for q in result.questions for c in q.checks if c.max_score - c.score > 1e-9]
    listed = cost_list(page)
    assert len(lost) >= 15 and len(listed) <= 8
    assert sum(float(p) for _, p, _, _ in listed) == pytest.approx(sum(c.max_score - c.score for c in lost))


def test_json_written_before_findings_and_problems_existed_still_renders(graded):
    data = as_json(graded["timeout"])
    data.pop("problems")
    for q in data["questions"]:
        for c in q["checks"]:
            for key in ("mistake_id", "fix", "staff"):
                c.pop(key)
    page = render_report({**data, "figures": {}}, staff=False)
    assert "What cost you points" in page and "Problems:</strong> time-out at lines 3-4" in page
    assert "time-out at lines 3-4" in grades_csv([data])


def test_passed_checks_are_folded_and_failed_ones_shown_in_full(graded, pages):
    page = pages["kv2154", False]
    helpers = re.search(r'<section class="question" id="helpers">.*?</section>', page, re.S).group(0)
    assert '<details class="passed-list" id="passed-helpers"><summary>5 passed checks' in helpers
    assert helpers.index("<details") < helpers.index('id="check-helpers-helpers.sigmoid"')
    q1 = re.search(r'<section class="question" id="Q1">.*?</section>', page, re.S).group(0)
    assert q1.index('id="check-Q1-Q1.W3.distribution"') < q1.index('<details class="passed-list"')
    assert 'class="costs"' not in pages["solution", False] and "Nothing: every check" in pages["solution", False]


def test_partial_credit_reads_as_partial_in_chips_badges_and_the_list(graded, pages):
    result, page = graded["kv2154"], pages["kv2154", False]
    training = check(result, "Q4.training")
    assert training.status == "failed" and 0 < training.score < training.max_score
    assert '<div class="check partial" id="check-Q4-Q4.training">' in page
    assert '<span class="badge partial">partial</span>training 3 epochs' in page
    assert re.search(r'<li class="partial"><a href="#check-Q4-Q4.training">', page)
    assert '<li class="partial"><a href="#Q1">Q1</a>: 11 / 15</li>' in page
    assert '<li class="zero"' not in page  # every question earned something
    assert '<li class="full"><a href="#Q1">' in pages["solution", False]


def test_q4_partial_credit_says_how_it_was_computed(graded):
    training = check(graded["kv2154"], "Q4.training")
    gap = 100 * training.details["gap"]
    assert "falls linearly to none at 40 points below" in training.message
    assert f"{gap:.1f} points below earns 1 - ({gap:.1f} - 12) / (40 - 12) = " \
           f"{100 * training.score / training.max_score:.0f}% of the points" in training.message


def test_a_visible_only_report_says_how_many_hidden_checks_there_are(graded):
    rubric, _ = grading_inputs()
    from grader.scoring import hidden_checks

    visible = dataclasses.replace(graded["kv2154"], questions=tuple(
        dataclasses.replace(q, checks=tuple(c for c in q.checks if c.visibility == "visible"))
        for q in graded["kv2154"].questions))
    withheld = hidden_checks(rubric)
    assert withheld["count"] == 3
    page = render_report({**visible.to_dict(), "figures": {}, "hidden_checks": withheld}, staff=False)
    assert re.search(r'id="hidden-note">3 hidden checks\s+\(worth no points\)', page)
    assert 'id="hidden-note"' not in render_report(dataclasses.replace(visible, figures={}), staff=False)


@pytest.mark.parametrize("name", NAMES)
def test_staff_report_contains_what_the_json_says(graded, pages, name):
    data, page = as_json(graded[name]), pages[name, True]
    assert f'<div class="total" id="total">{points_text(data["score"])} <span class="of">/ ' \
           f'{points_text(data["max_score"])} points' in page
    for q in data["questions"]:
        assert f'<section class="question" id="{q["id"]}">' in page
        assert f'{points_text(q["score"])} / {points_text(q["max_score"])}</li>' in page
        for c in q["checks"]:
            assert f'<div class="check {check_state(c)}" id="check-{q["id"]}-{c["id"]}">' in page
            assert escape(c["message"]) in page, c["id"]
    for e in data["errors"]:
        assert escape(e["message"]) in page
        if e["traceback"]:
            assert escape(e["traceback"]) in page
    for a in data["adaptations"]:
        assert escape(a) in page
    assert escape(data["rubric_sha256"][:12]) in page and escape(data["grader_version"]) in page


@pytest.mark.parametrize("name", NAMES)
def test_student_report_shows_every_visible_check_and_no_hidden_one(graded, pages, name):
    data, page = as_json(graded[name]), pages[name, False]
    visible = [c for c in checks_of(data) if c["visibility"] == "visible"]
    hidden = [c for c in checks_of(data) if c["visibility"] != "visible"]
    for c in visible:
        assert escape(c["message"]) in page, c["id"]
    for c in hidden:
        assert f'-{c["id"]}"' not in page
    if hidden:
        assert f"{len(hidden)} hidden check" in page
    shown = sum(c["score"] for c in visible)
    shown_max = sum(c["max_score"] for c in visible)
    assert f'{points_text(shown)} <span class="of">/ {points_text(shown_max)} points' in page


def test_hidden_checks_and_protections_are_for_staff_only(graded, pages):
    hidden = [c for c in checks_of(as_json(graded["kv2154"])) if c["visibility"] != "visible"]
    assert hidden
    for c in hidden:
        assert f'id="check-Q3-{c["id"]}"' in pages["kv2154", True]
        assert f'id="check-Q3-{c["id"]}"' not in pages["kv2154", False]
    assert "Protections while running" in pages["kv2154", True]
    assert "Protections while running" not in pages["kv2154", False]


def test_report_renders_the_same_from_the_json_as_from_the_result(graded, pages):
    for name in ("kv2154", "timeout"):
        assert render_report(as_json(graded[name]), staff=True) == pages[name, True]


def test_student_traceback_is_escaped_not_executed(graded, pages):
    page = pages["script", False]
    assert STUDENT_SCRIPT not in page
    assert escape(f'raise ValueError("{STUDENT_SCRIPT}")') in page
    assert '<pre class="traceback">' in page and "script_raise.py&#34;, line 2" in page


def test_seed_report_names_each_mistake_once_per_check_and_tabulates_each_tensor(graded, pages):
    result, page = graded["kv2154"], pages["kv2154", False]
    wrong = sorted(name for name, v in result.gradients.items() if not v.ok)
    assert wrong == ["W1", "b1", "b2"]
    table = re.search(r'<table class="gradients">.*?</table>', page, re.S).group(0)
    for name in wrong:
        diagnosis = result.gradients[name].diagnosis
        assert page.count(escape(diagnosis)) == 1  # in the check's message; not again under it
        fix = check(result, f"Q3.{name}").fix
        assert fix and fix in diagnosis and escape(fix) in table  # the per-tensor table's "likely mistake"
    assert re.findall(r'<tr class="bad"><td>(\w+)</td>', table) == ["W1", "b1", "b2"]
    assert re.findall(r'<tr class="good"><td>(\w+)</td>', table) == ["W2", "W3", "b3"]


def test_q3_checks_show_one_line_of_numbers_instead_of_the_verdict_dict(graded, pages):
    page = pages["kv2154", True]
    assert "verdict.diagnosis" not in page and "verdict.worst_index" not in page
    w1 = check(graded["kv2154"], "Q3.W1").details
    v = w1["verdict"]
    line = re.search(r'id="check-Q3-Q3\.W1".*?<div class="numbers">(.*?)</div>', page, re.S).group(1)
    assert line.startswith(f"e = {number(v['rel_error'])} · ")
    assert f"worst entry ({v['worst_index'][0]}, {v['worst_index'][1]}): yours {number(v['worst_student'])}" in line
    assert f"signs agree {100 * v['sign_agreement']:.1f}%" in line
    assert f"ratio yours/f.d. {number(v['ratio'])}" in line
    for label, e in zip(w1["labels"], w1["rel_error_per_digit"], strict=True):
        assert f"a {label}: {number(e)}" in line
    assert page.count('<div class="numbers">') == 6


def test_lists_of_dicts_render_as_a_nested_table_not_a_repr(graded, pages):
    page = pages["kv2154", False]
    cases = check(graded["kv2154"], "Q2.loss").details["cases"]
    block = re.search(r'id="check-Q2-Q2\.loss".*?</table>', page, re.S).group(0)
    assert "<th>case</th><th>got</th><th>expected</th><th>rel error</th><th>ok</th>" in block
    for case in cases:
        assert f"<tr class=\"bad\"><td>{escape(case['case'])}</td><td>inf</td>" \
               f"<td>{number(case['expected'])}</td><td>—</td><td>no</td></tr>" in block
    assert "{&#39;case&#39;" not in page and "&#39;ok&#39;: " not in page


def test_detail_values_read_as_people_write_them():
    assert number(0.7724905061206894) == "0.7725"
    assert number(2.2597392640839925e-12) == "2.26e-12"
    assert number(1.0000000000004685) == "1"
    assert number(float("inf")) == "inf"
    assert (number(True), number(False), number(None)) == ("yes", "no", "—")
    assert number(list(range(20))).endswith("(20 values)")


def test_header_shows_the_mnist_source_when_the_batch_gives_it(plain, tmp_path):
    paths = write_outputs(plain["kv2154"], tmp_path, extra={"cache_key": "k", "data_source": DATA_SOURCE})
    page = paths["html"].read_text()
    assert f'<dt>MNIST</dt><dd id="data-source">{escape(DATA_SOURCE)}</dd>' in page
    assert json.loads(paths["json"].read_text())["data_source"] == DATA_SOURCE
    assert 'id="data-source"' not in render_report(plain["kv2154"], staff=True)


def test_question_headings_do_not_repeat_the_question_id(graded, pages):
    page = pages["kv2154", True]
    titles = {q.id: q.title for q in graded["kv2154"].questions}
    assert titles["Q1"].startswith("Q1 ") and f"<h2>{escape(titles['Q1'])}" in page
    assert f"<h2>{escape(titles['helpers'])}" in page
    assert "Q1. Q1" not in page and "Q1 Q1" not in page and "helpers Helper" not in page


def test_a_student_graded_on_their_own_scaled_inputs_sees_both_verdicts(klass):
    result = klass["scaled"]
    w1 = check(result, "Q3.W1")
    assert w1.status == "passed" and "graded_against" in w1.details
    page = render_report(result, staff=False)
    assert f'<div class="detail-key">graded_against</div>\n<div class="prose">' \
           f'{escape(w1.details["graded_against"])}</div>' in page
    assert escape(w1.details["against_handout"]) in page
    line = re.search(r'id="check-Q3-Q3\.W1".*?<div class="numbers">(.*?)</div>', page, re.S).group(1)
    assert line.startswith(escape("against the handout's network: e = "))


def test_report_embeds_every_picture_its_figure_data_makes(graded, pages):
    for name in ("kv2154", "solution"):
        expected = sum(len(v) for v in figs.submission_figures(graded[name].figures).values())
        assert expected >= 2
        assert pages[name, True].count(PICTURE) == expected
    assert pages["kv2154", True].count(PICTURE) == 4  # init, W1 tiles, heat maps, training


def test_report_without_or_with_malformed_figure_data_has_no_pictures_and_does_not_crash(graded):
    data = as_json(graded["kv2154"])
    assert "<img" not in render_report({**data, "figures": {}}, staff=True)
    bad = {  # no grading produces this: figure data a future grader version might get wrong
        "gradients": {"W1": {"student": [[1, 2]], "expected": "nope"}, "b1": {"student": [1]}},
        "training": {"epochs": "x"},
        "init": {"W1": {"values": []}},
    }
    assert "<img" not in render_report({**data, "figures": bad}, staff=True)


def test_not_gradable_report_explains_why(graded, pages):
    page = pages["broken", False]
    error = graded["broken"].errors[0]
    assert 'id="not-gradable"' in page and "could not be graded" in page
    assert escape(error.message) in page and "not valid JSON" in error.message
    assert 'id="not-gradable"' not in pages["kv2154", False]


def test_the_report_header_names_the_problems_as_the_index_does(graded, pages):
    labels = "; ".join(graded["timeout"].problems)
    assert labels == "time-out at lines 3-4; code not matched to the handout"
    assert f"Problems:</strong> {labels}" in pages["timeout", False]
    assert 'id="problems"' not in pages["kv2154", False]
    assert "Problems:</strong> not a submission" in pages["broken", True]


def test_run_errors_are_in_plain_words(graded, pages):
    page = pages["timeout", False]
    timeout = next(e for e in graded["timeout"].errors if e.kind == "timeout")
    assert timeout.message.startswith(f"{timeout.where} was still running")
    assert f"<h3>Your code ran out of time</h3>\n  <div class=\"message\">{escape(timeout.message)}</div>" in page
    assert page.count(f"{timeout.where} {timeout.where}") == 0 and "in lines 3-4</span>" not in page
    assert f"Your code ran out of time: {timeout.message}" in results_json(graded["timeout"])["output"]
    assert "Your code raised an exception" in pages["script", False]


def test_gradient_pictures_are_drawn_at_the_probe_digit_the_w1_check_names(graded, pages):
    result = graded["kv2154"]
    w1 = check(result, "Q3.W1")
    named = w1.details["worst_label"]
    assert f"(worst of {len(w1.details['labels'])} probe digits: a {named})" in w1.message
    probe = result.figures["gradients"]["probe"]
    assert probe["label"] == named and len(probe["pixels"]) == 784
    assert named != w1.details["labels"][0]  # kv2154's worst digit is not the first probe: the old picture's
    assert escape(f"dL/dW1 at probe digit {named} (the digit Q3's W1 check names)") in pages["kv2154", True]
    assert "Each panel has its own colour scale" in pages["kv2154", True]


def test_each_gradient_panel_gets_a_colour_scale_that_shows_it():
    import numpy as np

    rng = np.random.default_rng(0)
    expected = rng.normal(size=(32, 32))
    too_large = 4 * expected  # a gradient 4x too large: on one shared scale the others would look blank
    ours, theirs, difference = figs.panel_limits(too_large, expected)
    assert ours == pytest.approx(4 * theirs) and difference == pytest.approx(3 * theirs)
    rounding = expected + 1e-13 * rng.normal(size=expected.shape)
    assert figs.panel_limits(rounding, expected)[2] == pytest.approx(theirs)  # noise stays white


def test_tile_mosaic_puts_hidden_unit_j_in_tile_j():
    import numpy as np

    columns = np.arange(784 * 32, dtype=float).reshape(784, 32)
    mosaic = figs.tile_mosaic(columns)
    r, c = divmod(13, 8)
    tile = mosaic[r * 29 : r * 29 + 28, c * 29 : c * 29 + 28]
    assert np.array_equal(tile, columns[:, 13].reshape(28, 28))
    assert np.isnan(mosaic[28, :]).all()


# --- index -----------------------------------------------------------------------------------------------


def test_index_links_every_report_and_lists_every_submission(graded):
    results = list(graded.values())
    page = render_index(results, links={r.path: f"{i}.html" for i, r in enumerate(results)})
    for i, r in enumerate(results):
        assert f'<a href="{i}.html">{escape(r.submission)}</a>' in page
        assert f'data-value="{r.score}"><strong>{points_text(r.score)}</strong>' in page
    assert page.count(PICTURE) == 1
    assert "not a submission" in page and "time-out at lines 3-4" in page


def test_index_pass_rates_count_passes_over_submissions_that_ran_the_check(graded):
    rates = {(r["question"], r["check"]): r for r in pass_rates([as_dict(r) for r in graded.values()])}
    # solution and transposed pass; kv2154 fails; the infinite loop and the raising script define nothing;
    # the unreadable notebook ran no check.
    assert (rates["Q3", "Q3.W1"]["passed"], rates["Q3", "Q3.W1"]["total"]) == (2, 5)
    assert (rates["Q3", "Q3.W3"]["passed"], rates["Q3", "Q3.W3"]["total"]) == (3, 5)
    assert rates["Q3", "Q3.W1"]["title"] == check(graded["kv2154"], "Q3.W1").title


def test_class_mistakes_are_counted_by_mistake_id_not_by_sentence(klass):
    seeds = [klass[n] for n in ("kv2154", "kv2154_copy", "kv2154_f32")]
    b2 = [check(r, "Q3.b2") for r in seeds]
    assert len({c.mistake_id for c in b2}) == 1
    assert len({r.gradients["b2"].diagnosis for r in seeds}) == 2  # same mistake, other numbers
    rows = {m["key"]: m for m in common_mistakes([as_dict(r) for r in klass.values()])}
    row = rows[b2[0].mistake_id]
    assert (row["count"], row["parts"], row["question"]) == (3, ["b2"], "Q3")
    assert row["sentence"] == b2[0].fix
    assert row["sentence"].startswith("b2: your bias gradient lacks the factor sigma'(z2) (your dW2 has")
    assert "matches this mistake" not in row["sentence"] and "e = " not in row["sentence"]
    assert sorted(row["examples"]) == ["kv2154", "kv2154", "kv2154_f32"]


def test_q1_mistakes_are_grouped_by_id_and_read_without_the_students_numbers(klass):
    seeds = [klass[n] for n in ("kv2154", "kv2154_copy", "kv2154_f32")]
    messages = {check(r, "Q1.W3.distribution").message for r in seeds}
    assert len(messages) == 2 and all("uniform on [0, 0." in m for m in messages)
    rows = {m["key"]: m for m in common_mistakes([as_dict(r) for r in klass.values()]) if m["question"] == "Q1"}
    assert rows["init_non_negative"]["count"] == 3 and rows["init_non_negative"]["parts"] == ["W3"]
    assert rows["init_non_negative"]["sentence"] == (
        "W3's values are never negative (np.random.rand / rng.random draw from [0, 1)); "
        "use rng.normal(0, np.sqrt(1/32), size=(32, 10)).")


def test_std_instead_of_variance_counts_once_per_submission_not_once_per_matrix(klass):
    std = klass["std_init"]
    ids = [check(std, f"Q1.W{k}.distribution").mistake_id for k in (1, 2, 3)]
    assert ids == ["init_std_not_variance"] * 3
    rows = {m["key"]: m for m in common_mistakes([as_dict(r) for r in klass.values()])}
    row = rows["init_std_not_variance"]
    assert (row["count"], row["parts"], row["examples"]) == (1, ["W1", "W2", "W3"], ["std_init"])


def test_swapped_cross_entropy_arguments_are_one_mistake_of_q2(klass):
    rows = {m["key"]: m for m in common_mistakes([as_dict(r) for r in klass.values()])}
    row = rows["cross_entropy_arguments_swapped"]
    assert (row["count"], row["question"]) == (3, "Q2")
    assert row["parts"] == sorted(row["parts"]) and len(row["parts"]) == 2  # the loss and the printed average
    assert row["sentence"].startswith("Call cross_entropy_loss(y, yHat) with the one-hot label first")


def test_submissions_that_define_nothing_name_no_mistake(graded):
    for name in ("solution", "transposed", "timeout", "broken", "script"):
        assert mistakes(as_dict(graded[name])) == [], name


def test_index_shows_each_mistake_once_with_its_count_and_no_student_numbers(klass):
    results = list(klass.values())
    page = render_index([{**r.to_dict(), "data_source": DATA_SOURCE} for r in results])
    table = re.search(r'<section id="mistakes">.*?</section>', page, re.S).group(0)
    for key in ("missing_sigma_prime_in_bias2_only", "missing_sigma_prime_in_delta2_passed_down"):
        assert table.count(f'data-mistake="{key}"') == 1
    assert '<td class="num">3 (33%)</td><td>Q3</td>' in table  # 3 of the 9 that ran (the broken notebook did not)
    assert "matches this mistake" not in table and "2.3e-16" not in table
    assert f'id="data-source">MNIST: {escape(DATA_SOURCE)}</div>' in page


# --- grades.csv ------------------------------------------------------------------------------------------


def test_grades_csv_has_one_row_per_submission_and_stable_columns(graded):
    results = list(graded.values())
    rows = list(csv.DictReader(io.StringIO(grades_csv(results))))
    assert list(rows[0].keys()) == ["submission", "path", "Q1", "Q2", "Q3", "Q4", "helpers", "total",
                                    "max_score", "status", "problems"]
    assert len(rows) == len(results)
    by_path = {r["path"]: r for r in rows}
    for r in results:
        row = by_path[r.path]
        assert float(row["total"]) == pytest.approx(r.score, abs=0.005)  # to the hundredth, whatever the data
        assert sum(float(row[q]) for q in ("Q1", "Q2", "Q3", "Q4", "helpers")) == pytest.approx(r.score, abs=0.03)
    assert by_path[graded["timeout"].path]["status"] == "graded"
    assert by_path[graded["timeout"].path]["problems"] == "time-out at lines 3-4; code not matched to the handout"
    assert by_path[graded["kv2154"].path]["problems"] == ""
    assert grades_csv(reversed(results)) == grades_csv(results)


def test_grades_csv_neutralises_spreadsheet_formulas_and_marks_not_gradable(graded):
    rows = list(csv.DictReader(io.StringIO(grades_csv([graded["broken"]]))))
    assert rows[0]["submission"] == "'=HYPERLINK(\"x\")"
    assert rows[0]["status"] == "not gradable" and rows[0]["total"] == "0"
    assert rows[0]["problems"] == "not a submission"


# --- Gradescope results.json -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_results_json_follows_gradescope_spec_as_strict_json(graded, name):
    text = json.dumps(results_json(graded[name]), allow_nan=False)  # kv2154's details hold inf losses
    jsonschema.validate(json.loads(text), SCHEMA)


@pytest.mark.parametrize("name", ["kv2154", "solution", "timeout"])
def test_results_json_has_one_test_per_check_with_distinct_numbers(graded, name):
    result = graded[name]
    tests = results_json(result)["tests"]
    assert len(tests) == sum(len(q.checks) for q in result.questions)
    assert len({t["number"] for t in tests}) == len(tests)
    assert results_json(result)["score"] == pytest.approx(sum(t["score"] for t in tests))


def test_results_json_carries_each_check_s_message_status_and_visibility(graded):
    result = graded["kv2154"]
    tests = {t["extra_data"]["check"]: t for t in results_json(result)["tests"]}
    w1 = tests["Q3.W1"]
    assert w1["number"] == "3.1" and w1["status"] == "failed" and w1["max_score"] == 9
    assert result.gradients["b1"].diagnosis in tests["Q3.b1"]["output"]
    assert tests["Q3.learning_rate"]["visibility"] == "hidden"
    assert tests["helpers.sigmoid"]["number"].startswith("5.")


def test_results_json_output_lists_what_cost_points_for_visible_checks_only(graded):
    result = graded["kv2154"]
    output = results_json(result)["output"]
    lost = [c for q in result.questions for c in q.checks if c.max_score - c.score > 1e-9]
    assert "What cost you points:" in output
    for c in lost:
        assert (f" {c.title}" in output) == (c.visibility == "visible")
    assert f"-4 Q1 {check(result, 'Q1.W3.distribution').title} (failed): " \
           f"{check(result, 'Q1.W3.distribution').fix}" in output
    assert "Q4 training 3 epochs (partial): " in output


def test_results_json_of_an_ungradable_submission_scores_zero_and_says_why(graded):
    doc = results_json(graded["broken"])
    assert doc["score"] == 0
    reason = next(t for t in doc["tests"] if t["name"] == "Submission · could be graded")
    assert reason["status"] == "failed" and "not valid JSON" in reason["output"]
    assert "could not be graded" in doc["output"]


def test_results_json_handles_a_batch_grader_failure_dict():
    failure = {  # what grader/session.py writes when a worker dies: no grading produces it
        "submission": "x",
        "path": "/s/x.py",
        "score": 0.0,
        "max_score": 0.0,
        "questions": [],
        "errors": [{"kind": "grader", "where": "grader", "message": "worker died", "traceback": None}],
    }
    doc = results_json(failure)
    jsonschema.validate(doc, SCHEMA)
    assert "worker died" in doc["tests"][0]["output"]


def test_schema_rejects_what_gradescope_would(graded):
    doc = results_json(graded["kv2154"])
    for broken in (
        {**doc, "tests": [{**doc["tests"][0], "status": "error"}]},
        {**doc, "tests": [{**doc["tests"][0], "visibility": "students"}]},
        {**doc, "tests": [{**doc["tests"][0], "number": 3.1}]},
        {k: v for k, v in doc.items() if k not in ("score", "tests")},
        {**doc, "tests": [{k: v for k, v in doc["tests"][0].items() if k != "score"}], "score": None},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


# --- writing files -----------------------------------------------------------------------------------------


def test_write_outputs_writes_json_html_and_results_json(plain, tmp_path):
    result = plain["kv2154"]
    paths = write_outputs(result, tmp_path, extra={"cache_key": "abc"})
    assert {p.name for p in paths.values()} == {"kv2154.json", "kv2154.html", "kv2154.results.json"}
    saved = json.loads(paths["json"].read_text())
    assert saved["cache_key"] == "abc" and saved["score"] == result.score
    assert saved["questions"] == jsonable(result.to_dict())["questions"]  # strict JSON: inf loss -> "inf"
    assert "Infinity" not in paths["json"].read_text()
    jsonschema.validate(json.loads(paths["results"].read_text()), SCHEMA)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_interrupted_write_leaves_the_previous_file_whole(plain, tmp_path, monkeypatch):
    paths = write_outputs(plain["solution"], tmp_path, name="same")
    before = paths["html"].read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(writer_module.os, "replace", crash)
    with pytest.raises(OSError):
        write_outputs(plain["kv2154"], tmp_path, name="same")
    assert paths["html"].read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.html", "same.json", "same.results.json"]


def test_same_stem_from_different_folders_gets_distinct_deterministic_names(plain, tmp_path):
    a, b = "/course/sec1/kv2154.py", "/course/sec2/kv2154.py"
    names = report_names([a, b, "/course/sec1/other.ipynb"])
    assert names["/course/sec1/other.ipynb"] == "other"
    assert names[a] != names[b] and "kv2154" in names[a] and "kv2154" in names[b]
    assert report_names([b, a]) == {a: names[a], b: names[b]}

    first = write_outputs(plain["kv2154"], tmp_path)
    other = dataclasses.replace(plain["kv2154"], path=b)
    second = write_outputs(other, tmp_path)
    assert first["json"] != second["json"]
    assert json.loads(first["json"].read_text())["path"] == plain["kv2154"].path


def test_class_outputs_link_each_report_by_its_file_name(klass, tmp_path):
    results = [dataclasses.replace(r, figures={}) for r in klass.values()]
    names = report_names(r.path for r in results)
    assert names[klass["kv2154"].path] != names[klass["kv2154_copy"].path]
    for r in results:
        write_outputs(r, tmp_path, name=names[r.path])
    paths = write_class_outputs(results, tmp_path, names=names)
    index = paths["index"].read_text()
    for r in results:
        assert f'href="{escape(names[r.path])}.html"' in index
        assert (tmp_path / f"{names[r.path]}.html").exists()
    assert len(list(csv.DictReader(paths["csv"].open(newline="")))) == len(results)


@pytest.mark.parametrize("score, text", [(61.3036, "61.3"), (99.996, "100"), (0.0, "0"), (14.25, "14.25"),
                                         (1 / 3, "0.33"), (-0.001, "0")])
def test_gradebook_points_keep_hundredths_and_drop_trailing_zeros(score, text):
    from grader.report.tables import gradebook_points

    assert gradebook_points(score) == text
