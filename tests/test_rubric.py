"""rubric.yaml is validated before anything runs: every broken rubric names what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.rubric import RubricError, load_rubric

SHIPPED = (Path(__file__).resolve().parents[1] / "grader" / "rubric.yaml").read_text()


def rubric_with(tmp_path: Path, old: str, new: str) -> Path:
    assert old in SHIPPED, old
    path = tmp_path / "rubric.yaml"
    path.write_text(SHIPPED.replace(old, new, 1))
    return path


def test_the_shipped_rubric_totals_100_over_the_four_questions():
    rubric = load_rubric()
    assert rubric.total == 100
    assert {q: r.points for q, r in rubric.questions.items()} == {"helpers": 0, "Q1": 15, "Q2": 20, "Q3": 40, "Q4": 25}


@pytest.mark.parametrize("old, new, words", [
    ("Q3.W1: 9", "Q3.W1: .nan", "finite number"),
    ("Q3.W1: 9", "Q3.W1: .inf", "finite number"),
    ("Q3.W1: 9", "Q3.W1: -10", "must not be negative"),
    ("Q3.W1: 9", "Q3.W1: ten", "expected a number"),
    ("Q3.W1: 9", "Q3.W9: 9", "unknown check 'Q3.W9'"),
    ("epochs: 3", "epochs: 0", "questions.Q4.settings.epochs: must be positive"),
    ("train_samples: 3000", "train_samples: -5", "zero or more"),
    ("cell_timeout_s: 60", "cell_timeout_s: 0", "limits.cell_timeout_s: must be positive"),
    ("samples: 3", "sample: 3", "unknown key(s) 'sample'"),
    ("Q3.learning_rate: {points: 0, visibility: hidden}", "Q3.learning_rate: {points: 0, visibility: secret}",
     "'secret' is not one of"),
    ("total: 100", "total: 99", "add up to 100"),
    ("alpha: 1.0e-5", "W1_points: 3", "points are set under 'checks'"),
])
def test_a_broken_rubric_is_refused_with_the_offending_key(tmp_path, old, new, words):
    with pytest.raises(RubricError) as refused:
        load_rubric(rubric_with(tmp_path, old, new))
    assert words in str(refused.value)


def test_not_yaml_and_not_a_mapping_are_refused(tmp_path):
    path = tmp_path / "rubric.yaml"
    path.write_text("questions: [unclosed")
    with pytest.raises(RubricError, match="not valid YAML"):
        load_rubric(path)
    path.write_text("- a list\n")
    with pytest.raises(RubricError, match="expected a mapping"):
        load_rubric(path)
