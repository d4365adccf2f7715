#!/usr/bin/env bash
# Data parallelism changes nothing but speed: 10 steps as 2 MPI processes of --batch 2 must match
# 10 steps as 1 process of --batch 4 (the same global batch of 4 rows each step).
# Tolerance: losses within 1e-5 relative and final weights within 1e-5 absolute (plus 1e-5
# relative; see mpi_same_run.py for the rare AdamW outlier), because the all-reduce sums the two
# halves of each gradient in another order than one process does; nothing else differs.
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

python3 "$src/tests/train/mpi_same_run.py" "$tmp/one" "$tmp/two" --steps 10 --val-steps 5,10

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

# A rank that dies or hangs stops the job instead of leaving the others waiting, and the newest
# checkpoint stays whole. A constant learning rate, so a long run and a short one share the curve.
long=(--config "$src/configs/tiny.json" --data "$tmp/data" --steps 100000 --seq-len 32 --threads 1 --log-interval 1
      --eval-interval 0 --save-interval 10 --warmup 2 --lr 3e-3 --min-lr 3e-3)
# MPIRUN_PID RANK: the pid of that rank (mpirun's child on this host)
rank_pid() {
  for p in $(pgrep -P "$1"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return 0; }
  done
  return 1
}
# OUT LOG: starts a 2-process run in the background, returns once it has checkpointed step 20; sets mp
start_long() {
  ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0" \
    mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" train "${long[@]}" --batch 2 "${@:3}" --out "$1" 2> "$2" &
  mp=$!
  # any checkpoint at step 20 or later: older ones are pruned, so step 20 itself may be gone by the time
  # this looks on a fast machine
  local s
  for _ in $(seq 1 1200); do
    s=$(newest "$1" 2>/dev/null || true)
    [ -n "$s" ] && [ "$s" -ge 20 ] && return 0
    sleep 0.05
  done
  kill "$mp"; cat "$2"; echo "no checkpoint after 60 s"; exit 1
}
# LOG: mpirun must end, with an error, within 60 s
expect_job_ends() {
  for _ in $(seq 1 600); do kill -0 "$mp" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$mp" 2>/dev/null; then kill -9 "$mp"; cat "$1"; echo "the job still runs 60 s after a rank died"; exit 1; fi
  if wait "$mp"; then cat "$1"; echo "mpirun exited 0 although a rank died"; exit 1; fi
}
# PID: running (a zombie left to an init that does not reap is not)
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
newest() { ls "$1/checkpoints" | grep '^step_' | sort | tail -1 | sed 's/^step_0*//'; }

# kill -9 of rank 1: mpirun notices and stops rank 0
start_long "$tmp/killed" "$tmp/killed.log"
r0=$(rank_pid "$mp" 0) && r1=$(rank_pid "$mp" 1) || { kill "$mp"; echo "cannot find the ranks of mpirun"; exit 1; }
kill -9 "$r1"
expect_job_ends "$tmp/killed.log"
# (mpirun may exit a moment before the kill it sent lands)
for _ in $(seq 1 50); do alive "$r0" || break; sleep 0.1; done
! alive "$r0" || { grep State "/proc/$r0/status"; echo "rank 0 outlived the job by 5 s"; exit 1; }
s=$(newest "$tmp/killed")
# resumed as 1 process it continues the curve of a 1-process run that was never interrupted
"$bin" train "${long[@]}" --batch 4 --resume --stop-at $((s + 5)) --out "$tmp/killed" 2> "$tmp/killed2.log" ||
  { cat "$tmp/killed2.log"; exit 1; }
"$bin" train "${long[@]}" --batch 4 --stop-at $((s + 5)) --out "$tmp/ref" 2> "$tmp/ref.log" || { cat "$tmp/ref.log"; exit 1; }
python3 - "$tmp/ref/metrics.jsonl" "$tmp/killed/metrics.jsonl" "$s" <<'PY'
import json, sys
def losses(p):
    return {r["step"]: r["loss"] for r in map(json.loads, filter(str.strip, open(p))) if "loss" in r}
a, b, s = losses(sys.argv[1]), losses(sys.argv[2]), int(sys.argv[3])
if sorted(b) != list(range(1, s + 6)):
    print("killed and resumed run: expected loss lines for steps 1..%d, got %s" % (s + 5, sorted(b))); sys.exit(1)
bad = [t for t in a if abs(a[t] - b[t]) > 1e-5 * abs(a[t])]
for t in bad: print("step %d: %.9g (1 process) vs %.9g (2 processes, killed, resumed as 1)" % (t, a[t], b[t]))
sys.exit(1 if bad else 0)
PY
echo "a killed rank stops the job; its checkpoint of step $s resumes on the same curve"

# SIGSTOP of rank 1 (a hang mpirun cannot see): rank 0 gives up after --dist-timeout
start_long "$tmp/stopped" "$tmp/stopped.log" --dist-timeout 2
r1=$(rank_pid "$mp" 1) || { kill "$mp"; echo "cannot find rank 1 of mpirun"; exit 1; }
kill -STOP "$r1"
expect_job_ends "$tmp/stopped.log"
grep -q "distil: error: rank 0 of 2: no answer from the other processes for 2 s" "$tmp/stopped.log" ||
  { cat "$tmp/stopped.log"; echo "no timeout error from rank 0"; exit 1; }
for _ in $(seq 1 50); do alive "$r1" || break; sleep 0.1; done
! alive "$r1" || { kill -9 "$r1"; echo "the stopped rank outlived the job by 5 s"; exit 1; }
s=$(newest "$tmp/stopped")
"$bin" train "${long[@]}" --batch 4 --resume --stop-at $((s + 1)) --out "$tmp/stopped" 2> "$tmp/stopped2.log" ||
  { cat "$tmp/stopped2.log"; exit 1; }
echo "a hung rank stops the job after --dist-timeout; its checkpoint of step $s resumes"
