"""A small PNG encoder (zlib + struct): 8-bit palette images, enough for heat maps, tiles and colour bars.

Output is reproducible (no time or software chunks) and readable by any decoder: signature, IHDR, PLTE, IDAT
(each row with filter type 0), IEND, every chunk with its CRC-32.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
PALETTE = 3  # IHDR colour type: each pixel is an index into PLTE


def _chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC-32 of type and body."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def palette_png(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """PNG bytes of an (h, w) array of palette indices and an (n <= 256, 3) uint8 RGB palette."""
    indices = np.asarray(indices)
    palette = np.asarray(palette, dtype=np.uint8)
    if indices.ndim != 2 or 0 in indices.shape:
        raise ValueError(f"palette_png needs a non-empty 2-d index array, got shape {indices.shape}")
    if palette.ndim != 2 or palette.shape[1] != 3 or not 0 < len(palette) <= 256:
        raise ValueError(f"palette_png needs an (n <= 256, 3) palette, got shape {palette.shape}")
    if indices.min() < 0 or indices.max() >= len(palette):
        raise ValueError(f"palette indices must lie in 0..{len(palette) - 1}")
    height, width = indices.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # column 0: filter type 0 (none) for every row
    rows[:, 1:] = indices
    header = struct.pack(">IIBBBBB", width, height, 8, PALETTE, 0, 0, 0)
    return b"".join([
        SIGNATURE,
        _chunk(b"IHDR", header),
        _chunk(b"PLTE", palette.tobytes()),
        _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)),
        _chunk(b"IEND", b""),
    ])


def upscaled(indices: np.ndarray, rows: int, cols: int | None = None) -> np.ndarray:
    """(h, w) -> (h * rows, w * cols): every pixel a rows x cols block (nearest neighbour); cols defaults to rows."""
    cols = rows if cols is None else cols
    return np.repeat(np.repeat(indices, max(1, rows), axis=0), max(1, cols), axis=1)


def data_uri(mime: str, payload: bytes) -> str:
    """bytes as a base64 data URI of the given media type."""
    return f"data:{mime};base64," + base64.b64encode(payload).decode("ascii")
