"""``fsmw doctor``'s report: every host's results compared, options recommended, text rendered.

Each doctor run leaves its result in ``STORE/.fsmw-doctor/<host>.json``
(the package ``doctor`` writes it); this module reads the other hosts' files and turns
them, with this host's result, into the report:
  * one row per host: its clock minus the file system's, fcntl locks on the
    host and across hosts, and the worst delays before a new name or a new
    mtime was seen.  The file system's own clock votes too, so of two hosts
    the one that is off is flagged (fsmw's leases ignore clocks; users' other
    tools do not).
  * recommended options from every host's figures: fsmw's defaults unless a
    slow host or a slow listing demands more, and lock-file existence taken
    as the lock unless fcntl locks were verified to exclude across hosts.
  * the text that ``fsmw doctor`` prints (``--json`` prints the report as is).
It only reads files and formats; the probes live in the package itself and in ``races`` and ``locks``.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..._options import Options

TITLES = {"excl": "O_EXCL create", "excl_race": "O_EXCL race", "link": "link no-clobber",
          "link_race": "link race", "rename": "rename replace", "fcntl": "fcntl (this host)",
          "fcntl_hosts": "fcntl (across hosts)", "mtime": "mtime resolution",
          "clock": "clock - file system", "new_file": "new name listed", "utime": "new mtime seen",
          "listing": "largest listing"}
CLOCK_SPREAD_SECS = 2.0  # host clocks further apart than this (beyond uncertainty) are flagged
Result = Dict[str, Any]


def read_results(doctor_dir: Path, exclude_host: str) -> List[Result]:
    """Other hosts' result files (unreadable or half-written ones are skipped)."""
    found = []
    for path in sorted(doctor_dir.glob("*.json")):
        try:
            result = json.loads(path.read_text()) if not path.name.startswith(".") else None
        except (OSError, ValueError):
            continue
        if isinstance(result, dict) and isinstance(result.get("host"), str) \
                and result["host"] != exclude_host:
            found.append(result)
    return found


def _get(result: Result, probe: str, field: str) -> Any:
    return (result.get("probes") or {}).get(probe, {}).get(field)


def compare(me: Result, others: List[Result]) -> List[Result]:
    """One row per host; clocks further than CLOCK_SPREAD_SECS from the others' are flagged."""
    now = me.get("measured_at") or 0.0
    rows = [dict(host=r["host"], clock_offset_s=_get(r, "clock", "offset_s"),
                 uncertainty_s=_get(r, "clock", "uncertainty_s") or 0.0,
                 fcntl=_get(r, "fcntl", "result") or "?", across=_get(r, "fcntl_hosts", "result") or "?",
                 new_file_ms=_get(r, "new_file", "max_ms"), utime_ms=_get(r, "utime", "max_ms"),
                 age_s=now - r["measured_at"] if r.get("measured_at") else None) for r in [me] + others]
    # The file system's own clock (offset 0) votes too: of two hosts, the one off is flagged.
    middle = statistics.median([0.0] + [r["clock_offset_s"] for r in rows if r["clock_offset_s"] is not None])
    for row in rows:
        off = row["clock_offset_s"]
        row["clock_flag"] = off is not None and abs(off - middle) > CLOCK_SPREAD_SECS + row["uncertainty_s"]
    return rows


def recommend(me: Result, others: List[Result]) -> Result:
    """Options derived from every host's figures (fsmw's defaults unless they demand more)."""
    default = Options()
    everyone = [r for r in [me] + others if r.get("probes")]  # not those still running
    worst_ms = max([_get(r, k, "max_ms") or 0.0 for r in everyone for k in ("new_file", "utime")])
    lease = max(default.lease_secs, float(math.ceil(10 * worst_ms / 1000)))
    listing_ms = _get(me, "listing", "ms") or 0.0
    idle = max(default.worker_idle_sleep_secs, float(math.ceil(100 * listing_ms / 1000)),
               float(math.ceil(worst_ms / 1000)))
    across = [_get(r, "fcntl_hosts", "result") for r in everyone]
    verified = "working" in across and "local-only" not in across and \
        all(_get(r, "fcntl", "result") == "working" for r in everyone)
    return dict(
        lease_secs=lease, worker_idle_sleep_secs=idle, take_lockfile_existence_as_lock=not verified,
        why=dict(
            lease_secs=f"10x the worst delay any host saw ({worst_ms:.1f} ms; NFS attribute caches between "
            f"hosts can add up to 60 s), never below the default; heartbeats every lease/5",
            worker_idle_sleep_secs=f"an idle poll lists a directory ({listing_ms:.1f} ms here): "
            "keep polls under 1% of the time, and no faster than changes become visible",
            take_lockfile_existence_as_lock="False is safe: fcntl locks verified across hosts" if verified
            else "keep True: fcntl locks are not verified to exclude across hosts here"))


def format_text(report: Result) -> str:
    """The report as ``fsmw doctor`` prints it: probes, hosts, recommended options."""
    mount = report["mount"]
    lines = [f"fsmw doctor on {report['host']}: {report['store']} "
             f"({mount['fstype']} mounted on {mount['point']})"]
    if report["hold"]:
        lines.append(f"held {report['hold']['lock']} for {report['hold']['seconds']:g} s, so that a doctor "
                     "started meanwhile on another node could check it (--hold)")
    lines.append("")
    lines += [f"  {title:<22} {report['probes'][key]['summary']}" for key, title in TITLES.items()]
    lines += [""] + _host_lines(report["hosts"])
    rec = report["recommendations"]
    lines += ["", "recommended options"]
    for name, why in rec["why"].items():
        lines += [f"  {name}={rec[name]:g}" if name != "take_lockfile_existence_as_lock"
                  else f"  {name}={rec[name]}", f"      {why}"]
    return "\n".join(lines)


def _host_lines(hosts: List[Result]) -> List[str]:
    """The host comparison table, with a note if any clock is flagged."""
    lines = ["hosts (clock = host clock minus file-system clock; delays: max ms)",
             f"  {'host':<16} {'clock':>18} {'fcntl':<14} {'across hosts':<13} {'new name':>9} "
             f"{'new mtime':>9} {'measured':>9}"]
    for r in hosts:
        clock = "?" if r["clock_offset_s"] is None else \
            f"{r['clock_offset_s']:+.3f}+-{r['uncertainty_s']:.3f}{' !' if r['clock_flag'] else '  '}"
        age = "running" if r["age_s"] is None else f"{r['age_s']:.0f} s ago"
        lines.append(f"  {r['host']:<16} {clock:>18} {r['fcntl']:<14} {r['across']:<13} "
                     f"{_ms(r['new_file_ms']):>9} {_ms(r['utime_ms']):>9} {age:>9}")
    if any(r["clock_flag"] for r in hosts):
        lines.append(f"  ! clocks differ by more than {CLOCK_SPREAD_SECS:.0f} s: fsmw does not care "
                     "(leases use the judge's monotonic clock), but make, rsync -u and log merging do")
    return lines


def _ms(value: Optional[float]) -> str:
    return "?" if value is None else f"{value:.1f}"
