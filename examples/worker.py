#!/usr/bin/env python3
"""Example worker: factorizes the integers the example master hands out.

Usage: examples/worker.py --store=STORE --worker_id=N [flags]
Exit codes: 0 the master said stop, 1 error, 3 idle too long, 4 SIGTERM/SIGINT.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import fsmw
from fsmw import flags
from factorize import factorize

FLAGS = flags.FLAGS


class FactorWorker(fsmw.Worker):
    """Reads an integer, writes its prime factors separated by spaces."""

    def process_file(self, input_path: Path, output_path: Path) -> None:
        text = Path(input_path).read_text()
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"input {input_path} is not an integer: {text[:40]!r}") from None
        Path(output_path).write_text(" ".join(map(str, factorize(number))) + "\n")


def main(argv: List[str]) -> int:
    flags.parse(argv)
    worker = FactorWorker(FLAGS.store, flags.worker_id(), **flags.worker_options())
    return int(worker.run())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
