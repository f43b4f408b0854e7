"""The example application: factorize integers into primes (shared by both scripts)."""

from __future__ import annotations

from typing import List


def factorize(n: int) -> List[int]:
    """Prime factors of ``n`` >= 2 in ascending order, by trial division."""
    if n < 2:
        raise ValueError(f"cannot factorize {n}: need an integer >= 2")
    factors: List[int] = []
    for p in (2, 3):
        while n % p == 0:
            factors.append(p)
            n //= p
    p = 5
    while p * p <= n:
        for q in (p, p + 2):
            while n % q == 0:
                factors.append(q)
                n //= q
        p += 6
    if n > 1:
        factors.append(n)
    return factors


def is_prime(n: int) -> bool:
    return n >= 2 and factorize(n) == [n]
