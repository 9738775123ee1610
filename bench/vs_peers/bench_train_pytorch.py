#!/usr/bin/env python3
"""One training step (forward + backward + clip_grad_norm_ + AdamW, float32) of
hanul (build/bench/train_bench) against PyTorch at the same Llama shape, the two
run ALTERNATELY `--rounds` times, hanul first in even rounds and torch first in odd
ones (this machine's memory bandwidth swings, so a ratio of interleaved runs is
fairer than two separate series). Prints each run, each round's ratio, and the
ratio of the medians, tokens/s and peak RSS both sides.

  bench_train_pytorch.py --bench build-bwd/bench/train_bench --shape 15m -t 2 [--profile]
                         [--torch-python /work/torch2-venv/bin/python]

--bf16: hanul's GEMM products in bf16 (train_bench --bf16 1: cpu::MatmulPrecision::kBf16,
float32 weights, gradients and AdamW state; needs AVX512_BF16). --torch-amp: PyTorch's own
mixed precision, the forward and loss under torch.autocast("cpu", dtype=torch.bfloat16). "% of
peak" stays against the FP32 peak either way.

--profile: hanul's runs also time the phases of its step (train_bench --profile 1,
which costs a clock read per phase); the median seconds per phase are printed.
% of peak: 6 · params · tokens/s (+ causal attention) over the nominal 117 GFLOP/s
per thread (2 FMA pipes × 8 float lanes × 2 FLOPs at ~3.66 GHz); what this machine
delivers is measured by bench_matmul --benchmark_filter=FmaPeak.

PyTorch side: transformers' LlamaForCausalLM (tied like llama2.c), AdamW
(lr 1e-4, wd 0.1), clip_grad_norm_(1.0), torch.set_num_threads(t). Each side
runs in its own process so its peak RSS (ru_maxrss) is its own.

--torch-python PATH: the interpreter the PyTorch child runs under (default: the
one running this script), so another PyTorch build can be measured without
changing the repo's venv, e.g. a PyPI torch 2.x (MKL + oneDNN) in a venv of its
own instead of Debian's torch 1.13 (OpenBLAS). Which PyTorch was measured is
printed first and kept in the final JSON: its version, transformers' version,
BLAS_INFO from torch.__config__.show() with the BLAS library actually mapped in
(Debian's "generic" is whatever libblas.so.3 the alternatives point at; PyPI's
MKL is linked into libtorch_cpu, so no separate library shows), and oneDNN's.
"""
import argparse
import json
import statistics
import subprocess
import sys

SHAPES = {
    # llama2.c's stories15M: dim 288, 6 layers, 6 heads, ffn 768, vocab 32000
    "15m": dict(dim=288, layers=6, heads=6, ffn=768, vocab=32000, seq=256, batch=8),
    # ~110M: dim 768, 12 layers, 12 heads, ffn 2048 (tied embeddings)
    "100m": dict(dim=768, layers=12, heads=12, ffn=2048, vocab=32000, seq=256, batch=4),
}

TORCH_CHILD = r"""
import json, resource, sys, time, torch
from transformers import LlamaConfig, LlamaForCausalLM
s = json.loads(sys.argv[1]); t = int(sys.argv[2]); steps = int(sys.argv[3]); warmup = int(sys.argv[4])
amp = sys.argv[5] == "1"
torch.set_num_threads(t)
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=s["vocab"], hidden_size=s["dim"], intermediate_size=s["ffn"],
                  num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                  num_key_value_heads=s["heads"], max_position_embeddings=s["seq"],
                  rms_norm_eps=1e-5, tie_word_embeddings=True,
                  # transformers' default where torch has it (2.x): fused scaled_dot_product_attention,
                  # 1-7% faster than eager at 15M with torch 2.15 here; torch 1.13 has only eager
                  attn_implementation="sdpa" if hasattr(torch.nn.functional, "scaled_dot_product_attention") else "eager")
model = LlamaForCausalLM(cfg).float()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
secs = 0.0
for i in range(warmup + steps):
    ids = torch.randint(0, s["vocab"], (s["batch"], s["seq"] + 1))
    t0 = time.perf_counter()
    # amp: PyTorch's mixed precision on CPU, autocast to bf16 (matmuls in bf16 through oneDNN,
    # float32 weights and AdamW state), the counterpart of hanul's --bf16
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = model(input_ids=ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(out.logits.float().reshape(-1, s["vocab"]), ids[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    t1 = time.perf_counter()
    if i >= warmup:
        secs += t1 - t0
tokens = steps * s["batch"] * s["seq"]
print(json.dumps({"impl": "torch", "params": sum(p.numel() for p in model.parameters()), "threads": t,
                  "steps": steps, "tokens_per_s": tokens / secs, "s_per_step": secs / steps,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                  "last_loss": float(loss), "attn": model.config._attn_implementation}))
"""


# What the child's PyTorch is: torch.__config__.show() names the build's BLAS (BLAS_INFO), MKL
# and oneDNN versions; /proc/self/maps after one matmul names the BLAS library really loaded.
TORCH_INFO = r"""
import json, os, re, torch, transformers
cfg = torch.__config__.show()
def grab(pattern):
    m = re.search(pattern, cfg)
    return m.group(1) if m else None
torch.ones(8, 8) @ torch.ones(8, 8)
# wheels' own copies (numpy's scipy_openblas, the CUDA build's cublas) are not what torch's CPU
# matmuls call; a system BLAS is named with its folder (Debian: openblas-openmp or -pthread)
maps = {l.split()[-1] for l in open("/proc/self/maps")}
libs = sorted({"/".join(f.split("/")[-2:]) for f in maps if re.search(r"blas|mkl", os.path.basename(f))
               and "cublas" not in f and "site-packages" not in f})
print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                  "blas_info": grab(r"BLAS_INFO=(\w+)"), "mkl": grab(r"Math Kernel Library Version ([\d.]+)"),
                  "onednn": grab(r"MKL-DNN (v[\w.]+)"), "blas_libs": libs}))
"""


def torch_info(python):
    out = subprocess.run([python, "-c", TORCH_INFO], check=True, capture_output=True, text=True).stdout
    i = json.loads(out.strip().splitlines()[-1])
    blas = i["blas_info"] or "?"
    if i["mkl"]:
        blas += f" (MKL {i['mkl']}, linked in)"
    if i["blas_libs"]:
        blas += ": " + ", ".join(i["blas_libs"])
    i["blas"] = blas
    return i


def run_hanul(bench, s, t, steps, warmup, profile=False, bf16=False):
    args = [bench] + [x for k, v in s.items() for x in (f"--{k}", str(v))]
    args += ["--tied", "1", "--steps", str(steps), "--warmup", str(warmup), "-t", str(t)]
    args += ["--profile", "1"] if profile else []
    args += ["--bf16", "1"] if bf16 else []
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


def run_torch(python, s, t, steps, warmup, amp=False):
    out = subprocess.run([python, "-c", TORCH_CHILD, json.dumps(s), str(t), str(steps), str(warmup),
                          "1" if amp else "0"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/train_bench")
    ap.add_argument("--shape", choices=SHAPES, default="15m")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--bf16", action="store_true",
                    help="hanul's matmuls in bf16 (train_bench --bf16 1; needs AVX512_BF16)")
    ap.add_argument("--torch-amp", action="store_true",
                    help="PyTorch under torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--torch-python", default=sys.executable,
                    help="interpreter for the PyTorch child (default: this one)")
    a = ap.parse_args()
    s = SHAPES[a.shape]
    ti = torch_info(a.torch_python)
    print(f"torch {ti['torch']} (transformers {ti['transformers']}) under {a.torch_python}: "
          f"BLAS {ti['blas']}, oneDNN {ti['onednn'] or 'none'}", flush=True)
    h, p = [], []
    for r in range(a.rounds):
        # Who goes first alternates (ABBA...): on this VM the second of two back-to-back
        # runs is often slower (clock or neighbours), which would favour a fixed first.
        sides = [lambda: h.append(run_hanul(a.bench, s, a.t, a.steps, a.warmup, a.profile, a.bf16)),
                 lambda: p.append(run_torch(a.torch_python, s, a.t, a.steps, a.warmup, a.torch_amp))]
        for side in sides if r % 2 == 0 else sides[::-1]:
            side()
        print(f"round {r}: hanul {h[-1]['tokens_per_s']:.0f} tok/s ({h[-1]['peak_rss_mb']:.0f} MB)  "
              f"torch {p[-1]['tokens_per_s']:.0f} tok/s ({p[-1]['peak_rss_mb']:.0f} MB)", flush=True)
    ht = statistics.median(x["tokens_per_s"] for x in h)
    pt = statistics.median(x["tokens_per_s"] for x in p)
    # Each round's own ratio (its two runs are minutes apart at most): steadier than the
    # ratio of the medians when the machine's speed drifts between rounds.
    round_ratios = [x["tokens_per_s"] / y["tokens_per_s"] for x, y in zip(h, p)]
    print("ratio by round: " + " ".join(f"{r:.2f}" for r in round_ratios), flush=True)
    # FLOPs: 6 · params · tokens for the matmuls, plus attention's QKᵀ and PV
    # (forward 2·2·T·dim per token over the causal half, times 3 with the backward).
    attn = 6 * s["layers"] * s["seq"] * s["dim"]  # per token, causal (half of 12·L·T·d)
    flop_tok = 6 * h[0]["params"] + attn
    peak = 117e9 * a.t
    if a.profile:
        total = statistics.median(x["profile_s"]["total"] for x in h)
        print("hanul phases (median s/step, share of the profiled step):")
        for name in h[0]["profile_s"]:
            v = statistics.median(x["profile_s"][name] for x in h)
            print(f"  {name:16s} {v:8.4f}  {100 * v / total:5.1f}%")
    print(json.dumps({"shape": a.shape, "threads": a.t, "hanul_tokens_per_s": round(ht, 1),
                      "torch_tokens_per_s": round(pt, 1), "ratio_hanul_over_torch": round(ht / pt, 3),
                      "median_round_ratio": round(statistics.median(round_ratios), 3),
                      "hanul_peak_rss_mb": max(x["peak_rss_mb"] for x in h),
                      "torch_peak_rss_mb": max(x["peak_rss_mb"] for x in p),
                      "params_hanul": h[0]["params"], "params_torch": p[0]["params"],
                      "hanul_pct_of_fp32_peak": round(100 * ht * flop_tok / peak, 1),
                      "torch_pct_of_fp32_peak": round(100 * pt * flop_tok / peak, 1),
                      "torch_version": ti["torch"], "torch_blas": ti["blas"], "torch_onednn": ti["onednn"],
                      "torch_attention": p[0].get("attn"), "torch_python": a.torch_python,
                      "hanul_matmuls": "bf16" if a.bf16 else "fp32",
                      "torch_matmuls": "autocast bf16" if a.torch_amp else "fp32"}))


if __name__ == "__main__":
    main()
