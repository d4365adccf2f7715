#!/usr/bin/python3
"""Builds tests/fixtures/kd_fixtures.safetensors: PyTorch reference values for the
knowledge-distillation losses of src/distill/losses.h.

Each loss is written here from its documented formula in float64 torch, independently of the
C code (KL through F.kl_div, mixtures as plain sums, cross-entropy through F.cross_entropy,
the top-k rest bin through a mask); gradients come from autograd.

Inputs (stored as the C test reads them):
  z_s (N,V) F32 student logits; z_t (N,VT) F32 teacher logits, VT > V: the teacher's vocabulary
  is larger and the full form uses the first V columns (p renormalised over them);
  targets (N) I32 with row 2 ignored (-1);
  ids (N,K) I32, logp (N,K) F32, rest (N) F32: top-k of the teacher's full VT-way distribution
  restricted to ids < V (mass of ids >= V is part of rest), logp rounded through fp16 as a
  cache stores it, rest = 1 - sum exp(logp) in float32; row 0's rest is forced to 0 and row 1's
  to -1e-4 (rounding) to exercise the floor.
Per case i (metadata "case<i>" = "kind beta alpha tau ce_weight", "cases" = count):
  case<i>.full.loss [1], case<i>.full.grad (N,V), case<i>.topk.loss [1], case<i>.topk.grad (N,V):
  loss = (1 - w) * tau^2 * mean_rows D + w * mean_rows CE, gradient w.r.t. z_s, scale 1.

Run: /usr/bin/python3 tools/make_kd_fixtures.py   (Debian's python3-torch)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_py import write_safetensors  # noqa: E402

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                                    "kd_fixtures.safetensors"))
N, V, VT, K = 6, 29, 33, 5
REST_MIN = 1e-8  # DL_KD_REST_MIN

CASES = [
    ("fkl", 0.0, 0.0, 1.0, 0.0),
    ("fkl", 0.0, 0.0, 2.0, 0.3),
    ("rkl", 0.0, 0.0, 1.0, 0.0),
    ("rkl", 0.0, 0.0, 0.5, 0.3),
    ("jsd", 0.5, 0.0, 1.0, 0.0),
    ("jsd", 0.1, 0.0, 2.0, 0.2),
    ("jsd", 0.9, 0.0, 0.7, 0.5),
    ("jsd", 0.0, 0.0, 1.5, 0.0),
    ("jsd", 1.0, 0.0, 1.0, 0.1),
    ("skl", 0.0, 0.1, 1.0, 0.0),
    ("skl", 0.0, 0.3, 2.0, 0.1),
    ("skl", 0.0, 0.0, 1.0, 0.0),
    ("srkl", 0.0, 0.1, 1.0, 0.0),
    ("srkl", 0.0, 0.5, 1.5, 0.25),
    ("tv", 0.0, 0.0, 1.0, 0.0),
    ("tv", 0.0, 0.0, 2.0, 0.5),
]


def kl(log_a, log_b):
    """KL(a || b) over the last dimension from log-probabilities."""
    return F.kl_div(log_b, log_a, reduction="none", log_target=True).sum(-1)


def divergence(kind, beta, alpha, logp, logq):
    p, q = logp.exp(), logq.exp()
    if kind == "fkl" or (kind == "jsd" and beta == 0.0):
        return kl(logp, logq)
    if kind == "rkl" or (kind == "jsd" and beta == 1.0):
        return kl(logq, logp)
    if kind == "jsd":  # GKD / TRL: m = beta p + (1 - beta) q
        logm = torch.log(beta * p + (1 - beta) * q)
        return beta * kl(logp, logm) + (1 - beta) * kl(logq, logm)
    if kind == "skl":
        return kl(logp, torch.log(alpha * p + (1 - alpha) * q))
    if kind == "srkl":
        return kl(logq, torch.log(alpha * q + (1 - alpha) * p))
    if kind == "tv":
        return 0.5 * (p - q).abs().sum(-1)
    raise ValueError(kind)


def total_loss(case, z_s, logp_bins, logq_bins, targets):
    kind, beta, alpha, tau, w = case
    counted = targets >= 0
    d = divergence(kind, beta, alpha, logp_bins, logq_bins)[counted].mean()
    ce = F.cross_entropy(z_s, targets.long(), ignore_index=-1)  # mean over counted rows
    return (1 - w) * tau * tau * d + w * ce


def full_bins(z_s, z_t, tau):
    return F.log_softmax(z_t[:, :V] / tau, -1), F.log_softmax(z_s / tau, -1)


def topk_bins(z_s, ids, logp, rest, tau):
    # teacher: the rest mass spread evenly over the V - K other ids, each softened like an id:
    # (V - K) * (rest / (V - K)) ** (1 / tau) next to exp(logp_k) ** (1 / tau), normalised
    each = rest.clamp(min=REST_MIN) / (V - K)
    w_ids = logp.exp() ** (1.0 / tau)
    w_rest = (V - K) * each ** (1.0 / tau)
    w = torch.cat([w_ids, w_rest.unsqueeze(1)], 1)
    q = F.softmax(z_s / tau, -1)
    outside = torch.ones_like(q).scatter(1, ids.long(), 0.0)
    q_bins = torch.cat([q.gather(1, ids.long()), (q * outside).sum(-1, keepdim=True)], 1)
    return torch.log(w / w.sum(-1, keepdim=True)), torch.log(q_bins)


def make_inputs(gen):
    z_s = 2.0 * torch.randn(N, V, generator=gen)
    z_t = 2.0 * torch.randn(N, VT, generator=gen)
    targets = torch.randint(0, V, (N,), generator=gen, dtype=torch.int32)
    targets[2] = -1
    lp_all = F.log_softmax(z_t.double(), -1)[:, :V]  # the teacher's own VT-way distribution
    top = lp_all.topk(K, -1).indices
    perm = torch.stack([torch.randperm(K, generator=gen) for _ in range(N)])
    ids = top.gather(1, perm).to(torch.int32)
    logp = lp_all.gather(1, ids.long()).half().float()
    rest = (1.0 - logp.exp().sum(-1)).float()
    rest[0] = 0.0
    rest[1] = -1e-4
    return z_s, z_t, targets, ids, logp, rest


def main():
    gen = torch.Generator().manual_seed(1234)
    z_s, z_t, targets, ids, logp, rest = make_inputs(gen)
    tensors = [("z_s", z_s), ("z_t", z_t), ("targets", targets), ("ids", ids), ("logp", logp), ("rest", rest)]
    metadata = {"cases": str(len(CASES))}
    for i, case in enumerate(CASES):
        metadata[f"case{i}"] = " ".join(str(x) for x in case)
        tau = case[3]
        for form in ("full", "topk"):
            z = z_s.double().requires_grad_(True)
            if form == "full":
                lp, lq = full_bins(z, z_t.double(), tau)
            else:
                lp, lq = topk_bins(z, ids, logp.double(), rest.double(), tau)
            loss = total_loss(case, z, lp, lq, targets)
            loss.backward()
            tensors.append((f"case{i}.{form}.loss", loss.detach().float().reshape(1)))
            tensors.append((f"case{i}.{form}.grad", z.grad.float()))
    write_safetensors(OUT, tensors, metadata)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(CASES)} cases)")


if __name__ == "__main__":
    main()
