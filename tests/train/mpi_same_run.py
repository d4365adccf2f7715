"""Do two run folders hold the same run? Used by the MPI tests: one made by 1 process, one by
N processes under mpirun with the same global batch.

usage: mpi_same_run.py ONE MANY --steps S [--keys loss,kd] [--val-steps 5,10] [--val-keys val_loss]
                       [--rtol 1e-5] [--wtol 1e-5] [--same on_policy]

Checks: metrics.jsonl of both has one line per step 1..S (and one per listed val step); each
--keys / --val-keys value agrees within rtol relative (+ 1e-7 absolute, for values near 0);
--same keys agree exactly; the loss fell; both model.safetensors hold the same tensor names and
every weight agrees within wtol absolute + wtol relative, but for at most 1 in 1000 of them that
only need to agree within 10x that: AdamW divides by sqrt(v), so where a gradient element is near
0 its rounding difference moves the weight by a visible share of the learning rate (seen: one
embedding element of 16384 off by 2e-5 at lr 3e-3, all others within 2e-7). Prints the worst
differences."""
import argparse
import json
import math
import struct
import sys


def lines(d):
    return [json.loads(l) for l in open(d + "/metrics.jsonl") if l.strip()]


def by_step(rows, key):
    return {r["step"]: r[key] for r in rows if key in r}


def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        s, e = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("one")
    ap.add_argument("many")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--keys", default="loss")
    ap.add_argument("--val-steps", default="")
    ap.add_argument("--val-keys", default="val_loss")
    ap.add_argument("--same", default="")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--wtol", type=float, default=1e-5)
    a = ap.parse_args()
    fails = 0
    m1, m2 = lines(a.one), lines(a.many)
    want = {"loss": list(range(1, a.steps + 1))}
    vsteps = [int(s) for s in a.val_steps.split(",") if s]
    for k in a.val_keys.split(",") if vsteps else []:
        want[k] = vsteps
    for k in a.keys.split(","):
        want.setdefault(k, list(range(1, a.steps + 1)))
    worst = 0.0
    for k, steps in want.items():
        x, y = by_step(m1, k), by_step(m2, k)
        if sorted(x) != steps or sorted(y) != steps:
            print("%s: expected lines for steps %s, got %s (1 process) and %s (N processes)" % (k, steps, sorted(x),
                                                                                             sorted(y)))
            fails += 1
            continue
        for s in steps:
            d = abs(x[s] - y[s])
            worst = max(worst, d / (abs(x[s]) + 1e-7))
            if not math.isfinite(x[s]) or d > a.rtol * abs(x[s]) + 1e-7:
                print("step %d: %s %.9g (1 process) vs %.9g (N processes)" % (s, k, x[s], y[s]))
                fails += 1
    for k in [k for k in a.same.split(",") if k]:
        if by_step(m1, k) != by_step(m2, k):
            print("%s differs: %s vs %s" % (k, by_step(m1, k), by_step(m2, k)))
            fails += 1
    loss = by_step(m1, "loss")
    if loss and not loss[a.steps] < loss[1]:
        print("the loss did not fall: %s" % loss)
        fails += 1
    w1, w2 = tensors(a.one + "/model.safetensors"), tensors(a.many + "/model.safetensors")
    if sorted(w1) != sorted(w2):
        print("tensor names differ")
        fails += 1
    wworst, total, outliers = 0.0, 0, 0
    for k in w1:
        for p, q in zip(w1[k], w2.get(k, ())):
            d, tol = abs(p - q), a.wtol + a.wtol * abs(p)
            wworst = max(wworst, d)
            total += 1
            outliers += d > tol
            if d > 10 * tol:
                print("%s: %.9g vs %.9g" % (k, p, q))
                fails += 1
                break
    if outliers * 1000 > total:
        print("%d of %d weights differ by more than %g" % (outliers, total, a.wtol))
        fails += 1
    print("worst relative metric difference %.3g; max |weight difference| %.3g (%d above %g); final loss %.6f vs "
          "%.6f" % (worst, wworst, outliers, a.wtol, loss.get(a.steps, float("nan")), by_step(m2, "loss").get(a.steps, float("nan"))))
    sys.exit(1 if fails else 0)


main()
