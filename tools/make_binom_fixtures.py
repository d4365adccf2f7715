#!/usr/bin/python3
"""Builds tests/fixtures/binom_tail.txt: exact one-sided binomial tails for the watermark test.

For X ~ Bin(n, gamma) with gamma = a/d a fraction, P[X >= g] is summed exactly in integers:
    P[X >= g] = sum_{k=g}^{n} C(n, k) a^k (d - a)^(n - k) / d^n
so nothing is rounded until the natural log of the final fraction is taken (math.log of big
integers), which keeps about 15 significant digits of ln p even where p is far below 1e-308.
The z-score is (g - n gamma) / sqrt(n gamma (1 - gamma)) in exact arithmetic up to the sqrt.

Line format (after the comment lines): n g a d ln_p z
Run: /usr/bin/python3 tools/make_binom_fixtures.py   (standard library only)
"""
import math
import os
from fractions import Fraction

GAMMAS = [(1, 4), (1, 2), (1, 10), (3, 10)]
NS = [1, 2, 5, 10, 37, 100, 200, 1000, 5000, 20000]


def upper_tail(n, g, a, d):
    """(numerator, denominator) of P[X >= g]."""
    b = d - a
    total = 0
    c = math.comb(n, g)
    for k in range(g, n + 1):
        total += c * a**k * b ** (n - k)
        c = c * (n - k) // (k + 1)
    return total, d**n


def ln_fraction(num, den):
    return math.log(num) - math.log(den)


def cases(n, a, d):
    mean = Fraction(n * a, d)
    sd = math.sqrt(n * a * (d - a)) / d
    gs = {0, 1, n - 1, n, math.floor(mean), math.floor(mean) + 1}
    for k in (2, 5, 10, 20):
        gs.add(math.floor(mean + k * sd))
    return sorted(g for g in gs if 0 <= g <= n)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "binom_tail.txt")
    lines = ["# exact P[X >= g], X ~ Bin(n, a/d), from tools/make_binom_fixtures.py", "# n g a d ln_p z"]
    for a, d in GAMMAS:
        for n in NS:
            for g in cases(n, a, d):
                num, den = upper_tail(n, g, a, d)
                ln_p = ln_fraction(num, den)
                z = float(Fraction(g) - Fraction(n * a, d)) / math.sqrt(n * a * (d - a) / d**2)
                lines.append(f"{n} {g} {a} {d} {ln_p!r} {z!r}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 2} cases to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
