"""The ``key: value`` records fsmw leaves in a store, and how to read them back.

Every record a person may ``cat`` is a few ``key: value`` lines, then an
optional blank line and a free-text body (a traceback).  Error records
``<task>.err.<g>``, failure marks ``<task>.failed``, duplicate records
``<task>.dup.<hex>``, break records, claim tokens, markers and the stop file
are all rendered by :func:`format_record` (or, on the claim hot path,
:func:`token_record`, which renders the same format from bytes) and read by
:func:`parse_record`.

Property: ``parse_record(format_record(facts, body))`` gives back every fact
and the body, whatever the values contain (newlines in values are flattened).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Dict, Mapping, Optional

# The owner facts a claim or record names its writer by.
WHO = ("host", "pid", "worker_id", "job_id")


def format_record(facts: Mapping[str, object], body: str = "") -> bytes:
    """Render ``key: value`` lines, then an optional free-text body."""
    lines = [f"{key}: {str(value).replace(chr(10), ' ')}" for key, value in facts.items()]
    text = "\n".join(lines) + "\n"
    if body:
        text += "\n" + body.rstrip("\n") + "\n"
    return text.encode("utf-8", errors="replace")


def parse_record(data: Optional[bytes]) -> Dict[str, str]:
    """Read the ``key: value`` header of a record; the body is under ``""``."""
    text = (data or b"").decode("utf-8", errors="replace")
    head, _, body = text.partition("\n\n")
    facts: Dict[str, str] = {}
    for line in head.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            facts[key.strip()] = value.strip()
    facts[""] = body
    return facts


def iso_time(seconds: float) -> bytes:
    """Wall-clock seconds as the ISO 8601 text records carry (``started: ...``)."""
    return datetime.fromtimestamp(int(seconds), timezone.utc).isoformat().encode()


def token_record(task: str, gen: int, facts: bytes, started: bytes, size: int) -> bytes:
    """A claim token's record (the hot path: bytes formatting), padded to ``size``."""
    record = b"task: %s\nattempt: %d\n%sstarted: %s\n" % (
        task.encode("utf-8", errors="replace"), gen, facts, started)
    return record.ljust(size - 1)[:size - 1] + b"\n"


def who(facts: Mapping[str, str]) -> str:
    """``host=.., pid=.., worker_id=.., job_id=..`` of a parsed record."""
    return ", ".join(f"{k}={facts.get(k, '?')}" for k in WHO)


def error_line(record: Optional[bytes]) -> str:
    """The one-line error text of an error or failure record."""
    if not record:
        return "unknown error"
    facts = parse_record(record)
    if facts.get("error"):
        return facts["error"]
    lines = facts[""].strip().splitlines()
    return lines[-1] if lines else "unknown error"


def failed_record(attempts: int, last_error: Optional[bytes]) -> bytes:
    """The text of ``<task>.failed``: the attempt count, then the last error record."""
    return b"attempts: %d\n" % attempts + (last_error or b"")
