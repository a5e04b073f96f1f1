"""The report's pictures: PNGs any decoder reads with the right pixels, SVGs that parse, keep what they show and
let no text become markup, and a report path that never imports matplotlib."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest

from grader.report import figures as figs
from grader.report.colourmap import (
    DIVERGING,
    LEVELS,
    MISSING,
    NAN_INDEX,
    diverging_palette,
    grey_palette,
    level_indices,
)
from grader.report.png import palette_png, upscaled
from grader.report.svg import escape, nice_ticks

ROOT = Path(__file__).resolve().parents[1]
NS = {"svg": "http://www.w3.org/2000/svg"}
HOSTILE = '<script>alert(1)</script>"&\'<img src=x onerror=alert(2)>'


def decode_png(data: bytes) -> np.ndarray:
    """(h, w, 3) uint8 RGB of an 8-bit palette PNG, read chunk by chunk with every CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"PLTE", b"IDAT", b"IEND"]
    width, height, depth, colour_type, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour_type) == (8, 3)
    palette = np.frombuffer(chunks[1][1], dtype=np.uint8).reshape(-1, 3)
    rows = np.frombuffer(zlib.decompress(chunks[2][1]), dtype=np.uint8).reshape(height, width + 1)
    assert (rows[:, 0] == 0).all()  # filter type 0 on every row
    return palette[rows[:, 1:]]


def svg_of(uri: str) -> ET.Element:
    """The parsed SVG document of an image/svg+xml data URI."""
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    return ET.fromstring(base64.b64decode(uri[len(prefix) :]))


def embedded_pngs(root: ET.Element) -> list[tuple[dict[str, str], np.ndarray]]:
    """Every <image> of an SVG: its attributes and its decoded pixels."""
    out = []
    for image in root.iter("{http://www.w3.org/2000/svg}image"):
        href = image.get("href")
        assert href.startswith("data:image/png;base64,")
        out.append((image.attrib, decode_png(base64.b64decode(href.split(",", 1)[1]))))
    return out


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


# --- PNG and colour maps ----------------------------------------------------------------------------------


def test_palette_png_decodes_to_the_palette_colour_of_every_index():
    rng = np.random.default_rng(1)
    indices = rng.integers(0, 256, size=(7, 13)).astype(np.uint8)
    palette = rng.integers(0, 256, size=(256, 3)).astype(np.uint8)
    png = palette_png(indices, palette)
    assert np.array_equal(decode_png(png), palette[indices])


def test_pillow_reads_our_png_with_the_same_pixels():
    image_module = pytest.importorskip("PIL.Image")
    import io

    indices = np.arange(12, dtype=np.uint8).reshape(3, 4)
    palette = diverging_palette()
    decoded = np.asarray(image_module.open(io.BytesIO(palette_png(indices, palette))).convert("RGB"))
    assert decoded.shape == (3, 4, 3) and np.array_equal(decoded, palette[indices])


def test_palette_png_refuses_indices_outside_its_palette():
    with pytest.raises(ValueError, match="0..9"):
        palette_png(np.array([[10]]), np.zeros((10, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="2-d"):
        palette_png(np.zeros(5, dtype=np.uint8), np.zeros((10, 3), dtype=np.uint8))


def test_upscaling_repeats_each_entry_as_a_block():
    big = upscaled(np.array([[1, 2], [3, 4]]), 2, 3)
    assert big.shape == (4, 6) and (big[:2, :3] == 1).all() and (big[2:, 3:] == 4).all()


def test_diverging_scale_maps_minus_limit_zero_and_limit_to_blue_white_and_red():
    palette = diverging_palette()
    levels = level_indices(np.array([[-2.0, -1.0, 0.0, 1.0, 2.0, np.nan, np.inf]]), -1.0, 1.0)[0]
    assert list(levels) == [0, 0, LEVELS // 2, LEVELS - 1, LEVELS - 1, NAN_INDEX, NAN_INDEX]
    assert [palette[i].tolist() for i in levels[1:4]] == [hex_rgb(DIVERGING[k]).tolist() for k in (0, 5, -1)]
    assert palette[NAN_INDEX].tolist() == list(MISSING)
    assert grey_palette()[0].tolist() == [255, 255, 255] and grey_palette()[LEVELS - 1].tolist() == [0, 0, 0]


def test_diverging_palette_is_matplotlibs_rdbu_r():
    colormaps = pytest.importorskip("matplotlib").colormaps
    theirs = (colormaps["RdBu_r"](np.linspace(0, 1, LEVELS))[:, :3] * 255).round()
    assert np.abs(diverging_palette()[:LEVELS].astype(int) - theirs).max() <= 6


def test_nice_ticks_are_round_and_inside_the_range():
    assert nice_ticks(0, 100, 6) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(-0.384, 0.384, 5) == pytest.approx([-0.2, 0.0, 0.2])
    assert nice_ticks(0, 3.15, 5, integer=True) == [0, 1, 2, 3]
    assert nice_ticks(1.0, 1.0) == [1.0]


# --- the pictures -----------------------------------------------------------------------------------------


def test_heat_map_pixels_are_the_colours_of_the_values():
    expected = np.array([[-1.0, 0.0, 1.0], [0.5, -0.5, 0.0]])
    student = 2 * expected
    root = svg_of(figs.gradient_heatmaps({"W3": {"student": student.tolist(), "expected": expected.tolist()}}))
    assert "W3 (2, 3): yours" in texts(root) and "W3 (2, 3): difference" in texts(root)
    (yours_attrs, yours), (fd_attrs, fd), (_, difference) = embedded_pngs(root)
    assert yours_attrs["preserveAspectRatio"] == "none"
    limits = figs.panel_limits(student, expected)
    palette = diverging_palette()
    for pixels, values, limit in ((yours, student, limits[0]), (fd, expected, limits[1]),
                                  (difference, student - expected, limits[2])):
        rows, cols = values.shape
        fy, fx = pixels.shape[0] // rows, pixels.shape[1] // cols
        assert pixels.shape[:2] == (rows * fy, cols * fx)
        sampled = pixels[fy // 2 :: fy, fx // 2 :: fx]
        assert np.array_equal(sampled, palette[level_indices(values, -limit, limit)])
    assert (yours[0, 0] == hex_rgb(DIVERGING[0])).all()  # the most negative entry is the darkest blue


def test_w1_tiles_show_hidden_unit_j_in_tile_j_beside_the_probe_digit():
    rng = np.random.default_rng(2)
    expected = rng.normal(size=(784, 32))
    digit = np.zeros(784)
    digit[28 * 14 + 3] = 255.0  # one black pixel at row 14, column 3
    root = svg_of(figs.gradient_tiles(expected.tolist(), expected.tolist(), {"label": 7, "pixels": digit.tolist()}))
    assert {"probe digit", "(a 7)", "your gradient", "finite differences"} <= set(texts(root))
    (_, probe), (_, yours), *_ = embedded_pngs(root)
    scale = probe.shape[0] // 28
    assert (probe[14 * scale + 1, 3 * scale + 1] == 0).all() and (probe[0, 0] == 255).all()
    factor = yours.shape[0] // (4 * 29 - 1)
    mosaic = yours[::factor, ::factor]
    limit = figs.panel_limits(expected, expected)[0]
    r, c = divmod(13, 8)
    tile = mosaic[r * 29 : r * 29 + 28, c * 29 : c * 29 + 28]
    wanted = diverging_palette()[level_indices(expected[:, 13].reshape(28, 28), -limit, limit)]
    assert np.array_equal(tile, wanted)
    assert (mosaic[28, :] == MISSING).all()  # the gutter between tile rows


def test_an_array_larger_than_its_panel_is_sampled_down_not_drawn_in_full():
    wide = np.tile(np.array([[-1.0, 1.0]]), (3000, 500))  # (3000, 1000): columns alternate -1, 1
    assert figs.fitted(wide, 240, 290).shape == (240, 290)
    assert figs.fitted(wide[:5, :7], 240, 290).shape == (5, 7)
    root = svg_of(figs.gradient_heatmaps({"W2": {"student": wide, "expected": wide}}))
    (_, yours), *_ = embedded_pngs(root)
    assert yours.shape[0] <= 240 and yours.shape[1] <= 290
    assert (yours[0, 0] == hex_rgb(DIVERGING[0])).all() and (yours[0, -1] == hex_rgb(DIVERGING[-1])).all()


def test_training_curve_draws_both_runs_and_breaks_at_a_missing_epoch():
    uri = figs.training_curve({"epochs": [0, 1, 2, 3, 4], "student": [0.1, 0.3, None, 0.6, 0.7],
                               "reference": [0.1, 0.5, 0.6, 0.65, 0.68]})
    root = svg_of(uri)
    lines = root.findall(".//svg:polyline", NS)
    student = [line for line in lines if line.get("stroke") == "#c0392b"]
    reference = [line for line in lines if line.get("stroke") == "#2c3e50"]
    assert (len(student), len(reference)) == (2, 1)  # the student's line breaks at the missing epoch
    assert reference[0].get("stroke-dasharray")
    assert {"epoch", "test accuracy (%)", "you", "reference", "0", "100", "4"} <= set(texts(root))
    points = [tuple(map(float, p.split(","))) for p in reference[0].get("points").split()]
    assert len(points) == 5 and points[0][1] > points[-1][1]  # accuracy rises: higher on the page


def test_init_histograms_have_a_bar_per_filled_bin_a_density_curve_and_a_title():
    rng = np.random.default_rng(3)
    values = rng.normal(0, 0.1, size=400)
    root = svg_of(figs.init_histograms({"W2": {"values": values.tolist(), "sigma": 0.1, "mean": 0.0}}))
    counts, _ = np.histogram(values, bins=20)
    bars = [r for r in root.findall(".//svg:rect", NS) if r.get("fill") == "#95a5a6"]
    assert len(bars) == np.count_nonzero(counts) + 1  # and the legend's swatch
    assert len(root.findall(".//svg:polyline", NS)) == 1
    assert f"W2: your std {values.std():.3g} (expected 0.1)" in texts(root)
    assert "expected N(0, 0.1²)" in texts(root)


def test_score_histogram_counts_whole_submissions():
    root = svg_of(figs.score_histogram([10, 10, 9.5, 3, 0], 10))
    assert "total score (out of 10)" in texts(root) and "submissions" in texts(root)
    labels = [t for t in texts(root) if t.replace(".", "").isdigit()]
    assert "2" in labels and "0.5" not in labels


def test_no_text_that_came_with_the_results_becomes_markup():
    values = {"values": [0.1, -0.2, 0.05], "sigma": 0.1}
    grads = {"W1": {"student": np.ones((784, 32)).tolist(), "expected": np.ones((784, 32)).tolist()},
             "probe": {"label": HOSTILE, "pixels": [0] * 784}}
    uris = [figs.init_histograms({HOSTILE: values}), figs.gradient_tiles(grads["W1"]["student"],
            grads["W1"]["expected"], grads["probe"])]
    for uri in uris:
        root = svg_of(uri)  # parses as XML: the text was escaped
        assert not [e for e in root.iter() if e.tag.split("}")[-1].lower() in ("script", "foreignobject", "img")]
        assert not [k for e in root.iter() for k in e.attrib if k.lower().startswith("on")]
        assert any(HOSTILE in t for t in texts(root))
    assert escape(HOSTILE).count("<") == 0


def test_malformed_figure_data_gives_no_picture_rather_than_an_error():
    assert figs.submission_figures({"gradients": {"W1": {"student": "x"}}, "training": {"epochs": "x"},
                                    "init": {"W1": {"values": []}}}) == {}
    assert figs.score_histogram([float("nan")], 10) is None
    assert figs._safely(figs.init_histograms, {"W1": {"values": [1.0, 2.0], "sigma": float("inf")}}) is not None
    extreme = [figs._safely(figs.init_histograms, {"W1": {"values": [1e300, -1e300], "sigma": 1e308}}),
               figs._safely(figs.training_curve, {"epochs": [0, 1], "student": [float("nan")] * 2}),
               figs._safely(figs.gradient_heatmaps, {"b1": {"student": [1e308, -1e308], "expected": [0.0, 0.0]}})]
    for uri in extreme:  # a picture that parses, or none: never an exception
        assert uri is None or svg_of(uri) is not None


# --- no matplotlib --------------------------------------------------------------------------------------


def test_writing_a_report_set_and_an_index_never_imports_matplotlib(tmp_path):
    from graded import graded

    result = graded(ROOT / "submissions" / "kv2154.py")
    source = tmp_path / "kv2154.result.json"
    source.write_text(json.dumps(result.to_dict()))
    script = (
        "import json, sys\n"
        "from grader.report import write_class_outputs, write_outputs\n"
        f"data = json.load(open({str(source)!r}))\n"
        f"paths = write_outputs(data, {str(tmp_path / 'out')!r}, name='kv2154')\n"
        f"write_class_outputs([data], {str(tmp_path / 'out')!r})\n"
        "print(json.dumps({'pictures': paths['html'].read_text().count('data:image/svg+xml'),\n"
        "                  'matplotlib': sorted(m for m in sys.modules if m.startswith('matplotlib'))}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) == {"pictures": 4, "matplotlib": []}
