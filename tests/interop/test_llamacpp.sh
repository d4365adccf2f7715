#!/usr/bin/env bash
# distil checked against llama.cpp (issue 6, item 5), through node-llama-cpp's prebuilt CPU
# binaries:
#  1. a tiny model trained on generated text, exported as GGUF f32: llama.cpp's tokenization
#     of varied strings (ASCII, accents, CJK, emoji, whitespace runs, digits, code) equals
#     distil's, and its greedy continuation of prompts equals distil's token for token (40
#     tokens each); importing the GGUF back gives the same model.safetensors, byte for byte;
#  2. the real GPT-2 (r50k_base) and cl100k_base vocabularies (tools/interop/tiktoken_to_hf.mjs)
#     on a model of a few steps, exported as GGUF: llama.cpp's "gpt-2" and "llama-bpe"
#     pre-tokenizers give distil's ids on 1,000 strings each; imported back from the GGUF, the
#     vocabulary encodes text as before;
#  3. a Qwen2 model (q/k/v biases) with a Qwen2-style tokenizer: same tokenization and greedy
#     continuation, and the GGUF round trip gives the same model.safetensors; the same model
#     exported as GGUF's qwen2 architecture (--arch qwen2: qwen2.* keys, rows not permuted) too;
#  4. a SentencePiece-style vocabulary: a random llama2.c checkpoint with the 1024-token
#     tokenizer.bin of tests/fixtures/llama2c, imported (distil import llama2c) and exported as
#     GGUF f32 (tokenizer.ggml.model "llama"): llama.cpp's tokenization of 1,000 strings and its
#     greedy continuations equal distil's; importing the GGUF back gives the same folder.
#   test_llamacpp.sh DISTIL_BIN SOURCE_DIR
# Exit 77 (ctest: skipped) when node or tools/interop/node_modules is missing.
set -euo pipefail
distil=$1
src=$2
tools="$src/tools/interop"
if ! command -v node >/dev/null || [ ! -d "$tools/node_modules/node-llama-cpp" ]; then
  echo "SKIP: needs node and node-llama-cpp (scripts/install-deps.sh runs npm ci in tools/interop)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. a trained tiny model
node "$tools/strings.mjs" corpus 4000 1 > "$tmp/corpus.txt"
"$distil" tokenizer train --corpus "$tmp/corpus.txt" --vocab-size 512 --out "$tmp/tokenizer.json"
"$distil" data prepare --corpus "$tmp/corpus.txt" --tokenizer "$tmp/tokenizer.json" --out "$tmp/data"
"$distil" train --config "$src/configs/tiny.json" --data "$tmp/data" --out "$tmp/run" --steps 300 --batch 8 \
  --seq-len 64 --lr 3e-3 --seed 1 --log-interval 100 --eval-interval 300 --save-interval 0
"$distil" export gguf --model "$tmp/run" --out "$tmp/model.gguf" --dtype f32
node "$tools/llamacpp_check.mjs" "$distil" "$tmp/run" "$tmp/model.gguf" "$tmp" 40 300
"$distil" import gguf --file "$tmp/model.gguf" --out "$tmp/imported"
cmp "$tmp/run/model.safetensors" "$tmp/imported/model.safetensors"
cmp "$tmp/run/tokenizer.json" "$tmp/imported/tokenizer.json"

# 2. real vocabularies: the model is there to carry them (vocab rounded up to a multiple of 64)
node "$tools/strings.mjs" corpus 300 3 > "$tmp/small.txt"
node "$tools/strings.mjs" text 2000 4 > "$tmp/text.txt"
for enc in r50k_base:50304 cl100k_base:100288; do
  name=${enc%%:*} V=${enc##*:}
  node "$tools/tiktoken_to_hf.mjs" "$name" "$tmp/$name.json"
  "$distil" data prepare --corpus "$tmp/small.txt" --tokenizer "$tmp/$name.json" --out "$tmp/data_$name"
  cat > "$tmp/$name.config.json" <<JSON
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": $V, "hidden_size": 16,
 "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
 "max_position_embeddings": 64, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "hidden_act": "silu", "torch_dtype": "float32"}
JSON
  "$distil" train --config "$tmp/$name.config.json" --data "$tmp/data_$name" --out "$tmp/run_$name" --steps 2 \
    --batch 1 --seq-len 32 --eval-interval 0 --save-interval 0
  "$distil" export gguf --model "$tmp/run_$name" --out "$tmp/$name.gguf"
  echo "$name:"
  node "$tools/llamacpp_check.mjs" "$distil" "$tmp/run_$name" "$tmp/$name.gguf" "$tmp" 0 1000
  "$distil" import gguf --file "$tmp/$name.gguf" --out "$tmp/back_$name"
  "$distil" tokenizer encode --tokenizer "$tmp/$name.json" "$tmp/text.txt" > "$tmp/ids_before"
  "$distil" tokenizer encode --tokenizer "$tmp/back_$name/tokenizer.json" "$tmp/text.txt" > "$tmp/ids_after"
  cmp "$tmp/ids_before" "$tmp/ids_after"
done
# 3. Qwen2: the Qwen2-style tokenizer of tests/fixtures/tiny_qwen2 (GGUF pre-tokenizer "qwen2") and a
#    Qwen2 config (q/k/v biases) trained briefly; trained biases are too small to change a greedy
#    token, so they are set to sin(0.7 k) first (the greedy text then differs from the unbiased
#    model's), and llama.cpp must give the same tokens; the GGUF round trip is byte-identical.
"$distil" data prepare --corpus "$tmp/corpus.txt" --tokenizer "$src/tests/fixtures/tiny_qwen2/tokenizer.json" \
  --out "$tmp/data_qwen2"
cat > "$tmp/qwen2.config.json" <<JSON
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 272, "hidden_size": 64,
 "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "hidden_act": "silu", "use_sliding_window": false, "rope_scaling": null}
JSON
"$distil" train --config "$tmp/qwen2.config.json" --data "$tmp/data_qwen2" --out "$tmp/run_qwen2" --steps 200 \
  --batch 8 --seq-len 64 --lr 3e-3 --seed 1 --log-interval 100 --eval-interval 200 --save-interval 0
node -e '
const fs = require("fs"), f = process.argv[1], b = fs.readFileSync(f), n = Number(b.readBigUInt64LE(0));
let k = 0;
for (const [name, t] of Object.entries(JSON.parse(b.subarray(8, 8 + n).toString())))
  if (name.endsWith(".bias"))
    for (let o = 8 + n + t.data_offsets[0]; o < 8 + n + t.data_offsets[1]; o += 4) b.writeFloatLE(Math.sin(0.7 * k++), o);
fs.writeFileSync(f, b);' "$tmp/run_qwen2/model.safetensors"
"$distil" export gguf --model "$tmp/run_qwen2" --out "$tmp/qwen2.gguf" --dtype f32
node "$tools/llamacpp_check.mjs" "$distil" "$tmp/run_qwen2" "$tmp/qwen2.gguf" "$tmp" 40 300
"$distil" import gguf --file "$tmp/qwen2.gguf" --out "$tmp/qwen2_back"
cmp "$tmp/run_qwen2/model.safetensors" "$tmp/qwen2_back/model.safetensors"
"$distil" export gguf --model "$tmp/run_qwen2" --out "$tmp/qwen2_arch.gguf" --dtype f32 --arch qwen2
node "$tools/llamacpp_check.mjs" "$distil" "$tmp/run_qwen2" "$tmp/qwen2_arch.gguf" "$tmp" 40 300
"$distil" import gguf --file "$tmp/qwen2_arch.gguf" --out "$tmp/qwen2_arch_back"
cmp "$tmp/run_qwen2/model.safetensors" "$tmp/qwen2_arch_back/model.safetensors"
# 4. a llama2.c model (random weights written here: dim 16, 2 layers, GQA, seq_len 128)
node -e '
const [dim, hidden, layers, heads, kv, vocab, seq] = [16, 32, 2, 4, 2, 1024, 128], hs = dim / heads;
const n = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv * hs * dim + 3 * hidden * dim) + dim + seq * hs;
const buf = Buffer.alloc(28 + 4 * n);
[dim, hidden, layers, heads, kv, vocab, seq].forEach((v, i) => buf.writeInt32LE(v, 4 * i));
let s = 12345;
for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; buf.writeFloatLE(s / 2147483648 - 0.5, 28 + 4 * i); }
require("fs").writeFileSync(process.argv[1], buf);' "$tmp/l2c.bin"
"$distil" import llama2c --checkpoint "$tmp/l2c.bin" --tokenizer "$src/tests/fixtures/llama2c/tok1024.bin" --out "$tmp/l2c"
"$distil" export gguf --model "$tmp/l2c" --out "$tmp/l2c.gguf" --dtype f32
node "$tools/llamacpp_check.mjs" "$distil" "$tmp/l2c" "$tmp/l2c.gguf" "$tmp" 20 1000
"$distil" import gguf --file "$tmp/l2c.gguf" --out "$tmp/l2c_back"
cmp "$tmp/l2c/model.safetensors" "$tmp/l2c_back/model.safetensors"
cmp "$tmp/l2c/tokenizer.json" "$tmp/l2c_back/tokenizer.json"
echo "test_llamacpp: distil and llama.cpp agree"
