#!/usr/bin/env python3
"""Example master: asks the workers to factorize random integers, checks every answer.

Usage: examples/master.py --store=STORE [--num_problems=100] [--num_rounds=1] [flags]
Prints every factorization, then a summary; exits 0 only if every product checks.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Dict, List, Mapping

import fsmw
from fsmw import flags
from factorize import is_prime

FLAGS = flags.FLAGS


class FactorMaster(fsmw.Master):
    """Creates ``num_problems`` integers per round and checks the workers' factors."""

    def __init__(self, store: str, num_problems: int, num_rounds: int, **options: object) -> None:
        super().__init__(store, **options)
        self.num_problems = num_problems
        self.num_rounds = num_rounds
        self.numbers: Dict[str, int] = {}
        self.wrong: List[str] = []

    def create_input_files(self) -> None:
        rng = random.Random(self.round)
        self.numbers = {}
        for i in range(self.num_problems):
            name = f"problem{i:06d}"
            self.numbers[name] = rng.randrange(2, 10**10)
            self.create_input_file(name, f"{self.numbers[name]}\n")

    def process_output_files(self, outputs: Mapping[str, Path]) -> bool:
        for name in sorted(outputs):
            number = self.numbers[name]
            text = outputs[name].read_text()
            factors = [int(f) for f in text.split()]
            good = math.prod(factors) == number and all(is_prime(f) for f in factors)
            if not good:
                self.wrong.append(name)
            shown = " x ".join(map(str, factors)) or "(empty)"
            print(f"round {self.round} {name}: {number} = {shown}{'' if good else '   WRONG'}")
        missing = sorted(set(self.numbers) - set(outputs))
        print(f"round {self.round}: {len(outputs) - len(self.wrong)} of {len(self.numbers)} "
              f"factorizations check; {len(missing)} missing")
        return self.round < self.num_rounds


def main(argv: List[str]) -> int:
    flags.parse(argv)
    master = FactorMaster(FLAGS.store, FLAGS.num_problems, FLAGS.num_rounds, **flags.master_options())
    try:
        summary = master.run()
    except fsmw.FsmwError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0 if not master.wrong and not summary.failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
