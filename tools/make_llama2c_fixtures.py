#!/usr/bin/python3
"""Builds the llama2.c reference fixtures in tests/fixtures/llama2c/.

1. Two SentencePiece-style vocabularies (<unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>,
   then pieces learned by a plain BPE over a generated corpus, highest score first; characters
   seen fewer than twice are left out so that text needs the byte fallback), written as
   llama2.c's tokenizer.bin: tok320.bin (the model's) and tok1024.bin.
2. tokenizer_cases.json: test strings and their ids under both vocabularies, computed by the
   straightforward algorithm (llama2.c's encode: a dummy-prefix space, spaces as U+2581,
   characters or their byte tokens, then merge the adjacent pair whose concatenation is a
   token with the highest score, the leftmost on ties, until none is left).
3. A tiny llama2.c-style model written by hand after llama2.c's model.py (interleaved
   "complex pair" RoPE, GQA, RMSNorm, SwiGLU), in fp32 with a fixed seed, in the shared and the
   unshared-classifier variants, each in the legacy and the version-1 checkpoint formats:
   shared_legacy.bin, shared_v1.bin, unshared_legacy.bin, unshared_v1.bin.
4. logits.safetensors: a prompt's tokens (I32 [T]) and the logits of both variants (F32 [T, V]).

Run: /usr/bin/python3 tools/make_llama2c_fixtures.py   (Debian's python3-torch)
"""
import json
import math
import os
import random
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_py import write_safetensors  # noqa: E402

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "llama2c"))
SP = "\u2581"

# ---- corpus and vocabulary ---------------------------------------------------------------------

WORDS = ("once upon a time there was little girl named lily she liked to play with her ball in the park "
         "one day saw big red dog and it was very happy they played together all happily ever after "
         "tom had toy car he went home mom said you are good boy").split()
EXTRA = ["café", "naïve", "über", "日本", "中文", "Lily", "Tom", "The", "It", "!", "?", ",", ".", "'s", "3", "42"]


def corpus(n_lines, seed):
    r = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [r.choice(WORDS) if r.random() < 0.85 else r.choice(EXTRA) for _ in range(r.randint(3, 14))]
        lines.append(" ".join(words) + r.choice([".", "!", "", " ", "  "]))
    return lines


def train_pieces(lines, n_pieces):
    """Characters seen at least twice, then BPE merges by pair count (ties: the smallest pair)."""
    seqs = [list(SP + l.replace(" ", SP)) for l in lines]
    counts = {}
    for s in seqs:
        for ch in s:
            counts[ch] = counts.get(ch, 0) + 1
    chars = sorted(c for c, k in counts.items() if k >= 2)
    known, merges = set(chars), []
    while len(merges) + len(chars) < n_pieces:
        pairs = {}
        for s in seqs:
            for a, b in zip(s, s[1:]):
                if a in known and b in known:
                    pairs[(a, b)] = pairs.get((a, b), 0) + 1
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if a + b not in known:  # a piece made again by another split is not a new piece
            merges.append(a + b)
            known.add(a + b)
        for s in seqs:
            i = 0
            while i + 1 < len(s):
                if s[i] == a and s[i + 1] == b:
                    s[i:i + 2] = [a + b]
                i += 1
    return merges, chars


def vocabulary(n_vocab, lines):
    """(pieces, scores): specials and bytes score 0, merges -1, -2, ..., then the characters."""
    merges, chars = train_pieces(lines, n_vocab - 259)
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + merges + chars
    scores = [0.0] * 259 + [-1.0 - i for i in range(len(merges) + len(chars))]
    assert len(pieces) == n_vocab and len(set(pieces)) == n_vocab, (len(pieces), n_vocab)
    return pieces, scores


def write_tokenizer_bin(path, pieces, scores):
    """llama2.c's format: max_token_length, then (score, length, bytes) with U+2581 as ' '."""
    def raw(i, p):
        if i == 1:
            return b"\n<s>\n"
        if i == 2:
            return b"\n</s>\n"
        return p.replace(SP, " ").encode()
    data = [raw(i, p) for i, p in enumerate(pieces)]
    with open(path, "wb") as f:
        f.write(struct.pack("<I", max(len(d) for d in data)))
        for d, s in zip(data, scores):
            f.write(struct.pack("<fI", s, len(d)))
            f.write(d)


def encode(text, pieces, scores):
    """The straightforward algorithm, O(n^2): the reference for the C encoder."""
    if not text:
        return []
    normal = {p: i for i, p in enumerate(pieces) if i >= 259}
    ids = []
    for ch in SP + text.replace(" ", SP):
        if ch in normal:
            ids.append(normal[ch])
        else:
            ids += [3 + b for b in ch.encode()]
    while True:
        best, at = None, -1
        for k in range(len(ids) - 1):
            c = normal.get(pieces[ids[k]] + pieces[ids[k + 1]])
            if c is not None and (best is None or scores[c] > scores[best]):
                best, at = c, k
        if best is None:
            return ids
        ids[at:at + 2] = [best]


CASES = ["Once upon a time", "lily liked the big red ball.", "  two  spaces", "tab\there", "line\nbreak",
         "café über naïve", "日本語 and 中文", "emoji 😀 👍🏽 here", "Ω≈ç√∫", "the the the", "a", " ", "   ",
         "happily ever after!", "TOM AND LILY", "42 is 3 + 39", "x" * 40, "ünïcödé", "end with space "]

# ---- model (after llama2.c's model.py) ---------------------------------------------------------

DIM, HIDDEN, LAYERS, NH, NKV, V, SEQ, T = 8, 16, 2, 2, 1, 320, 16, 8
HS = DIM // NH


def make_weights(shared, gen):
    def rnd(*shape, std=0.3):
        return torch.randn(*shape, generator=gen) * std
    w = {"tok": rnd(V, DIM, std=1.0), "norm": 1 + rnd(DIM, std=0.1), "layers": []}
    for _ in range(LAYERS):
        w["layers"].append(dict(att_norm=1 + rnd(DIM, std=0.1), wq=rnd(NH * HS, DIM), wk=rnd(NKV * HS, DIM),
                                wv=rnd(NKV * HS, DIM), wo=rnd(DIM, NH * HS), ffn_norm=1 + rnd(DIM, std=0.1),
                                w1=rnd(HIDDEN, DIM), w2=rnd(DIM, HIDDEN), w3=rnd(HIDDEN, DIM)))
    w["out"] = w["tok"] if shared else rnd(V, DIM)
    return w


def freqs(dim, end, theta=10000.0):
    f = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    ang = torch.outer(torch.arange(end).float(), f)
    return torch.cos(ang), torch.sin(ang)


def rms_norm(x, weight, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotary(x, cos, sin):
    """x (T, heads, HS): dimensions 2i and 2i+1 are the real and imaginary part of pair i."""
    xr, xi = x.reshape(x.shape[:-1] + (-1, 2)).unbind(-1)
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.stack([xr * c - xi * s, xr * s + xi * c], dim=-1).flatten(2)


def forward(w, tokens):
    n = len(tokens)
    cos, sin = freqs(HS, SEQ)
    cos, sin = cos[:n], sin[:n]
    x = w["tok"][torch.tensor(tokens)]
    mask = torch.full((n, n), float("-inf")).triu(1)
    for l in w["layers"]:
        h = rms_norm(x, l["att_norm"])
        q = rotary((h @ l["wq"].T).view(n, NH, HS), cos, sin)
        k = rotary((h @ l["wk"].T).view(n, NKV, HS), cos, sin)
        v = (h @ l["wv"].T).view(n, NKV, HS)
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(HS) + mask
        o = torch.einsum("hqk,khd->qhd", att.softmax(-1), v).reshape(n, NH * HS)
        x = x + o @ l["wo"].T
        h = rms_norm(x, l["ffn_norm"])
        x = x + (torch.nn.functional.silu(h @ l["w1"].T) * (h @ l["w3"].T)) @ l["w2"].T
    return rms_norm(x, w["norm"]) @ w["out"].T


def write_legacy(path, w, shared):
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", DIM, HIDDEN, LAYERS, NH, NKV, V if shared else -V, SEQ))
        parts = [w["tok"]]
        for key in ["att_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"]:
            parts += [l[key] for l in w["layers"]]
        cos, sin = freqs(HS, SEQ)
        parts += [w["norm"], cos, sin]
        if not shared:
            parts.append(w["out"])
        for p in parts:
            f.write(p.contiguous().numpy().astype("<f4").tobytes())


def write_v1(path, w, shared):
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 0x616B3432))  # "ak42"
        f.write(struct.pack("<i", 1))
        f.write(struct.pack("<7i", DIM, HIDDEN, LAYERS, NH, NKV, V, SEQ))
        f.write(struct.pack("<B", 1 if shared else 0))
        f.write(b"\0" * (256 - f.tell()))
        parts = [l["att_norm"] for l in w["layers"]] + [l["ffn_norm"] for l in w["layers"]] + [w["norm"], w["tok"]]
        for key in ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]:
            parts += [l[key] for l in w["layers"]]
        if not shared:
            parts.append(w["out"])
        for p in parts:
            f.write(p.contiguous().numpy().astype("<f4").tobytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = corpus(600, 7)
    vocabs = {}
    for n in (320, 1024):
        vocabs[n] = vocabulary(n, lines)
        write_tokenizer_bin(os.path.join(OUT, f"tok{n}.bin"), *vocabs[n])
    cases = [{"text": s, "ids320": encode(s, *vocabs[320]), "ids1024": encode(s, *vocabs[1024])} for s in CASES]
    with open(os.path.join(OUT, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n")

    gen = torch.Generator().manual_seed(1234)
    shared = make_weights(True, gen)
    unshared = make_weights(False, gen)
    tokens = ([1] + encode("Once upon a time, lily saw a big dog", *vocabs[320]))[:T]
    assert len(tokens) == T
    with torch.no_grad():
        write_legacy(os.path.join(OUT, "shared_legacy.bin"), shared, True)
        write_v1(os.path.join(OUT, "shared_v1.bin"), shared, True)
        write_legacy(os.path.join(OUT, "unshared_legacy.bin"), unshared, False)
        write_v1(os.path.join(OUT, "unshared_v1.bin"), unshared, False)
        write_safetensors(os.path.join(OUT, "logits.safetensors"), [
            ("tokens", torch.tensor(tokens, dtype=torch.int32)),
            ("logits_shared", forward(shared, tokens)),
            ("logits_unshared", forward(unshared, tokens)),
        ])
    print("wrote", OUT, "tokens", tokens)


if __name__ == "__main__":
    main()
