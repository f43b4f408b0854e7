"""Headless Chromium for the report tests and the README screenshot; a PNG reader.

:func:`chromium` runs the browser in a session of its own, with a fresh
profile directory and a deadline, and kills its whole process group when it
returns (the browser forks zygote, GPU and renderer processes).
:func:`read_png` decodes 8-bit RGB or RGBA PNGs with zlib and struct only, and
:func:`colours` counts the pixels of each colour.
"""

from __future__ import annotations

import operator
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from pathlib import Path
from typing import List, Optional, Tuple

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def find() -> Optional[str]:
    """The Chromium binary on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(binary: str, html: Path, args: List[str], timeout: float = 60.0) -> str:
    """Run headless Chromium on file ``html`` with ``args``; return its stdout.

    Raises:
        RuntimeError: Chromium failed or ran past ``timeout`` seconds (it is killed).
    """
    scratch = tempfile.mkdtemp(prefix="fsmw-chromium-")
    try:
        out, err = Path(scratch, "stdout"), Path(scratch, "stderr")
        argv = [binary, *FLAGS, f"--user-data-dir={Path(scratch, 'profile')}", *args,
                Path(html).resolve().as_uri()]
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                     start_new_session=True)
        try:
            code = popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(popen.pid, signal.SIGKILL)  # the group: helpers outlive the browser
            except ProcessLookupError:
                pass
            popen.wait()
        if code != 0:
            tail = err.read_text(errors="replace")[-2000:]
            what = f"ran past {timeout:g} s" if code is None else f"exited with {code}"
            raise RuntimeError(f"{binary} {what} on {html}:\n{tail}")
        return out.read_text(errors="replace")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def screenshot(binary: str, html: Path, png: Path, size: Tuple[int, int] = (1400, 900),
               timeout: float = 60.0) -> None:
    chromium(binary, html, [f"--screenshot={Path(png).resolve()}",
                            f"--window-size={size[0]},{size[1]}", "--hide-scrollbars"], timeout)


def dump_dom(binary: str, html: Path, timeout: float = 60.0) -> str:
    return chromium(binary, html, ["--dump-dom"], timeout)


def read_png(path: Path) -> Tuple[int, int, int, bytes]:
    """(width, height, bytes per pixel, pixel bytes row by row) of an 8-bit RGB(A) PNG."""
    data = Path(path).read_bytes()
    if not data.startswith(PNG_MAGIC):
        raise ValueError(f"{path} is not a PNG file")
    pos, idat, head = len(PNG_MAGIC), [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if head is None or head[2] != 8 or head[3] not in (2, 6) or head[6] != 0:
        raise ValueError(f"{path}: only 8-bit, non-interlaced RGB or RGBA is decoded here ({head})")
    width, height, bpp = head[0], head[1], 3 if head[3] == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    pixels, prev = bytearray(), bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1:start + 1 + stride])
        _unfilter(raw[start], line, prev, bpp)
        pixels += line
        prev = line
    return width, height, bpp, bytes(pixels)


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    """Undo one row's PNG filter in place (PNG spec, section 9)."""
    if kind == 2:
        line[:] = bytes(x & 255 for x in map(operator.add, line, prev))
        return
    for i in range(len(line)) if kind in (1, 3, 4) else ():
        left = line[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 3:
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        else:
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + pred) & 255


def colours(path: Path) -> Counter:
    """How many pixels of each colour (3 bytes: r, g, b) the PNG has."""
    _, _, bpp, px = read_png(path)
    return Counter(px[i:i + 3] for i in range(0, len(px), bpp))


def count_near(counts: Counter, hex_colour: str, tolerance: int = 8) -> int:
    """Pixels within ``tolerance`` per channel of ``#rrggbb``."""
    want = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    return sum(n for rgb, n in counts.items()
               if all(abs(rgb[k] - want[k]) <= tolerance for k in range(3)))


def write_png(path: Path, width: int, height: int, bpp: int, pixels: bytes) -> None:
    """Write 8-bit RGB(A) pixels as a PNG (no row filters, zlib level 9)."""
    stride = width * bpp
    raw = b"".join(b"\0" + pixels[y * stride:(y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    head = struct.pack(">IIBBBBB", width, height, 8, 2 if bpp == 3 else 6, 0, 0, 0)
    Path(path).write_bytes(PNG_MAGIC + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw, 9))
                           + chunk(b"IEND", b""))


def crop_to_content(path: Path, margin: int = 16) -> None:
    """Cut the blank rows off the bottom of a screenshot."""
    width, height, bpp, pixels = read_png(path)
    stride, blank = width * bpp, b"\xff" * (width * bpp)
    last = max((y for y in range(height) if pixels[y * stride:(y + 1) * stride] != blank), default=0)
    keep = min(height, last + 1 + margin)
    write_png(path, width, keep, bpp, pixels[:keep * stride])
