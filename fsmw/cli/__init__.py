"""The ``fsmw`` command: look at and repair a run, reading (almost) only the store.

Subcommands: ``status``, ``stop``, ``requeue``, ``clean``, ``doctor``,
``report``, and the generic tasks' ``worker`` and ``run`` (``tasks``).
Errors are one line on stderr and exit code 1; a usage error is exit code 2.
This is the only place the tool's own arguments are defined (it uses argparse:
it is a command with subcommands); ``worker`` and ``run`` take the gflags of
the example scripts, from ``fsmw.flags``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from .._core.errors import FsmwError


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="fsmw", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"fsmw {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", help="counts per round, running and failed tasks, rate, ETA")
    p.add_argument("store", help="the store directory")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--watch", type=float, metavar="SECS", default=None,
                   help="refresh every SECS seconds until interrupted")
    p.add_argument("--lease", type=float, default=120.0, metavar="SECS",
                   help="heartbeat age (s) above which a claim is shown as stale (default 120)")

    p = sub.add_parser("stop", help="write the stop file: workers exit, the master returns")
    p.add_argument("store", help="the store directory")

    p = sub.add_parser("requeue", help="make failed tasks or stale claims pending again")
    p.add_argument("store", help="the store directory")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--failed", action="store_true", help="requeue tasks marked failed")
    what.add_argument("--stale", action="store_true",
                      help="watch running claims for --lease seconds; break those whose "
                           "heartbeat never moved")
    p.add_argument("--lease", type=float, default=120.0, metavar="SECS",
                   help="how long (s) a claim's heartbeat must stand still to be stale; use the "
                        "workers' lease_secs (default 120)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")

    p = sub.add_parser("clean", help="remove dead writers' temps and tokens, finished rounds' claims")
    p.add_argument("store", help="the store directory")
    p.add_argument("--age", type=float, default=3600.0, metavar="SECS",
                   help="temp files older than this (s, file-system clock) are dead (default 3600)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")

    p = sub.add_parser("doctor", help="probe what the file system under STORE supports")
    p.add_argument("store", help="the store directory (probes run in a subdirectory of it)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--hold", type=float, default=5.0, metavar="SECS",
                   help="how long to hold this host's probe lock for a doctor on another node")

    p = sub.add_parser("report", help="a self-contained HTML timeline of a run")
    p.add_argument("store", help="the store directory")
    p.add_argument("--html", required=True, metavar="FILE", help="where to write the page")
    p.add_argument("--round", type=int, default=None, help="only this round (default: all)")

    # parsed by .tasks (their flags are fsmw.flags'); here for --help
    sub.add_parser("worker", help="a generic worker for fsmw.Executor calls and fsmw run commands "
                   "(fsmw worker STORE [--flag=value ...])", add_help=False)
    sub.add_parser("run", help="run a command over the lines of a file (fsmw run STORE --tasks FILE "
                   "-- CMD [ARGS...])", add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("worker", "run"):
        from .tasks import run_or_usage
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
        return run_or_usage(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="fsmw: %(message)s")
    try:
        return _dispatch(args)
    except FsmwError as exc:
        print(f"fsmw {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "status":
        from .status import status_command
        return status_command(args)
    if args.command in ("stop", "requeue", "clean"):
        from .repair import clean_command, requeue_command, stop_command
        repairs = dict(stop=stop_command, requeue=requeue_command, clean=clean_command)
        return repairs[args.command](args)
    if args.command == "doctor":
        from .doctor import doctor_command
        return doctor_command(args)
    from .report import report_command
    return report_command(args)


if __name__ == "__main__":
    sys.exit(main())
