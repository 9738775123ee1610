"""Gradients of hanul's backward ops against PyTorch autograd.

For each op this writes random float32 inputs as .npy files, runs
`grad_tool OP DIR ...` (tests/tools/grad_tool.cpp), and compares its gradients
with torch.autograd on the same inputs promoted to float64, so the error
measured is hanul's float32 error alone. The error of a tensor is normwise:
max |hanul - torch| / max |torch| (elementwise relative error is undefined at
the zeros a gradient has). Every tensor must be below 1e-4 (issue 5). Also one
whole pre-norm Llama block (attention + SwiGLU MLP with residuals) against the
same block written in PyTorch, AdamW against torch.optim.AdamW and global-norm
clipping against torch.nn.utils.clip_grad_norm_ (both in float32, as training
runs them).

    python tests/reference/check_grads.py --tool build/tests/grad_tool
"""
import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-4
rng = np.random.default_rng(20240605)
failures = []
workdir = None  # a TemporaryDirectory, made in main()


def rand(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def run_tool(tool, op, inputs, args=()):
    """Writes inputs, runs the tool, returns a loader of its outputs."""
    d = Path(tempfile.mkdtemp(prefix=f"{op}_", dir=workdir))
    for name, arr in inputs.items():
        np.save(d / f"{name}.npy", np.ascontiguousarray(arr, dtype=np.float32))
    subprocess.run([tool, op, str(d), *args], check=True)
    return lambda name: np.load(d / f"{name}.npy")


def t64(a, grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def compare(case, name, got, want):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"{case} {name}: shape {got.shape} vs {want.shape}"
    scale = np.max(np.abs(want))
    err = np.max(np.abs(got.astype(np.float64) - want)) / scale if scale > 0 else np.max(np.abs(got))
    ok = err < TOL
    print(f"  {'ok  ' if ok else 'FAIL'} {case:28s} {name:10s} rel err {err:.2e}")
    if not ok:
        failures.append(f"{case} {name}: {err:.2e}")


def rope_torch(x, pos, inv_freq, layout):
    """x [T, H, D] float64; the angle in float32 as HF and hanul compute it."""
    angle = (torch.tensor(pos, dtype=torch.float32)[:, None] * torch.tensor(inv_freq)[None, :]).double()
    c, s = torch.cos(angle)[:, None, :], torch.sin(angle)[:, None, :]
    if layout == "halves":
        half = x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * c - b * s, a * s + b * c], dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)


def attention_torch(q, k, v, n_head, n_head_kv, pos0, scale):
    """q [T, H, D], k/v [n_kv, Hkv, D]; causal with the cache offset pos0."""
    group = n_head // n_head_kv
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    s = torch.einsum("thd,jhd->htj", q, k) * scale
    T, n_kv = q.shape[0], k.shape[0]
    mask = torch.arange(n_kv)[None, :] > (pos0 + torch.arange(T))[:, None]
    s = s.masked_fill(mask[None], float("-inf"))
    return torch.einsum("htj,jhd->thd", torch.softmax(s, dim=-1), v)


def rmsnorm_torch(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def inv_freq_of(head_dim, theta=10000.0):
    return (1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)).astype(np.float32)


def check_embedding(tool):
    V, E, T = 23, 13, 17
    emb, tokens = rand(V, E), rng.integers(0, V, size=T)
    tokens[:4] = 5  # repeated tokens sum
    dout = rand(T, E)
    out = run_tool(tool, "embedding", {"emb": emb, "tokens": tokens, "dout": dout})
    e = t64(emb)
    (F.embedding(torch.tensor(tokens), e) * t64(dout, False)).sum().backward()
    compare("embedding", "demb", out("demb"), e.grad)


def check_rmsnorm(tool):
    R, N, eps = 9, 67, 1e-5
    x, w, dout = rand(R, N, lo=-3, hi=3), rand(N, lo=0.5, hi=1.5), rand(R, N)
    out = run_tool(tool, "rmsnorm", {"x": x, "w": w, "dout": dout}, [f"eps={eps}"])
    xt, wt = t64(x), t64(w)
    (rmsnorm_torch(xt, wt, eps) * t64(dout, False)).sum().backward()
    compare("rmsnorm", "dx", out("dx"), xt.grad)
    compare("rmsnorm", "dw", out("dw"), wt.grad)


def check_rope(tool):
    T, H, D = 11, 3, 14
    inv_freq = inv_freq_of(D)
    pos = rng.integers(0, 4096, size=T)
    for layout in ("halves", "pairs"):
        x, dout = rand(T, H, D), rand(T, H, D)
        out = run_tool(tool, "rope", {"dout": dout, "positions": pos, "inv_freq": inv_freq},
                       [f"layout={layout}"])
        xt = t64(x)
        (rope_torch(xt, pos, inv_freq, layout) * t64(dout, False)).sum().backward()
        compare(f"rope {layout}", "dx", out("dx"), xt.grad)


def check_swiglu(tool):
    n = 301
    gate, up, dout = rand(n, lo=-8, hi=8), rand(n), rand(n)
    out = run_tool(tool, "swiglu", {"gate": gate, "up": up, "dout": dout})
    g, u = t64(gate), t64(up)
    (F.silu(g) * u * t64(dout, False)).sum().backward()
    compare("swiglu", "dgate", out("dgate"), g.grad)
    compare("swiglu", "dup", out("dup"), u.grad)


def check_matmul(tool):
    M, K, N = 37, 71, 45
    x, w, b, dy = rand(M, K), rand(N, K), rand(N), rand(M, N)
    for impl in ("ref", "cpu"):
        out = run_tool(tool, "matmul", {"x": x, "w": w, "b": b, "dy": dy}, [f"impl={impl}", "threads=3"])
        xt, wt, bt = t64(x), t64(w), t64(b)
        (F.linear(xt, wt, bt) * t64(dy, False)).sum().backward()
        for name, want in (("dx", xt.grad), ("dw", wt.grad), ("db", bt.grad)):
            compare(f"matmul {impl}", name, out(name), want)


def check_attention(tool):
    # A prefill (pos0 = 0) and a chunk after cached keys; MHA, GQA and MQA.
    for T, pos0, H, Hkv, D in ((19, 0, 4, 4, 16), (13, 7, 6, 2, 10), (9, 3, 4, 1, 8)):
        n_kv = pos0 + T
        q, k, v = rand(T, H, D, lo=-2, hi=2), rand(n_kv, Hkv, D, lo=-2, hi=2), rand(n_kv, Hkv, D)
        dout = rand(T, H, D)
        scale = 1.0 / math.sqrt(D)
        for impl in ("ref", "cpu"):
            out = run_tool(tool, "attention", {"q": q, "k": k, "v": v, "dout": dout},
                           [f"n_head={H}", f"n_head_kv={Hkv}", f"pos0={pos0}", f"scale={scale!r}",
                            f"impl={impl}", "threads=3"])
            qt, kt, vt = t64(q), t64(k), t64(v)
            # the tool's scale is the float32 nearest to 1/sqrt(D)
            s32 = float(np.float32(scale))
            (attention_torch(qt, kt, vt, H, Hkv, pos0, s32) * t64(dout, False)).sum().backward()
            case = f"attention {impl} {H}/{Hkv}h p{pos0}"
            for name, want in (("dq", qt.grad), ("dk", kt.grad), ("dv", vt.grad)):
                compare(case, name, out(name), want)


def check_cross_entropy(tool):
    T, V = 23, 517
    logits = rand(T, V, lo=-6, hi=6)
    targets = rng.integers(0, V, size=T)
    targets[[2, 5, 6, 19]] = -100  # masked, as SFT's prompt tokens
    dloss = 0.625
    out = run_tool(tool, "cross_entropy", {"logits": logits, "targets": targets}, [f"dloss={dloss}"])
    lt = t64(logits)
    loss = F.cross_entropy(lt, torch.tensor(targets), ignore_index=-100, reduction="mean")
    (loss * dloss).backward()
    compare("cross_entropy", "loss", out("loss"), loss.detach().reshape(1))
    compare("cross_entropy", "dlogits", out("dlogits"), lt.grad)


def check_block(tool):
    T, E, H, Hkv, F_, eps = 11, 48, 6, 2, 80, 1e-5
    D = E // H
    inv_freq = inv_freq_of(D)
    p = {
        "x": rand(T, E, lo=-2, hi=2),
        "attn_norm": rand(E, lo=0.5, hi=1.5),
        "wq": rand(H * D, E) / math.sqrt(E), "wk": rand(Hkv * D, E) / math.sqrt(E),
        "wv": rand(Hkv * D, E) / math.sqrt(E), "wo": rand(E, H * D) / math.sqrt(E),
        "ffn_norm": rand(E, lo=0.5, hi=1.5),
        "w1": rand(F_, E) / math.sqrt(E), "w3": rand(F_, E) / math.sqrt(E), "w2": rand(E, F_) / math.sqrt(F_),
    }
    dout = rand(T, E)
    for impl in ("ref", "cpu"):
        out = run_tool(tool, "block", {**p, "inv_freq": inv_freq, "dout": dout},
                       [f"n_head={H}", f"n_head_kv={Hkv}", f"eps={eps}", f"impl={impl}", "threads=3"])
        t = {k: t64(v) for k, v in p.items()}
        pos = np.arange(T)
        xn = rmsnorm_torch(t["x"], t["attn_norm"], eps)
        q = rope_torch((xn @ t["wq"].T).view(T, H, D), pos, inv_freq, "halves")
        k = rope_torch((xn @ t["wk"].T).view(T, Hkv, D), pos, inv_freq, "halves")
        v = (xn @ t["wv"].T).view(T, Hkv, D)
        a = attention_torch(q, k, v, H, Hkv, 0, float(np.float32(1.0 / math.sqrt(D)))).reshape(T, H * D)
        h = t["x"] + a @ t["wo"].T
        hn = rmsnorm_torch(h, t["ffn_norm"], eps)
        y = h + (F.silu(hn @ t["w1"].T) * (hn @ t["w3"].T)) @ t["w2"].T
        (y * t64(dout, False)).sum().backward()
        compare(f"block {impl}", "out", out("out"), y)
        for name in p:
            compare(f"block {impl}", "d" + name, out("d" + name), t[name].grad)


def check_adamw(tool):
    n, steps = 257, 12
    p0, grads = rand(n), rand(steps, n, lo=-0.1, hi=0.1)
    grads[:, :5] *= 1e-4  # tiny gradients: where eps matters
    hp = dict(lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    out = run_tool(tool, "adamw", {"p": p0, "grads": grads},
                   [f"lr={hp['lr']}", f"beta1={hp['betas'][0]}", f"beta2={hp['betas'][1]}",
                    f"eps={hp['eps']}", f"wd={hp['weight_decay']}"])
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = torch.optim.AdamW([p], foreach=False, **hp)
    for s in range(steps):
        p.grad = torch.tensor(grads[s])
        opt.step()
    st = opt.state[p]
    compare("adamw 12 steps (f32)", "p", out("p"), p.detach())
    compare("adamw 12 steps (f32)", "m", out("m"), st["exp_avg"])
    compare("adamw 12 steps (f32)", "v", out("v"), st["exp_avg_sq"])
    # the update itself, which is ~1e-3 of the weights: measured against the change torch made
    compare("adamw 12 steps (f32)", "p - p0", out("p") - p0, p.detach().numpy() - p0)


def check_clip(tool):
    gs = [rand(31, 7), rand(101), rand(5, 3, 2)]
    for max_norm in (1.0, 1e3):  # clipped, and left alone
        out = run_tool(tool, "clip", {f"g{i}": g for i, g in enumerate(gs)}, [f"max_norm={max_norm}"])
        ps = [torch.nn.Parameter(torch.zeros(g.shape)) for g in gs]
        for p, g in zip(ps, gs):
            p.grad = torch.tensor(g)
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        compare(f"clip_grad_norm {max_norm:g}", "norm", out("norm"), norm.reshape(1))
        for i, p in enumerate(ps):
            compare(f"clip_grad_norm {max_norm:g}", f"g{i}", out(f"g{i}"), p.grad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    tool = ap.parse_args().tool
    global workdir
    tmp = tempfile.TemporaryDirectory(prefix="check_grads_")
    workdir = tmp.name
    for check in (check_embedding, check_rmsnorm, check_rope, check_swiglu, check_matmul, check_attention,
                  check_cross_entropy, check_block, check_adamw, check_clip):
        print(check.__name__[len("check_"):])
        check(tool)
    tmp.cleanup()
    if failures:
        print(f"{len(failures)} gradient(s) above {TOL:g}:\n  " + "\n  ".join(failures))
        return 1
    print(f"all gradients within {TOL:g} of PyTorch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
