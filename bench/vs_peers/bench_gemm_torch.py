#!/usr/bin/env python3
"""hanul's GEMM (build/bench/gemm_bench) against PyTorch's matmul (its BLAS: OpenBLAS
for Debian's 1.13, MKL for a PyPI 2.x) at the products of a training step, each
shape run ALTERNATELY `--rounds` times (who goes first alternates), best GFLOP/s of
each side (this machine's speed swings; the best of interleaved runs is the fairest
single figure). Also prints the register-only FMA ceiling, to read both against.

  bench_gemm_torch.py --bench build/bench/gemm_bench --shape 15m -t 2 [--torch-python PY]

Products (y = A·Bᵀ in gemm.h's terms): fwd y = x·Wᵀ; dx = dy·W (B stored [k, n]);
dW = dyᵀ·x (A stored [k, m], B stored [k, n]), at the layer and output-layer shapes.
"""
import argparse
import json
import subprocess
import sys

SHAPES = {
    # (tokens, d_model, d_ff, vocab)
    "15m": (2048, 288, 768, 32000),
    "100m": (1024, 768, 2048, 32000),
}

TORCH_CHILD = r"""
import json, sys, time, torch
m, k, n, la, lb, t, reps = sys.argv[1:]
m, k, n, t, reps = int(m), int(k), int(n), int(t), int(reps)
torch.set_num_threads(t)
g = torch.Generator().manual_seed(7)
a = torch.rand(m, k, generator=g) * 2 - 1 if la == "rows" else (torch.rand(k, m, generator=g) * 2 - 1).t()
b = torch.rand(n, k, generator=g) * 2 - 1 if lb == "rows" else (torch.rand(k, n, generator=g) * 2 - 1).t()
best = 1e30
for r in range(reps + 1):
    t0 = time.perf_counter()
    y = a @ b.t()
    s = time.perf_counter() - t0
    if r > 0:
        best = min(best, s)
print(json.dumps({"impl": "torch", "gflops": 2.0 * m * n * k / best * 1e-9, "torch": torch.__version__}))
"""


def products(shape):
    tokens, d, f, vocab = SHAPES[shape]
    out = []
    for name, k_in, n_out in (("attn q/k/v/o", d, d), ("ffn gate/up", d, f), ("ffn down", f, d),
                              ("output", d, vocab)):
        out.append((f"fwd {name}", tokens, k_in, n_out, "rows", "rows"))
        out.append((f"dx  {name}", tokens, n_out, k_in, "rows", "t"))
        out.append((f"dW  {name}", n_out, tokens, k_in, "t", "t"))
    return out


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/gemm_bench")
    ap.add_argument("--matmul-bench", default="build/bench/bench_matmul",
                    help="for the FMA ceiling (BM_FmaPeak); skipped if missing")
    ap.add_argument("--shape", choices=SHAPES, default="15m")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--torch-python", default=sys.executable)
    a = ap.parse_args()
    ceiling = None
    try:
        r = subprocess.run([a.matmul_bench, "--benchmark_filter=FmaPeak/threads:%d/" % a.t,
                            "--benchmark_format=json"], capture_output=True, text=True, check=True)
        ceiling = json.loads(r.stdout)["benchmarks"][0]["GFLOPS"]
    except (OSError, subprocess.CalledProcessError, KeyError, IndexError, ValueError):
        pass
    nominal = 117.0 * a.t
    print(f"{a.shape}, {a.t} thread(s); FMA ceiling measured: "
          f"{'%.1f' % ceiling if ceiling else 'n/a'} GFLOP/s; nominal peak {nominal:.0f}")
    print(f"{'product':22s} {'m':>6s} {'k':>6s} {'n':>6s}  {'hanul':>7s} {'torch':>7s}  ratio  "
          f"hanul % of ceiling / nominal")
    rows = []
    for name, m, k, n, la, lb in products(a.shape):
        h = t = 0.0
        for r in range(a.rounds):
            cmds = {"hanul": [a.bench, "--m", str(m), "--k", str(k), "--n", str(n), "--a", la,
                              "--b", lb, "-t", str(a.t), "--reps", str(a.reps)],
                    "torch": [a.torch_python, "-c", TORCH_CHILD, str(m), str(k), str(n), la, lb,
                              str(a.t), str(a.reps)]}
            # Who goes first alternates (ABBA...), as in bench_train_pytorch.py.
            out = {who: run(cmds[who]) for who in (("hanul", "torch") if r % 2 == 0 else ("torch", "hanul"))}
            h = max(h, out["hanul"]["gflops"])
            t = max(t, out["torch"]["gflops"])
        pct = f"{100 * h / ceiling:5.1f}% / " if ceiling else ""
        print(f"{name:22s} {m:6d} {k:6d} {n:6d}  {h:7.1f} {t:7.1f}  {h / t:5.2f}  {pct}{100 * h / nominal:5.1f}%",
              flush=True)
        rows.append({"product": name, "m": m, "k": k, "n": n, "hanul_gflops": round(h, 1),
                     "torch_gflops": round(t, 1), "torch": out["torch"]["torch"]})
    print(json.dumps({"shape": a.shape, "threads": a.t, "fma_ceiling_gflops": ceiling,
                      "products": rows}))


if __name__ == "__main__":
    main()
