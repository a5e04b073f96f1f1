"""The prepared-data cache: a second run reuses what the first prepared, and only ever data a validated file gave.

Real files and real `GradingSession` runs; the cache folder is each test's own (GRADER_CACHE_DIR).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from grader import data_cache
from grader.data import load_data, prepare_data, save_data
from grader.rubric import load_rubric
from reference.mnist import load_mnist, locate_mnist

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "reference" / "data" / "mnist_sample.npz"


@pytest.fixture
def cache(monkeypatch, tmp_path) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(data_cache.CACHE_VAR, str(folder))
    return folder


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """The sample prepared for the shipped rubric, as a run's data folder."""
    folder = tmp_path_factory.mktemp("prepared")
    save_data(prepare_data(load_rubric(), load_mnist(SAMPLE)), folder)
    return folder


def test_the_key_changes_with_the_files_bytes_the_rubric_and_full(tmp_path):
    copy = tmp_path / "mnist.npz"
    shutil.copy(SAMPLE, copy)
    key = data_cache.entry_key(copy, "rubric-a", False)
    assert data_cache.entry_key(SAMPLE, "rubric-a", False) == key  # the bytes, not the path
    assert data_cache.entry_key(copy, "rubric-b", False) != key
    assert data_cache.entry_key(copy, "rubric-a", True) != key
    with open(copy, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    assert data_cache.entry_key(copy, "rubric-a", False) != key


def test_a_stored_entry_is_found_whole_and_loads_as_the_prepared_data(cache, prepared):
    assert data_cache.cached_entry("k1") is None
    entry = data_cache.store_entry("k1", prepared)
    assert entry == cache / "k1" and data_cache.cached_entry("k1") == entry
    assert data_cache.entry_is_whole(entry)
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    again, first = load_data(entry), load_data(prepared)
    assert np.array_equal(again.train_images, first.train_images) and again.source == first.source
    assert [p.name for p in cache.iterdir()] == ["k1"]  # no staging folder left


@pytest.mark.parametrize("damage", ["truncated", "deleted", "no index"])
def test_a_damaged_entry_is_not_whole(cache, prepared, damage):
    entry = data_cache.store_entry("k1", prepared)
    assert entry is not None
    if damage == "truncated":
        path = entry / "train_images.npy"
        path.write_bytes(path.read_bytes()[:-8])
    elif damage == "deleted":
        (entry / "probe_0.npy").unlink()
        (entry / "index.json").write_text(json.dumps({"source": "x", "probe_labels": [1], "layers": 3}))
        (entry / "train_labels.npy").write_bytes(b"not an npy file")
    else:
        (entry / "index.json").unlink()
    assert not data_cache.entry_is_whole(entry)


def test_a_cache_folder_others_can_write_to_is_not_used(cache, prepared):
    cache.mkdir(mode=0o700)
    os.chmod(cache, 0o777)
    assert data_cache.store_entry("k1", prepared) is None
    assert list(cache.iterdir()) == []


def test_the_cache_can_be_turned_off(monkeypatch, prepared):
    monkeypatch.setenv(data_cache.CACHE_VAR, "")
    assert data_cache.cache_root() is None
    assert data_cache.store_entry("k1", prepared) is None and data_cache.cached_entry("k1") is None


def test_old_entries_are_evicted_but_recently_used_ones_are_kept(cache, prepared):
    hour_ago = time.time() - 2 * data_cache.IN_USE_S
    for i in range(data_cache.KEPT_ENTRIES + 2):
        entry = data_cache.store_entry(f"old{i}", prepared)
        assert entry is not None
        os.utime(entry, (hour_ago + i, hour_ago + i))
    data_cache.store_entry("recent", prepared)
    assert sorted(p.name for p in cache.iterdir()) == ["old3", "old4", "old5", "recent"]
    assert data_cache.cached_entry("old3") is not None  # using it marks it recent: it survives the next store
    data_cache.store_entry("newest", prepared)
    assert "old3" in {p.name for p in cache.iterdir()}


def test_locate_names_the_file_load_mnist_reads(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_PATH", str(SAMPLE))
    assert locate_mnist() == (SAMPLE, f"$MNIST_PATH={SAMPLE}")
    assert locate_mnist(tmp_path / "x.npz") == (tmp_path / "x.npz", f"explicit path {tmp_path / 'x.npz'}")
    assert load_mnist().source == locate_mnist()[1]


def _grade(paths: list[Path], out: Path, mnist: Path) -> dict:
    from grader.session import GradingSession

    outcome = GradingSession(rubric=load_rubric(), mnist_path=str(mnist), out_dir=out, progress=False,
                             force=True).grade(paths)
    return {r["submission"]: r for r in outcome.results}


def _comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("graded_at", "duration_s")}


def test_a_second_run_grades_from_the_cache_as_the_first_did_and_a_damaged_entry_is_rebuilt(cache, tmp_path):
    mnist = tmp_path / "mnist.npz"
    shutil.copy(SAMPLE, mnist)
    paths = [ROOT / "reference" / "solution.py", ROOT / "submissions" / "kv2154.py"]
    first = _grade(paths, tmp_path / "out", mnist)
    entries = list(cache.iterdir())
    assert len(entries) == 1 and data_cache.entry_is_whole(entries[0])
    stored = {p.name: p.stat().st_mtime_ns for p in entries[0].iterdir()}

    second = _grade(paths, tmp_path / "out", mnist)
    assert {n: _comparable(r) for n, r in second.items()} == {n: _comparable(r) for n, r in first.items()}
    assert {p.name: p.stat().st_mtime_ns for p in entries[0].iterdir()} == stored  # read, not written again
    assert first["solution"]["score"] == first["solution"]["max_score"]
    assert second["kv2154"]["data_source"] == f"explicit path {mnist}"

    (entries[0] / "train_images.npy").write_bytes(b"damaged")
    third = _grade(paths, tmp_path / "out", mnist)
    assert {n: _comparable(r) for n, r in third.items()} == {n: _comparable(r) for n, r in first.items()}
    assert data_cache.entry_is_whole(entries[0])


def test_a_bad_mnist_is_never_cached_and_leaves_no_output_folder(cache, tmp_path):
    from reference.mnist import MnistError

    bad = tmp_path / "bad.npz"
    bad.write_bytes(SAMPLE.read_bytes()[: SAMPLE.stat().st_size // 2])
    with pytest.raises(MnistError, match="damaged or truncated"):
        _grade([ROOT / "reference" / "solution.py"], tmp_path / "out", bad)
    assert not cache.exists() or list(cache.iterdir()) == []
    assert not (tmp_path / "out").exists()  # validated as the workers started: nothing written, no folder made
