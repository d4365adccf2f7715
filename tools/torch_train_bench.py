#!/usr/bin/python3
"""PyTorch side of bench/train_throughput: the same Llama model (plain torch, fp32, HF maths),
random tokens, forward + backward + clip_grad_norm_(1.0) + AdamW per step, warm-up excluded.
Prints one JSON line: {"torch_tokens_per_s": ..., "step_ms": ..., "threads": ...}.

Usage: /usr/bin/python3 tools/torch_train_bench.py [--config configs/bench-5m.json] [--threads 2]
       [--batch 8] [--seq 256] [--steps 10] [--warmup 2]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as Fn


class RMSNorm(nn.Module):
    def __init__(self, c, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, F = cfg["hidden_size"], cfg["intermediate_size"]
        self.nh, self.nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hs = C // self.nh
        eps = cfg["rms_norm_eps"]
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(C, eps), RMSNorm(C, eps)
        self.q_proj = nn.Linear(C, self.nh * self.hs, bias=False)
        self.k_proj = nn.Linear(C, self.nkv * self.hs, bias=False)
        self.v_proj = nn.Linear(C, self.nkv * self.hs, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)
        self.gate_proj = nn.Linear(C, F, bias=False)
        self.up_proj = nn.Linear(C, F, bias=False)
        self.down_proj = nn.Linear(F, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.nh, self.hs).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.nkv, self.hs).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.nkv, self.hs).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.nh // self.nkv, dim=1)
        v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(self.hs) + mask, dim=-1)
        x = x + self.o_proj((att @ v).transpose(1, 2).reshape(B, T, C))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(Fn.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, V = cfg["hidden_size"], cfg["vocab_size"]
        self.embed_tokens = nn.Embedding(V, C)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(C, cfg["rms_norm_eps"])
        self.lm_head = nn.Linear(C, V, bias=False)
        if cfg.get("tie_word_embeddings", False):
            self.lm_head.weight = self.embed_tokens.weight
        hs = C // cfg["num_attention_heads"]
        theta = cfg.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, hs, 2).float() / hs))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        freqs = torch.outer(torch.arange(T).float(), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.embed_tokens(idx)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/bench-5m.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)  # Debian's torch may default to one thread
    torch.manual_seed(0)
    with open(a.config) as f:
        cfg = json.load(f)
    model = Llama(cfg)
    params = list(model.parameters())
    decay = [p for p in params if p.dim() == 2]
    no_decay = [p for p in params if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    V = cfg["vocab_size"]
    tok = torch.randint(0, V, (a.batch, a.seq + 1))
    x, y = tok[:, :-1], tok[:, 1:]
    t0 = 0.0
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = Fn.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"torch_tokens_per_s": round(a.batch * a.seq / dt, 1), "step_ms": round(dt * 1e3, 1),
                      "threads": a.threads, "loss": round(loss.item(), 4)}))


if __name__ == "__main__":
    main()
