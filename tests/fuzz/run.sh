#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60),
# starting from tests/fuzz/seeds/<target>; crashes are written to build-fuzz/artifacts/.
# Needs clang, libclang-rt-14-dev and libomp-14-dev (clang's OpenMP).
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
CC=clang cmake -B "$build" -S "$root" -DDISTIL_FUZZ=ON -DDISTIL_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_gguf fuzz_safetensors fuzz_tokenizer_json fuzz_llama2c fuzz_request \
    fuzz_llama2c_tokenizer >/dev/null
mkdir -p "$build/artifacts"
for t in gguf safetensors tokenizer_json llama2c llama2c_tokenizer request; do
    corpus="$build/corpus/$t"
    mkdir -p "$corpus"
    dict=()
    [[ -f "$root/tests/fuzz/$t.dict" ]] && dict=(-dict="$root/tests/fuzz/$t.dict")
    echo "== fuzz_$t for ${secs}s"
    "$build/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
        "${dict[@]}" "$corpus" "$root/tests/fuzz/seeds/$t" 2>&1 | grep -E "^Done|stat::number_of_executed_units|ERROR|SUMMARY" || true
done
