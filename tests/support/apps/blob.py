"""The self-checking file format of the test programs.

A blob is one ASCII header line, ``<fields...> <payload length> <sha256 of
payload>``, then the payload.  Anyone holding a blob can tell whether it is
complete, so a reader that sees a half-written file reports it.
"""

from __future__ import annotations

import hashlib
import random
from typing import List, Sequence


def make(fields: Sequence[object], payload: bytes = b"") -> bytes:
    head = " ".join(str(f) for f in fields)
    digest = hashlib.sha256(payload).hexdigest()
    return f"{head} {len(payload)} {digest}\n".encode("ascii") + payload


def parse(data: bytes, what: str = "blob") -> List[str]:
    """The header fields (without length and checksum).

    Raises:
        ValueError: naming ``what``, if the blob is malformed or incomplete.
    """
    head, newline, payload = data.partition(b"\n")
    parts = head.decode("ascii", errors="replace").split()
    if not newline or len(parts) < 2 or not parts[-2].isdigit():
        raise ValueError(f"{what}: no valid header line ({len(data)} bytes: {data[:40]!r})")
    if len(payload) != int(parts[-2]):
        raise ValueError(f"{what}: payload has {len(payload)} bytes, header says {parts[-2]}")
    if hashlib.sha256(payload).hexdigest() != parts[-1]:
        raise ValueError(f"{what}: payload checksum mismatch")
    return parts[:-2]


def payload(seed: str, size_range: Sequence[int]) -> bytes:
    """Deterministic pseudo-random bytes; the size is drawn from ``[lo, hi]``."""
    if not size_range:
        return b""
    rng = random.Random(seed)
    return rng.randbytes(rng.randint(size_range[0], size_range[1]))
