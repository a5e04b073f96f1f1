"""`grade --doctor` states the limits grading uses: the rubric's, not the sandbox's defaults."""

from __future__ import annotations

import yaml

from grader.doctor import doctor
from grader.rubric import DEFAULT_RUBRIC, load_rubric


def test_doctor_reports_the_rubrics_file_size_and_memory_limits(capsys, tmp_path):
    limits = load_rubric().limits
    assert doctor() == 0
    out = capsys.readouterr().out
    assert f"file size {limits.file_mb} MB" in out and f"address space {limits.memory_mb} MB" in out
    assert "file size 64 MB" not in out or limits.file_mb == 64

    raw = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    raw["limits"]["file_mb"] = 8
    other = tmp_path / "rubric.yaml"
    other.write_text(yaml.safe_dump(raw))
    assert doctor(str(other)) == 0
    assert out.count("file size") == capsys.readouterr().out.count("file size 8 MB")
