#!/usr/bin/env python3
"""Cross-check of distil's tokenizer against an independent implementation: OpenAI's GPT-2
encoder.py algorithm (the `regex` module for the pre-tokenizer, byte-to-unicode, BPE by merge
rank), reading the tokenizer.json that distil wrote. Not run by ctest (it needs python3-regex);
run by hand:

    tests/tokenizer/crosscheck.py BUILD/distil CORPUS [VOCAB_SIZE]

It trains with distil, encodes CORPUS (valid UTF-8) with both, and compares the ids."""
import json, os, subprocess, sys, tempfile
import regex as re

PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def load(path):
    tj = json.load(open(path, encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in tj["model"]["merges"]]
    specials = {a["content"]: a["id"] for a in tj["added_tokens"]}
    return vocab, {m: i for i, m in enumerate(merges)}, specials


def bpe(token, ranks):
    word = list(token)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        first, second = best
        new, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                new.append(first + second)
                i += 2
            else:
                new.append(word[i])
                i += 1
        word = new
    return word


def encode(text, vocab, ranks, specials):
    b2u = bytes_to_unicode()
    out = []
    parts = re.split("(" + "|".join(re.escape(s) for s in specials) + ")", text) if specials else [text]
    for part in parts:
        if part in specials:
            out.append(specials[part])
            continue
        for piece in re.findall(PAT, part):
            spelled = "".join(b2u[b] for b in piece.encode("utf-8"))
            out.extend(vocab[t] for t in bpe(spelled, ranks))
    return out


def main():
    distil, corpus = sys.argv[1], sys.argv[2]
    vocab_size = sys.argv[3] if len(sys.argv) > 3 else "4096"
    with tempfile.TemporaryDirectory() as d:
        tj = os.path.join(d, "tokenizer.json")
        subprocess.run([distil, "tokenizer", "train", "--corpus", corpus, "--vocab-size", vocab_size, "--out", tj], check=True)
        ours = [int(x) for x in subprocess.run([distil, "tokenizer", "encode", "--tokenizer", tj, corpus],
                                               check=True, capture_output=True).stdout.split()]
        vocab, ranks, specials = load(tj)
        text = open(corpus, encoding="utf-8", newline="").read()
        theirs = encode(text, vocab, ranks, specials)
    if ours == theirs:
        print(f"crosscheck: OK, {len(ours)} tokens identical")
        return 0
    i = next((k for k in range(min(len(ours), len(theirs))) if ours[k] != theirs[k]), min(len(ours), len(theirs)))
    print(f"crosscheck: MISMATCH at token {i}: ours {ours[i:i+8]} reference {theirs[i:i+8]} "
          f"(lengths {len(ours)} vs {len(theirs)})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
