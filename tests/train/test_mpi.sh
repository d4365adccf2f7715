#!/usr/bin/env bash
# Data parallelism changes nothing but speed: 10 steps as 2 MPI processes of --batch 2 must match
# 10 steps as 1 process of --batch 4 (the same global batch of 4 rows each step).
# Tolerance: losses within 1e-5 relative and final weights within 1e-5 absolute (plus 1e-5
# relative), because the all-reduce sums the two halves of each gradient in another order
# than one process does; nothing else differs.
# usage: test_mpi.sh DISTIL_BIN      exits 77 (skipped) when mpirun is missing
set -euo pipefail
bin="$1"
command -v mpirun >/dev/null || { echo "mpirun not found: skipped"; exit 77; }
src="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT

# a small corpus with repeated structure, then a tokenizer and token files made by distil itself
for i in $(seq 1 400); do
  echo "line $i: the quick brown fox $((i % 7)) jumps over the lazy dog $((i * 13 % 11)) and runs home."
done > "$tmp/corpus.txt"
"$bin" tokenizer train --corpus "$tmp/corpus.txt" --vocab-size 320 --out "$tmp/tokenizer.json" >/dev/null
"$bin" data prepare --corpus "$tmp/corpus.txt" --tokenizer "$tmp/tokenizer.json" --val-fraction 0.1 \
  --out "$tmp/data" >/dev/null

common=(--config "$src/configs/tiny.json" --data "$tmp/data" --steps 10 --seq-len 32 --threads 1
        --log-interval 1 --eval-interval 5 --eval-tokens 256 --save-interval 5 --warmup 2 --lr 3e-3)
"$bin" train "${common[@]}" --batch 4 --out "$tmp/one" 2> "$tmp/one.log" || { cat "$tmp/one.log"; exit 1; }
# a timeout: a rank that stopped answering must fail the test, not hang it
# (OpenMPI's own allocations outlive MPI_Finalize; under ASan they are not ours to report.)
ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0" \
  timeout 240 mpirun --allow-run-as-root --oversubscribe -np 2 \
  "$bin" train "${common[@]}" --batch 2 --out "$tmp/two" 2> "$tmp/two.log" || { cat "$tmp/two.log"; exit 1; }

python3 - "$tmp/one" "$tmp/two" <<'PY'
import json, struct, sys, math

def metrics(d):
    rows = [json.loads(l) for l in open(d + "/metrics.jsonl") if l.strip()]
    losses = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    return losses, [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]

def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__": continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        s, e = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
    return out

fails = 0
(l1, v1), (l2, v2) = metrics(sys.argv[1]), metrics(sys.argv[2])
if [s for s, _ in l1] != list(range(1, 11)) or [s for s, _ in l2] != list(range(1, 11)):
    print("expected loss lines for steps 1..10, got", [s for s, _ in l1], [s for s, _ in l2]); fails += 1
if [s for s, _ in v1] != [5, 10] or [s for s, _ in v2] != [5, 10]:
    print("expected val lines at steps 5 and 10, got", v1, v2); fails += 1
for (s, a), (_, b) in zip(l1 + v1, l2 + v2):
    if not math.isfinite(a) or abs(a - b) > 1e-5 * abs(a):
        print("step %d: loss %.9g (1 process) vs %.9g (2 processes)" % (s, a, b)); fails += 1
if l1 and not l1[-1][1] < l1[0][1]:
    print("the loss did not fall: %s" % l1); fails += 1
w1, w2 = tensors(sys.argv[1] + "/model.safetensors"), tensors(sys.argv[2] + "/model.safetensors")
if sorted(w1) != sorted(w2):
    print("tensor names differ"); fails += 1
worst = 0.0
for k in w1:
    for a, b in zip(w1[k], w2.get(k, ())):
        d = abs(a - b)
        worst = max(worst, d)
        if d > 1e-5 + 1e-5 * abs(a):
            print("%s: %.9g vs %.9g" % (k, a, b)); fails += 1
            break
print("max |weight difference| %.3g; final loss %.6f vs %.6f" % (worst, l1[-1][1], l2[-1][1]))
sys.exit(1 if fails else 0)
PY

# only rank 0 wrote the run folder: one line per step, not two
[ "$(grep -c '"loss"' "$tmp/two/metrics.jsonl")" = 10 ] ||
  { echo "metrics.jsonl of the 2-process run has duplicate lines"; exit 1; }
ls "$tmp/two/checkpoints" | grep -q step_00000010 || { echo "no final checkpoint in the 2-process run"; exit 1; }
echo "test_mpi: 2 processes match 1"

# A 2-process run stopped at step 5 and resumed as 1 process (same global batch of 4) continues
# the same loss curve: the data position is global and the optimizer state is keyed by name.
ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0" \
  timeout 240 mpirun --allow-run-as-root --oversubscribe -np 2 \
  "$bin" train "${common[@]}" --batch 2 --stop-at 5 --out "$tmp/mixed" 2> "$tmp/mixed.log" ||
  { cat "$tmp/mixed.log"; exit 1; }
# another global batch is refused before any step
if "$bin" train "${common[@]}" --batch 2 --resume --out "$tmp/mixed" 2> "$tmp/bad.log"; then
  echo "resuming with another global batch should fail"; exit 1
fi
grep -q "global batch" "$tmp/bad.log" || { echo "unexpected error:"; cat "$tmp/bad.log"; exit 1; }
"$bin" train "${common[@]}" --batch 4 --resume --out "$tmp/mixed" 2> "$tmp/mixed2.log" ||
  { cat "$tmp/mixed2.log"; exit 1; }
python3 - "$tmp/one/metrics.jsonl" "$tmp/mixed/metrics.jsonl" <<'PY'
import json, sys
def losses(p):
    return {r["step"]: r["loss"] for r in map(json.loads, filter(str.strip, open(p))) if "loss" in r}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
if sorted(b) != list(range(1, 11)):
    print("resumed run: expected loss lines for steps 1..10, got", sorted(b)); sys.exit(1)
bad = [s for s in a if abs(a[s] - b[s]) > 1e-5 * abs(a[s])]
for s in bad: print("step %d: %.9g (1 process) vs %.9g (2 processes, resumed as 1)" % (s, a[s], b[s]))
sys.exit(1 if bad else 0)
PY
echo "2 processes resumed as 1: same losses"
