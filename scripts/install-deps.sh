#!/usr/bin/env bash
# Installs what distil needs on Debian 12 (apt-get; run as root or with sudo available), and the
# default demo corpus: the King James Bible from Debian's bible-kjv package, written once to
# $DISTIL_DATA_DIR/kjv.txt (default /usr/local/share/distil, or ~/.local/share/distil when not root).
#   --bench   also install python3-torch (the PyTorch peer in bench/ and tools/make_fixtures.py)
set -euo pipefail

want_torch=0
for a in "$@"; do
  case "$a" in
    --bench) want_torch=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

pkgs=(build-essential cmake pkg-config libopenblas-dev libpcre2-dev libjansson-dev libmicrohttpd-dev libsqlite3-dev libsodium-dev libcurl4-openssl-dev libopenmpi-dev openmpi-bin bible-kjv)
[ "$want_torch" = 1 ] && pkgs+=(python3-torch python3-numpy libopenblas0)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$(id -u)" = 0 ]; then default_dir=/usr/local/share/distil; else default_dir="$HOME/.local/share/distil"; fi
data_dir="${DISTIL_DATA_DIR:-$default_dir}"
if [ ! -s "$data_dir/kjv.txt" ]; then
  mkdir -p "$data_dir"
  bible gen1:1-rev22:21 > "$data_dir/kjv.txt.tmp"
  mv "$data_dir/kjv.txt.tmp" "$data_dir/kjv.txt"
  echo "install-deps.sh: wrote the demo corpus $data_dir/kjv.txt ($(wc -c < "$data_dir/kjv.txt") bytes)"
fi

# Some tests run npm packages; without them those tests are skipped (never counted as passed), so
# a failure here (no network) is reported and not fatal. node-llama-cpp needs node >= 20.
if ! command -v npm >/dev/null; then
  echo "install-deps.sh: installing nodejs npm"
  { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; } ||
    echo "install-deps.sh: could not install nodejs npm; the interop tests will be skipped" >&2
fi
# Pinned by package-lock.json: llama.cpp and real tokenizers (tools/interop), the OpenAI Node
# client (tests/serve/openai). `npm install --no-save`, not `npm ci`: npm 11's ci refuses a lock
# that leaves out node-llama-cpp's binaries for other platforms, which npm itself left out.
root="$(cd "$(dirname "$0")/.." && pwd)"
for dir in "$root/tools/interop" "$root/tests/serve/openai"; do
  if command -v npm >/dev/null && [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm install --no-save --no-audit --no-fund --loglevel=error) ||
      echo "install-deps.sh: npm install in $dir failed; the tests that need it will be skipped" >&2
  fi
done
