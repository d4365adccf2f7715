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
#     vocabulary encodes text as before.
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
echo "test_llamacpp: distil and llama.cpp agree"
