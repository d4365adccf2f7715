#!/usr/bin/python3
"""Builds tests/fixtures/tiny_qwen2/: a tiny Qwen2 model saved the way Hugging Face saves one,
and the PyTorch reference numbers for it.

The folder is what `distil import hf` and every command taking a model folder must read:
  config.json        Qwen2ForCausalLM keys (use_sliding_window false, rope_scaling null, ...),
                     vocab_size padded past the tokenizer as Qwen's is
  model.safetensors.index.json + model-0000{1,2}-of-00002.safetensors: BF16 weights in two shards
  tokenizer.json     a byte-level BPE in Qwen2's spelling: NFC normalizer, Split with Qwen2's regex
                     then ByteLevel(use_regex false), special tokens only in added_tokens
and fixture.safetensors (F32) with inputs, targets (one -1: ignored), logits, loss ([1]) and
grad.<name> for every parameter, the q/k/v biases included.

The model is Qwen2 (Llama plus biases on q_proj, k_proj, v_proj), written in plain torch since
transformers is not a dependency. Its parameters are rounded to bfloat16 first and the reference
runs in float32 on the rounded values, so the C side, which widens BF16 to F32 exactly, sees
the same numbers: fp32-against-fp32 tolerances apply.

Run: /usr/bin/python3 tools/make_qwen_fixtures.py   (Debian's python3-torch)
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_py import write_safetensors  # noqa: E402

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                                    "tiny_qwen2"))

# GQA (NH/NKV = 2), head size 8 (four rope frequencies), two layers, tied embeddings (as the
# small Qwen2 models are), a vocabulary padded by 6 ids past the tokenizer's 266.
C, L, NH, NKV, F, MAX_T, B, T = 16, 2, 2, 1, 24, 32, 2, 8
HS = C // NH
ROPE_THETA, EPS = 500.0, 1e-6
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
# rank order; the merged tokens get ids 256, 257, ... in this order
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("1", "2"), ("i", "n"), ("Ġ", "a"), ("t", "he")]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
N_TOK = 256 + len(MERGES) + len(SPECIALS)
V = N_TOK + 6


def byte_alphabet():
    """GPT-2's byte -> printable character map, in its order (token id = position)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    order = keep + [b for b in range(256) if b not in keep]
    for b in order:
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def tokenizer_json():
    vocab = {ch: i for i, ch in enumerate(byte_alphabet())}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    bytelevel = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    added = [{"id": 256 + len(MERGES) + k, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for k, s in enumerate(SPECIALS)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
            bytelevel]},
        "post_processor": bytelevel, "decoder": bytelevel,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in MERGES]},
    }


def config_json():
    return {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": N_TOK - 3,
        "eos_token_id": N_TOK - 1, "hidden_act": "silu", "hidden_size": C, "initializer_range": 0.02,
        "intermediate_size": F, "max_position_embeddings": MAX_T, "max_window_layers": L, "model_type": "qwen2",
        "num_attention_heads": NH, "num_hidden_layers": L, "num_key_value_heads": NKV, "rms_norm_eps": EPS,
        "rope_scaling": None, "rope_theta": ROPE_THETA, "sliding_window": MAX_T, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": True,
        "use_sliding_window": False, "vocab_size": V,
    }


def param_shapes():
    shapes = [("model.embed_tokens.weight", (V, C))]
    for l in range(L):
        p = f"model.layers.{l}."
        shapes += [
            (p + "input_layernorm.weight", (C,)),
            (p + "self_attn.q_proj.weight", (NH * HS, C)),
            (p + "self_attn.q_proj.bias", (NH * HS,)),
            (p + "self_attn.k_proj.weight", (NKV * HS, C)),
            (p + "self_attn.k_proj.bias", (NKV * HS,)),
            (p + "self_attn.v_proj.weight", (NKV * HS, C)),
            (p + "self_attn.v_proj.bias", (NKV * HS,)),
            (p + "self_attn.o_proj.weight", (C, NH * HS)),
            (p + "post_attention_layernorm.weight", (C,)),
            (p + "mlp.gate_proj.weight", (F, C)),
            (p + "mlp.up_proj.weight", (F, C)),
            (p + "mlp.down_proj.weight", (C, F)),
        ]
    shapes.append(("model.norm.weight", (C,)))
    return shapes


def init_params(gen):
    # std 0.2 matrices, norm weights near 1, biases of 0.5 so they move q, k and v visibly;
    # then rounded to bfloat16, the dtype they are saved in
    params = {}
    for name, shape in param_shapes():
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.5 * torch.randn(shape, generator=gen)
        else:
            t = 0.2 * torch.randn(shape, generator=gen)
        params[name] = t.to(torch.bfloat16).float().requires_grad_(True)
    return params


def rmsnorm(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rotate_half(x):
    return torch.cat((-x[..., HS // 2:], x[..., : HS // 2]), dim=-1)


def forward(p, inputs):
    x = p["model.embed_tokens.weight"][inputs]  # (B,T,C)
    bsz, t_len = inputs.shape
    inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, HS, 2).float() / HS))
    emb = torch.outer(torch.arange(t_len).float(), inv_freq)
    emb = torch.cat((emb, emb), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((t_len, t_len), float("-inf")).triu(1)
    for l in range(L):
        pre = f"model.layers.{l}.self_attn."
        h = rmsnorm(x, p[f"model.layers.{l}.input_layernorm.weight"])
        # Qwen2: h W^T + b for q, k and v
        q, k, v = [(h @ p[pre + n + ".weight"].T + p[pre + n + ".bias"]).view(bsz, t_len, heads, HS).transpose(1, 2)
                   for n, heads in (("q_proj", NH), ("k_proj", NKV), ("v_proj", NKV))]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HS) + mask
        y = (torch.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(bsz, t_len, C)
        x = x + y @ p[pre + "o_proj.weight"].T  # no o_proj bias in Qwen2
        mlp = f"model.layers.{l}.mlp."
        h = rmsnorm(x, p[f"model.layers.{l}.post_attention_layernorm.weight"])
        g = torch.nn.functional.silu(h @ p[mlp + "gate_proj.weight"].T)
        x = x + (g * (h @ p[mlp + "up_proj.weight"].T)) @ p[mlp + "down_proj.weight"].T
    return rmsnorm(x, p["model.norm.weight"]) @ p["model.embed_tokens.weight"].T


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_shards(p):
    """Layer 0 and the embeddings in the first shard, the rest in the second, as BF16."""
    names = list(p)
    split = names.index("model.layers.1.input_layernorm.weight")
    shards = {"model-00001-of-00002.safetensors": names[:split], "model-00002-of-00002.safetensors": names[split:]}
    weight_map = {}
    for file, part in shards.items():
        write_safetensors(os.path.join(OUT, file), [(n, p[n].detach().to(torch.bfloat16)) for n in part],
                          {"format": "pt"})
        weight_map.update({n: file for n in part})
    total = 2 * sum(t.numel() for t in p.values())
    write_json("model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})


def main():
    torch.set_num_threads(1)
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(3)
    p = init_params(gen)
    inputs = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    targets[0, 5] = -1
    logits = forward(p, inputs)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    os.makedirs(OUT, exist_ok=True)
    write_json("config.json", config_json())
    write_json("tokenizer.json", tokenizer_json())
    write_shards(p)
    tensors = [("inputs", inputs.int()), ("targets", targets.int()), ("logits", logits), ("loss", loss.reshape(1))]
    tensors += [("grad." + n, t.grad) for n, t in p.items()]
    write_safetensors(os.path.join(OUT, "fixture.safetensors"), tensors)
    print(f"{OUT}: loss {loss.item():.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
