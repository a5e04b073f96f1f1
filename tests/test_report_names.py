"""One mapping from a submission's path to its report name; report sets written whole; a grader failure never
replaces a good earlier report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.batch import Job, grader_failure, is_up_to_date
from grader.report import writer
from grader.report.names import recorded_names, report_name, report_names, safe_name

SUFFIXES = (".json", ".html", ".results.json")


def a_result(path: str, name: str, score: float = 50.0) -> dict:
    """A small but complete graded result, as a worker returns it."""
    return {"submission": name, "path": path, "score": score, "max_score": 100.0, "questions": [
        {"id": "Q1", "title": "Q1", "score": score, "max_score": 100.0, "checks": [
            {"id": "Q1.x", "title": "x", "status": "passed", "score": score, "max_score": 100.0, "message": "ok",
             "visibility": "visible", "details": {}, "traceback": None}]}], "errors": [], "cache_key": "k"}


def test_lossy_names_get_distinct_names_and_an_already_safe_stem_keeps_its_own():
    names = report_names(["/c/innocent~b.py", "/c/innocent_b.py", "/c/jane doe.py", "/c/jane_doe.py"])
    assert names["/c/innocent_b.py"] == "innocent_b" and names["/c/jane_doe.py"] == "jane_doe"
    assert len(set(names.values())) == 4
    assert report_names(["/c/jane_doe.py", "/c/jane doe.py", "/c/innocent_b.py", "/c/innocent~b.py"]) == names


@pytest.mark.parametrize("stem, name", [("jane doe", "jane_doe"), ("José", "Jose"), ("-rf", "rf"),
                                        ("x.results", "x_results"), ("..", "submission"), ("日本", "submission"),
                                        ("a" * 300, "a" * 100)])
def test_names_are_safe_for_any_file_name(stem, name):
    assert safe_name(stem) == name


def test_names_that_differ_only_in_case_or_take_the_class_files_are_not_used():
    names = report_names(["/c/KV.py", "/c/kv.py", "/c/index.py"])
    assert len({n.casefold() for n in names.values()}) == 3
    assert names["/c/index.py"] != "index"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "a b", "a~b"]), st.text(min_size=1, max_size=6)),
                min_size=1, max_size=8))
def test_any_batch_gets_distinct_safe_names_whatever_its_order(parts):
    paths = [f"/class/{folder}/{stem}.py" for folder, stem in parts if "/" not in stem and "\0" not in stem]
    names = report_names(paths)
    assert len({n.casefold() for n in names.values()}) == len(set(paths))
    assert all(n == safe_name(n) and n not in ("index", "grades") for n in names.values())
    assert report_names(list(reversed(paths))) == names


def test_a_path_keeps_its_name_in_the_folder_and_a_new_path_never_takes_it(tmp_path):
    writer.write_outputs(a_result("/ontime/kv2154.py", "kv2154"), tmp_path, name="kv2154")
    assert recorded_names(tmp_path) == {"kv2154": "/ontime/kv2154.py"}
    late = report_name("/late/kv2154.py", tmp_path)
    assert late != "kv2154"
    writer.write_outputs(a_result("/late/kv2154.py", late), tmp_path, name=late)
    # Both again, in one batch and either order: the same names (a batch alone would have called them a/b-kv2154).
    assert report_names(["/late/kv2154.py", "/ontime/kv2154.py"], tmp_path) == {
        "/late/kv2154.py": late, "/ontime/kv2154.py": "kv2154"}


def test_a_report_set_that_cannot_be_written_leaves_the_earlier_set_and_no_temporary_file(tmp_path, monkeypatch):
    writer.write_outputs(a_result("/s/a.py", "a", 10), tmp_path, name="a")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_replace, calls = os.replace, []

    def fail_on_the_second(src, dst):  # the first file renamed, then the disk goes away
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", fail_on_the_second)
    with pytest.raises(OSError, match="No space"):
        writer.write_outputs(a_result("/s/a.py", "a", 90), tmp_path, name="a")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no temporary file left
    # The JSON (renamed last) still holds the earlier result, so the set counts as not up to date.
    assert json.loads((tmp_path / "a.json").read_text())["score"] == 10


def test_a_grader_failure_never_replaces_a_good_earlier_report(tmp_path):
    job = Job(Path("/s/a.py"), "a", "k")
    writer.write_outputs(a_result("/s/a.py", "a"), tmp_path, name="a")
    good = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert writer.write_or_keep(grader_failure(job, "the worker died"), tmp_path, name="a") is None
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == good
    # A question's grader failure counts as one too.
    broken = a_result("/s/a.py", "a")
    broken["questions"][0]["checks"].append({**broken["questions"][0]["checks"][0], "id": "Q1.grader"})
    assert writer.write_or_keep(broken, tmp_path, name="a") is None
    # With no good report to keep, the failure is written (the TA must see it), and a later good one replaces it.
    assert writer.write_or_keep(grader_failure(job, "the worker died"), tmp_path / "new", name="a") is not None
    assert writer.write_or_keep(a_result("/s/a.py", "a"), tmp_path / "new", name="a") is not None
    assert json.loads((tmp_path / "new" / "a.json").read_text())["score"] == 50


def test_up_to_date_needs_the_whole_set_and_the_same_cache_key(tmp_path):
    job = Job(Path("/s/a.py"), "a", "k")
    writer.write_outputs(a_result("/s/a.py", "a"), tmp_path, name="a")
    assert is_up_to_date(tmp_path, job)
    assert not is_up_to_date(tmp_path, Job(job.path, "a", "other key"))
    (tmp_path / "a.results.json").unlink()
    assert not is_up_to_date(tmp_path, job)
