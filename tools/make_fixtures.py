#!/usr/bin/python3
"""Builds the PyTorch reference fixtures for the C model tests.

A tiny Llama (same maths as Hugging Face LlamaForCausalLM in fp32, written in plain torch since
transformers is not a dependency) with a fixed seed; for each fixture folder under
tests/fixtures/ it writes config.json and fixture.safetensors holding:
  every parameter under its HF name, inputs and targets (I32, one target = -1: ignored),
  logits, loss ([1]), grad.<name> for every parameter, and adamw_losses (the loss before each of
  10 AdamW steps: lr 1e-2, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on 2-D params only,
  clip_grad_norm_ 1.0, same batch every step).

Run: /usr/bin/python3 tools/make_fixtures.py   (Debian's python3-torch)
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_py import write_safetensors  # noqa: E402

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))

# Small enough to keep each fixture under ~80 KB, big enough that every feature matters:
# GQA (NH/NKV = 2), head size 6 (three rope frequencies), two layers, an ignored target.
FIXTURES = [
    dict(name="tiny_untied", seed=1, tied=False, rope_theta=10000.0, rms_norm_eps=1e-6),
    dict(name="tiny_tied", seed=2, tied=True, rope_theta=500.0, rms_norm_eps=1e-5),
]
V, C, L, NH, NKV, F, MAX_T, B, T = 37, 24, 2, 4, 2, 32, 16, 2, 8
HS = C // NH


def param_shapes(tied):
    shapes = [("model.embed_tokens.weight", (V, C))]
    for l in range(L):
        p = f"model.layers.{l}."
        shapes += [
            (p + "input_layernorm.weight", (C,)),
            (p + "self_attn.q_proj.weight", (NH * HS, C)),
            (p + "self_attn.k_proj.weight", (NKV * HS, C)),
            (p + "self_attn.v_proj.weight", (NKV * HS, C)),
            (p + "self_attn.o_proj.weight", (C, NH * HS)),
            (p + "post_attention_layernorm.weight", (C,)),
            (p + "mlp.gate_proj.weight", (F, C)),
            (p + "mlp.up_proj.weight", (F, C)),
            (p + "mlp.down_proj.weight", (C, F)),
        ]
    shapes.append(("model.norm.weight", (C,)))
    if not tied:
        shapes.append(("lm_head.weight", (V, C)))
    return shapes


def init_params(tied, gen):
    # Larger than usual init (std 0.2, norm weights near 1 but not 1) so that every term of
    # the forward moves the logits visibly and a missing piece cannot hide in the noise.
    params = {}
    for name, shape in param_shapes(tied):
        if len(shape) == 1:
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            t = 0.2 * torch.randn(shape, generator=gen)
        params[name] = t.float().requires_grad_(True)
    return params


def rmsnorm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rope_cos_sin(theta, t_len):
    # HF LlamaRotaryEmbedding: float32 inv_freq, angles = outer(positions, inv_freq)
    inv_freq = 1.0 / (theta ** (torch.arange(0, HS, 2).float() / HS))
    freqs = torch.outer(torch.arange(t_len).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : HS // 2], x[..., HS // 2:]
    return torch.cat((-x2, x1), dim=-1)


def forward(p, inputs, cfg):
    eps = cfg["rms_norm_eps"]
    x = p["model.embed_tokens.weight"][inputs]  # (B,T,C)
    bsz, t_len = inputs.shape
    cos, sin = rope_cos_sin(cfg["rope_theta"], t_len)
    mask = torch.full((t_len, t_len), float("-inf")).triu(1)
    for l in range(L):
        pre = f"model.layers.{l}."
        h = rmsnorm(x, p[pre + "input_layernorm.weight"], eps)
        q = (h @ p[pre + "self_attn.q_proj.weight"].T).view(bsz, t_len, NH, HS).transpose(1, 2)
        k = (h @ p[pre + "self_attn.k_proj.weight"].T).view(bsz, t_len, NKV, HS).transpose(1, 2)
        v = (h @ p[pre + "self_attn.v_proj.weight"].T).view(bsz, t_len, NKV, HS).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(NH // NKV, dim=1)  # query head h reads kv head h // (NH/NKV)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HS) + mask
        y = torch.softmax(att, dim=-1) @ v  # (B,NH,T,HS)
        y = y.transpose(1, 2).reshape(bsz, t_len, C)
        x = x + y @ p[pre + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, p[pre + "post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(h @ p[pre + "mlp.gate_proj.weight"].T)
        x = x + (g * (h @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T
    x = rmsnorm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ head.T


def loss_of(logits, targets):
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1)


def adamw_losses(p, inputs, targets, cfg, steps=10):
    params = list(p.values())
    decay = [t for t in params if t.dim() == 2]
    no_decay = [t for t in params if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_of(forward(p, inputs, cfg), targets)
        out.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return torch.tensor(out)


def make(fx):
    torch.manual_seed(fx["seed"])
    gen = torch.Generator().manual_seed(fx["seed"])
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": C,
        "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": NKV,
        "max_position_embeddings": MAX_T, "rms_norm_eps": fx["rms_norm_eps"], "rope_theta": fx["rope_theta"],
        "tie_word_embeddings": fx["tied"], "hidden_act": "silu", "torch_dtype": "float32",
    }
    p = init_params(fx["tied"], gen)
    inputs = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    targets[1, 3] = -1
    logits = forward(p, inputs, cfg)
    loss = loss_of(logits, targets)
    loss.backward()
    tensors = [(n, t) for n, t in p.items()]
    tensors += [("inputs", inputs.int()), ("targets", targets.int()), ("logits", logits),
                ("loss", loss.reshape(1))]
    tensors += [("grad." + n, t.grad) for n, t in p.items()]
    for t in p.values():
        t.grad = None
    fresh = {n: t.detach().clone().requires_grad_(True) for n, t in p.items()}
    tensors.append(("adamw_losses", adamw_losses(fresh, inputs, targets, cfg)))
    d = os.path.join(OUT, fx["name"])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(d, "fixture.safetensors"), tensors)
    print(f"{d}: loss {loss.item():.6f}, adamw {tensors[-1][1][0]:.4f} -> {tensors[-1][1][-1]:.4f}",
          file=sys.stderr)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for fx in FIXTURES:
        make(fx)
