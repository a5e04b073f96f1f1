"""The marks that name a handout-length x_train's samples in the child (grader/adapt/marks.py), and the loop
coverage Q4.loop reads from them (grader/checks/training.py)."""

from __future__ import annotations

import numpy as np
import pytest

from grader.adapt.marks import CAPACITY, mark_samples, marked_index
from grader.checks.own_loop import OwnLoopRun
from grader.checks.training import _coverage_problems
from grader.sandbox.runner import sample_key
from reference import network

N = 60_000


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(28, 28), (784,), (784, 1), (1, 784)])
def test_every_sample_reads_back_as_its_index_in_any_numeric_form(dtype, shape):
    samples = mark_samples(np.zeros((N, *shape), dtype=dtype))
    firsts = samples.reshape(N, -1)[:, :3].tolist()  # what the child's recorder reads
    assert [marked_index(m) for m in firsts] == list(range(N))


def test_sample_zero_is_left_as_it_was_and_the_rest_of_each_digit_too(data):
    images = np.tile(data.train_images[:3], (4, 1))
    marked = mark_samples(images.copy())
    assert np.array_equal(marked[0], images[0])
    assert np.array_equal(marked[:, 3:], images[:, 3:])


@pytest.mark.parametrize("recorded", [[0.5, 0.0, 0.0], [3, 0], [True, 0, 0], [128, 0, 0], [-1, 0, 0], None, "1"])
def test_what_is_not_a_mark_names_no_sample(recorded):
    assert marked_index(recorded) is None


def test_more_samples_than_the_marks_can_name_are_refused():
    with pytest.raises(ValueError, match="at most"):
        mark_samples(np.zeros((CAPACITY + 1, 3), dtype=np.uint8))


def run_over(indices: list[int], first: np.ndarray, scale: float = 1.0) -> OwnLoopRun:
    """An own-loop run whose steps visited these samples of a marked x_train (made here as the child sees it)."""
    samples = mark_samples(np.tile(np.asarray(first, dtype=np.float64), (N, 1))) * scale
    keys = [sample_key(samples[indices[0]])] + [samples[i, :3].tolist() for i in indices[1:]]
    return OwnLoopRun(network.init_params(), np.asarray(first, dtype=np.float64), 0, 0.01, keys=keys)


def test_a_whole_epoch_in_order_or_shuffled_is_no_problem(data):
    first = data.train_images[0]
    assert _coverage_problems(run_over(list(range(N)), first), N) == []
    shuffled = [0, *np.random.default_rng(0).permutation(np.arange(1, N)).tolist()]
    assert _coverage_problems(run_over(shuffled, first), N) == []


def test_a_capped_or_repeating_loop_is_named(data):
    first = data.train_images[0]
    capped = _coverage_problems(run_over(list(range(1000)), first), N)
    assert capped and "first 1,000 of 60,000" in capped[0]
    repeats = _coverage_problems(run_over([0, *range(1, N // 2), *range(1, N // 2 + 1)], first), N)
    assert repeats and "different samples" in repeats[0]


def test_scaled_samples_lead_to_no_conclusion_here(data):
    assert _coverage_problems(run_over(list(range(1000)), data.train_images[0], scale=1 / 255), N) == []
