#!/usr/bin/env bash
# Distillation under mpirun is the run one process makes with the same global batch: 8 steps as
# 2 processes of --batch 2 against 8 steps as 1 process of --batch 4, for
#   - a live teacher (each rank runs it on its own 2 rows),
#   - a top-k teacher cache (each rank reads the rows of its own windows),
#   - generated batches: --seq-kd with on-policy --lmbda 0.5 (each generated row is sampled with
#     the rng of its index in the global batch, so the same rows are written on any world size),
#   - a harvest (--harvest): completions of different lengths, so the ranks' rows hold different
#     numbers of targets and each rank's mean must be weighted by its count; rank 0 alone writes
#     RUN/harvest/, which must be the one process's.
# Tolerance: losses, kd, ce and validation figures within 1e-5 relative (+1e-7 absolute) and final
# weights within 1e-5 absolute (+1e-5 relative): the all-reduce sums the halves of each gradient
# in another order than one process does; nothing else differs. on_policy agrees exactly.
# usage: test_mpi_distill.sh DISTIL_BIN      exits 77 (skipped) when mpirun is missing
set -euo pipefail
bin="$1"
command -v mpirun >/dev/null || { echo "mpirun not found: skipped"; exit 77; }
src="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
# (OpenMPI's own allocations outlive MPI_Finalize; under ASan they are not ours to report.)
mpi() {
  ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0" \
    timeout 240 mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" "$@"
}

for i in $(seq 1 400); do
  echo "line $i: the quick brown fox $((i % 7)) jumps over the lazy dog $((i * 13 % 11)) and runs home."
done > "$tmp/corpus.txt"
"$bin" tokenizer train --corpus "$tmp/corpus.txt" --vocab-size 320 --out "$tmp/tokenizer.json" >/dev/null 2>&1
"$bin" data prepare --corpus "$tmp/corpus.txt" --tokenizer "$tmp/tokenizer.json" --val-fraction 0.1 \
  --out "$tmp/data" >/dev/null 2>&1
# the teacher: configs/tiny.json trained briefly; the student: narrower, one layer
"$bin" train --config "$src/configs/tiny.json" --data "$tmp/data" --steps 30 --batch 4 --seq-len 32 --threads 1 \
  --eval-interval 0 --warmup 2 --lr 3e-3 --out "$tmp/teacher" 2> "$tmp/teacher.log" || { cat "$tmp/teacher.log"; exit 1; }
sed -e 's/"hidden_size": 64/"hidden_size": 32/' -e 's/"intermediate_size": 176/"intermediate_size": 64/' \
    -e 's/"num_hidden_layers": 2/"num_hidden_layers": 1/' "$src/configs/tiny.json" > "$tmp/student.json"
grep -q '"hidden_size": 32' "$tmp/student.json" || { echo "could not derive the student config"; exit 1; }
"$bin" teacher-cache --teacher "$tmp/teacher" --data "$tmp/data" --top-k 8 --seq-len 32 --threads 1 \
  --out "$tmp/cache.bin" 2> "$tmp/cache.log" || { cat "$tmp/cache.log"; exit 1; }

common=(--student "$tmp/student.json" --data "$tmp/data" --steps 8 --seq-len 32 --threads 1 --log-interval 1
        --eval-interval 4 --eval-tokens 256 --save-interval 4 --warmup 2 --lr 3e-3)
# NAME FLAGS...: the same distillation as 1 process (batch 4) and as 2 processes (batch 2 each)
both() {
  local name="$1"; shift
  "$bin" distill "${common[@]}" "$@" --batch 4 --out "$tmp/$name-1" 2> "$tmp/$name-1.log" ||
    { cat "$tmp/$name-1.log"; exit 1; }
  mpi distill "${common[@]}" "$@" --batch 2 --out "$tmp/$name-2" 2> "$tmp/$name-2.log" ||
    { cat "$tmp/$name-2.log"; exit 1; }
  [ "$(grep -c '"loss"' "$tmp/$name-2/metrics.jsonl")" = 8 ] ||
    { echo "$name: metrics.jsonl of the 2-process run has duplicate lines"; exit 1; }
}

both live --teacher "$tmp/teacher" --loss jsd --ce-weight 0.2
python3 "$src/tests/train/mpi_same_run.py" "$tmp/live-1" "$tmp/live-2" --steps 8 --keys loss,kd,ce \
  --val-steps 4,8 --val-keys val_loss,val_kl,val_agreement
echo "live teacher: 2 processes match 1"

both cache --cache "$tmp/cache.bin"
python3 "$src/tests/train/mpi_same_run.py" "$tmp/cache-1" "$tmp/cache-2" --steps 8 --keys loss,kd \
  --val-steps 4,8 --val-keys val_loss
echo "top-k cache: 2 processes match 1"

both gen --teacher "$tmp/teacher" --seq-kd --lmbda 0.5 --prompt-len 8
python3 "$src/tests/train/mpi_same_run.py" "$tmp/gen-1" "$tmp/gen-2" --steps 8 --keys loss,kd \
  --val-steps 4,8 --val-keys val_loss,val_kl --same on_policy
python3 - "$tmp/gen-1/metrics.jsonl" <<'PY'
import json, sys
share = [r["on_policy"] for r in map(json.loads, filter(str.strip, open(sys.argv[1]))) if "on_policy" in r]
# both kinds of generated batch happened (lmbda 0.5 over 8 draws), or the test shows too little
sys.exit(0 if 0 < sum(share) < len(share) else "on_policy shares %s: expected both kinds" % share)
PY
echo "seq-kd and on-policy batches: 2 processes match 1"

# A harvest written here: prompts cut from the corpus lines, completions of 3 to 30 characters,
# each character a sampled token (every byte is a token of the byte-level BPE, so every position
# lines up) with its log-probability and two alternatives.
python3 - "$tmp/corpus.txt" > "$tmp/harvest.jsonl" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    line = line.rstrip("\n")
    cut = 8 + i % 5
    comp = line[cut:cut + 3 + (i * 7) % 28]
    top = []
    for j, c in enumerate(comp):
        alts = {c: -0.3}  # the sampled character first, then two others unless they are it
        for a, p in ((chr(97 + (i + j) % 26), -2.5), (chr(48 + j % 10), -3.0)):
            alts.setdefault(a, p)
        top.append(alts)
    lp = {"tokens": list(comp), "token_logprobs": [-0.3] * len(comp), "top_logprobs": top}
    print(json.dumps({"prompt": line[:cut], "completion": comp, "finish_reason": "length", "logprobs": lp}))
PY
hv=(--harvest "$tmp/harvest.jsonl" --student "$tmp/student.json" --tokenizer "$tmp/tokenizer.json" --steps 8
    --seq-len 32 --threads 1 --log-interval 1 --eval-interval 4 --save-interval 4 --warmup 2 --lr 3e-3
    --ce-weight 0.2)
"$bin" distill "${hv[@]}" --batch 4 --out "$tmp/harvest-1" 2> "$tmp/harvest-1.log" || { cat "$tmp/harvest-1.log"; exit 1; }
mpi distill "${hv[@]}" --batch 2 --out "$tmp/harvest-2" 2> "$tmp/harvest-2.log" || { cat "$tmp/harvest-2.log"; exit 1; }
for f in train.bin val.bin tokenizer.json; do
  cmp -s "$tmp/harvest-1/harvest/$f" "$tmp/harvest-2/harvest/$f" || { echo "harvest/$f differs"; exit 1; }
done
python3 "$src/tests/train/mpi_same_run.py" "$tmp/harvest-1" "$tmp/harvest-2" --steps 8 --keys loss,kd,ce,topk_share \
  --val-steps 4,8 --val-keys val_loss,val_agreement
echo "harvest: 2 processes match 1"
# rank 0 cannot write RUN/harvest/ (a file is in the way): every rank stops with an error, none waits
mkdir -p "$tmp/harvest-bad" && touch "$tmp/harvest-bad/harvest"
if mpi distill "${hv[@]}" --batch 2 --out "$tmp/harvest-bad" 2> "$tmp/harvest-bad.log"; then
  echo "a run whose harvest folder cannot be written succeeded"; exit 1
fi
grep -q "distil: error: " "$tmp/harvest-bad.log" || { cat "$tmp/harvest-bad.log"; exit 1; }
echo "harvest: a folder rank 0 cannot write stops every rank"
