"""Shared test fixtures."""

import atexit
import copy
import os
import shutil
import tempfile

# Before numpy loads: one BLAS thread, as the grader's CLI and sandbox use. With several threads per process,
# tests that run Dask workers and sandboxed children beside the grader can make tiny matrix products crawl.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# The prepared-data cache (grader/data_cache.py) of this test run alone: no test sees a developer's cache.
if "GRADER_CACHE_DIR" not in os.environ:
    os.environ["GRADER_CACHE_DIR"] = tempfile.mkdtemp(prefix="grader-test-cache-")
    atexit.register(shutil.rmtree, os.environ["GRADER_CACHE_DIR"], True)

import pytest  # noqa: E402 - after the BLAS settings above

# End-to-end tests (a real `grade` or Gradescope run, a Dask cluster, thousands of statistical draws), with the
# seconds --durations measured for each on the 2-core machine on 2026-11-30: the plain `pytest` leaves them out so
# that it stays under 5 minutes; `pytest -m slow` runs them, and CI runs both. Their cheaper siblings stay in.
SLOW_TESTS = {
    "tests/test_check_initialisation.py::test_2000_correct_draws_per_matrix_never_fail": 72,
    "tests/test_executors.py::test_the_same_folder_graded_locally_and_on_the_cluster_gives_identical_json": 24,
    "tests/test_cli.py::test_a_class_is_graded_with_reports_an_index_and_a_gradebook": 14,  # and its classroom
    "tests/test_cli.py::test_two_submissions_with_the_same_name_get_separate_reports": 0,  # the same classroom
    "tests/test_cli.py::test_a_second_run_regrades_only_what_changed": 17,
    "tests/test_gradescope.py::test_bundled_source_installs_with_its_data_and_grades": 16,
    "tests/test_gradescope.py::test_run_autograder_grades_kv2154_as_grade_does": 14,
    "tests/test_overrides.py::test_grade_applies_overrides_keeps_them_on_regrade_and_regrades_when_they_change": 21,
    # measured again with the bubblewrap sandbox, load average 6 (2026-11-30 20:45)
    "tests/test_grading.py::test_a_step_that_is_right_only_when_probed_gets_no_backprop_credit": 22,  # 2 cases
    "tests/test_grading.py::test_a_rubric_can_make_the_handouts_signature_worth_points": 10,
    "tests/test_gradescope.py::test_with_several_files_the_homework_is_graded_and_the_choice_is_said": 9,
    "tests/test_gradescope.py::test_setup_prepares_the_data_once_and_each_run_grades_from_it": 12,
    "tests/test_benchmarks.py::test_quick_run_writes_machine_load_and_both_sections": 7,  # `benchmarks --quick`
    "tests/test_benchmarks.py::test_quick_gradient_row_checked_all_parameters_to_the_tolerance": 0,  # the same run
    "tests/test_benchmarks.py::test_quick_training_rows_are_bit_identical_to_both_baselines": 0,  # the same run
    "tests/test_executors.py::test_an_unreadable_submission_is_a_grader_failure_and_the_rest_are_graded": 4,  # Dask
    "tests/test_executors.py::test_a_task_that_raises_on_a_worker_becomes_a_grader_failure": 2,  # Dask
    "tests/test_executors.py::test_worker_result_carries_figures_and_the_parent_path": 7,  # Dask
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a slow end-to-end test; left out of a plain `pytest`, run with -m slow")


def pytest_collection_modifyitems(config, items):
    """Mark SLOW_TESTS (and anything marked slow) and, when no -m expression was given, leave them out."""
    for item in items:
        if item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    if config.option.markexpr:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(autouse=True)
def _restore_reference_solution_globals():
    """Some tests drive reference/solution.py through its module globals, as a student's kernel would:
    put them back afterwards so that no test sees another's trained weights."""
    import reference.solution as solution

    names = ("weights", "biases", "x_train", "y_train", "x_test", "y_test", "train_one_sample")
    saved = {n: copy.deepcopy(getattr(solution, n)) if n != "train_one_sample" else getattr(solution, n)
             for n in names if hasattr(solution, n)}
    yield
    for name, value in saved.items():
        setattr(solution, name, value)


@pytest.fixture(scope="session")
def rubric():
    """The shipped rubric."""
    from grader.rubric import load_rubric

    return load_rubric()


@pytest.fixture(scope="session")
def data(rubric):
    """Grading data cut from the shipped MNIST sample (the same whatever MNIST_PATH says)."""
    from pathlib import Path

    from grader.grading import prepare_data
    from reference.mnist import load_mnist

    sample = Path(__file__).resolve().parents[1] / "reference" / "data" / "mnist_sample.npz"
    return prepare_data(rubric, load_mnist(sample))


@pytest.fixture(scope="session")
def grade_once():
    """grade_submission(path) with the shipped rubric and sample, each file graded once per test process
    (tests/graded.py: test_report.py shares the same results)."""
    from graded import graded

    return graded
