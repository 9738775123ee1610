#!/usr/bin/env python3
"""hanul vs llama.cpp on this machine, side by side in one run.

1. Makes a random-weight Llama (about 125M parameters by default) as a Hugging
   Face folder (config.json + model.safetensors, written with safetensors from
   numpy), converts it with `hanul convert` to GGUF F32 — hanul's GGUF writer and
   its Q/K row permutation — gives that file the Llama 2 SentencePiece vocabulary
   (llama.cpp refuses a GGUF without `tokenizer.ggml.model`; hanul's HF -> GGUF
   conversion does not carry a tokenizer yet), and converts it with `hanul
   convert` again to every asked type (F16, Q8_0, Q4_0, Q4_K, ...).
2. For each type measures prompt processing (pp, one batch of -p tokens) and text
   generation (tg, -n single-token steps) in tokens/s with hanul's
   bench/vs_peers/hanul_bench and with llama.cpp's llama-bench, alternating the
   two (memory bandwidth on a shared machine drifts over minutes), and prints
   the ratio hanul / llama.cpp per round and over all rounds (geometric mean).
3. Interop: llama.cpp's llama-simple greedy-decodes each GGUF written by hanul
   from a fixed prompt; `hanul run` does the same; the generated texts must match.

    bench/vs_peers/bench_llama_cpp.py --llama-cpp-dir /tmp/llama.cpp/build \
        --hanul-build build [--types F32,F16,Q8_0,Q4_0,Q4_K] [--rounds 3] [-t 2]

LLAMA_CPP_DIR may stand in for --llama-cpp-dir: a llama.cpp CMake build folder
holding bin/llama-bench and bin/llama-simple (this script never builds it).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
VOCAB_GGUF = Path("/work/shared/data/tokenizer/ggml-vocab-llama-spm.gguf")

# A Llama 2-style shape with grouped-query attention: 12 layers, n_embd 768,
# 12 heads of 64, 4 KV heads, n_ff 2048, the 32000-token Llama 2 vocabulary.
# Every 2-D weight has rows of whole 256-element super-blocks, so Q4_K applies everywhere.
SIZES = {
    "125m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                 num_attention_heads=12, num_key_value_heads=4),
    "350m": dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=24,
                 num_attention_heads=16, num_key_value_heads=4),
    "tiny": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, text=True, capture_output=True, **kw)


def load_avg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---- the test model -------------------------------------------------------------

def write_hf_folder(out: Path, size: str, seed: int):
    """Random weights (normal, std 0.02; norms 1 + 0.02 N) in HF Llama naming."""
    from safetensors.numpy import save_file
    shape = SIZES[size]
    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=32000,
               max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
               tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, torch_dtype="float32",
               hidden_act="silu", **shape)
    rng = np.random.default_rng(seed)
    d, ff, nl = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    hd = d // shape["num_attention_heads"]
    kv = hd * shape["num_key_value_heads"]

    def w(*s):
        return (0.02 * rng.standard_normal(s, dtype=np.float32)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.02 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    t = {"model.embed_tokens.weight": w(32000, d), "model.norm.weight": norm(d),
         "lm_head.weight": w(32000, d)}
    for i in range(nl):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(d)
        t[p + "post_attention_layernorm.weight"] = norm(d)
        t[p + "self_attn.q_proj.weight"] = w(d, d)
        t[p + "self_attn.k_proj.weight"] = w(kv, d)
        t[p + "self_attn.v_proj.weight"] = w(kv, d)
        t[p + "self_attn.o_proj.weight"] = w(d, d)
        t[p + "mlp.gate_proj.weight"] = w(ff, d)
        t[p + "mlp.up_proj.weight"] = w(ff, d)
        t[p + "mlp.down_proj.weight"] = w(d, ff)
    out.mkdir(parents=True, exist_ok=True)
    save_file(t, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return sum(v.size for v in t.values())


def add_vocab(src: Path, dst: Path):
    """Copies GGUF `src` (tensors bit for bit, every key) adding the tokenizer.* keys of VOCAB_GGUF."""
    import gguf
    r = gguf.GGUFReader(str(src))
    voc = gguf.GGUFReader(str(VOCAB_GGUF))
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(str(dst), arch)

    def copy(field):
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            return
        vt = field.types[0]
        sub = field.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(field.name, field.contents(), vt, sub_type=sub)

    for f in r.fields.values():
        if not f.name.startswith("tokenizer."):
            copy(f)
    for f in voc.fields.values():
        if f.name.startswith("tokenizer."):
            copy(f)
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_shape=list(reversed([int(x) for x in t.shape])),
                     raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_models(args, work: Path, hanul: Path):
    out = {}
    hf = work / f"hf-{args.size}"
    if not (hf / "model.safetensors").exists():
        n = write_hf_folder(hf, args.size, seed=20240601)
        log(f"random llama {args.size}: {n / 1e6:.1f}M parameters in {hf}")
    base = work / f"llama-{args.size}-novocab-f32.gguf"
    if not base.exists():
        run([hanul, "convert", "-m", hf, "-o", base, "--type", "F32"])
    for t in args.types:
        path = work / f"llama-{args.size}-{t.lower()}.gguf"
        if not path.exists():
            if t == "F32":
                add_vocab(base, path)
            else:
                f32 = work / f"llama-{args.size}-f32.gguf"
                if not f32.exists():
                    add_vocab(base, f32)
                run([hanul, "convert", "-m", f32, "-o", path, "--type", t])
        out[t] = path
    return out


# ---- measuring ------------------------------------------------------------------

def bench_hanul(hanul_bench: Path, model: Path, args):
    p = run([hanul_bench, "-m", model, "-p", args.p, "-n", args.n, "-t", args.threads, "-r", args.reps])
    res = {}
    for line in p.stdout.splitlines():  # "pp128 t=2 1234.56 +- 7.89 tok/s"
        f = line.split()
        res[f[0][:2]] = float(f[2])
    return res


def bench_llama(llama_bench: Path, model: Path, args):
    p = run([llama_bench, "-m", model, "-p", args.p, "-n", args.n, "-t", args.threads,
             "-r", args.reps, "-o", "json"])
    res = {}
    for e in json.loads(p.stdout):
        res["pp" if e["n_prompt"] > 0 else "tg"] = float(e["avg_ts"])
    return res


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def measure(args, models, hanul_bench, llama_bench):
    # figures[type][tool][test] = list over rounds
    tools = ["hanul", "llama"] + (["base"] if args.hanul_bench_base else [])
    figures = {t: {tool: {"pp": [], "tg": []} for tool in tools} for t in models}
    for rnd in range(args.rounds):
        for t, path in models.items():
            order = tools if (rnd % 2 == 0) else list(reversed(tools))
            for tool in order:
                load = load_avg()
                if tool == "llama":
                    r = bench_llama(llama_bench, path, args)
                else:
                    r = bench_hanul(hanul_bench if tool == "hanul" else Path(args.hanul_bench_base), path, args)
                for k in ("pp", "tg"):
                    figures[t][tool][k].append(r[k])
                print(f"round {rnd + 1} {t:5s} {tool:6s} pp{args.p} {r['pp']:9.2f}  tg{args.n} "
                      f"{r['tg']:8.2f} tok/s  (load {load})", flush=True)
    return figures


def report(args, figures):
    print()
    print(f"hanul / llama.cpp, {args.threads} threads, {args.rounds} alternating rounds, "
          f"each the mean of {args.reps} runs; ratio = geometric mean of per-round ratios")
    print(f"{'type':6s} {'test':6s} {'hanul tok/s':>12s} {'llama.cpp':>10s} {'ratio':>6s}  per-round")
    for t, f in figures.items():
        for k, name in (("pp", f"pp{args.p}"), ("tg", f"tg{args.n}")):
            h, l = f["hanul"][k], f["llama"][k]
            ratios = [a / b for a, b in zip(h, l)]
            print(f"{t:6s} {name:6s} {geomean(h):12.2f} {geomean(l):10.2f} {geomean(ratios):6.2f}  "
                  + " ".join(f"{x:.2f}" for x in ratios))
            if "base" in f:
                b = f["base"][k]
                gain = [a / c for a, c in zip(h, b)]
                print(f"{'':6s} {'':6s} {'base':>12s} {geomean(b):10.2f} {geomean(gain):6.2f}  "
                      "hanul / base per round: " + " ".join(f"{x:.2f}" for x in gain))


# ---- interop: the same greedy text ----------------------------------------------

def interop(args, models, hanul: Path, llama_simple: Path):
    prompt = "Once upon a time"
    ok = True
    print()
    print(f"interop: llama-simple and `hanul run` greedy-decode {args.check_n} tokens after "
          f"{prompt!r} from each GGUF written by hanul")
    for t, path in models.items():
        ls = subprocess.run([str(llama_simple), "-m", str(path), "-n", str(args.check_n), prompt],
                            capture_output=True)
        hn = subprocess.run([str(hanul), "run", "-m", str(path), "-p", prompt, "-n", str(args.check_n),
                             "-t", str(args.threads)], capture_output=True)
        if ls.returncode != 0 or hn.returncode != 0:
            print(f"{t:6s} FAILED to run: llama-simple rc={ls.returncode} hanul rc={hn.returncode}")
            print(ls.stderr.decode(errors="replace")[-2000:])
            print(hn.stderr.decode(errors="replace")[-2000:])
            ok = False
            continue
        # Both echo the prompt (llama-simple as "<s> Once upon a time"); compare what follows it.
        def after_prompt(out):
            text = out.decode(errors="replace").rstrip("\n")
            pos = text.find(prompt)
            return text[pos + len(prompt):] if pos >= 0 else text
        # hanul's streamed text drops the SentencePiece space of the first generated piece
        # ("timeships"), llama-simple keeps it ("time ships"): compare without it.
        lt, ht = after_prompt(ls.stdout).removeprefix(" "), after_prompt(hn.stdout).removeprefix(" ")
        same = lt == ht
        n_common = next((i for i, (a, b) in enumerate(zip(lt, ht)) if a != b), min(len(lt), len(ht)))
        words = len(lt[:n_common].split(" ")) - 1
        print(f"{t:6s} {'same' if same else 'DIFFERENT'}: {len(ht)} chars"
              + ("" if same else f", first difference at char {n_common} (after {words} words)"))
        if not same or args.verbose:
            print(f"   llama.cpp: {lt!r}\n   hanul:     {ht!r}")
        ok &= same
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp-dir", default=os.environ.get("LLAMA_CPP_DIR"),
                    help="llama.cpp build folder with bin/llama-bench and bin/llama-simple")
    ap.add_argument("--hanul-build", default=str(REPO / "build"),
                    help="hanul build folder with bin/hanul and bench/hanul_bench")
    ap.add_argument("--hanul", help="the hanul CLI (default: HANUL_BUILD/bin/hanul)")
    ap.add_argument("--hanul-bench", help="hanul_bench (default: HANUL_BUILD/bench/hanul_bench)")
    ap.add_argument("--hanul-bench-base",
                    help="a second hanul_bench (e.g. built before a kernel change) to alternate with the others")
    ap.add_argument("--work", default="/tmp/hanul-vs-llama", help="where the test models go")
    ap.add_argument("--size", default="125m", choices=sorted(SIZES))
    ap.add_argument("--types", default="F32,F16,Q8_0,Q4_0,Q4_K")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2, help="runs per measurement (both tools)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--check-n", type=int, default=32, help="greedy tokens in the interop check")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.types = [t.strip().upper() for t in args.types.split(",") if t.strip()]
    if not args.llama_cpp_dir:
        ap.error("give --llama-cpp-dir or set LLAMA_CPP_DIR (a llama.cpp build folder)")
    lbin = Path(args.llama_cpp_dir) / "bin"
    hb = Path(args.hanul_build)
    hanul = Path(args.hanul) if args.hanul else hb / "bin" / "hanul"
    hanul_bench = Path(args.hanul_bench) if args.hanul_bench else hb / "bench" / "hanul_bench"
    for exe in (lbin / "llama-bench", lbin / "llama-simple", hanul, hanul_bench):
        if not exe.exists():
            ap.error(f"{exe} does not exist: build it first")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    print(f"machine: {os.cpu_count()} CPUs, load {load_avg()}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    models = make_models(args, work, hanul)
    for t, p in models.items():
        print(f"model {t:5s} {p.stat().st_size / 2**20:8.1f} MiB  {p}")
    ok = True
    if not args.no_check:
        ok = interop(args, models, hanul, lbin / "llama-simple")
    if not args.no_bench:
        figures = measure(args, models, hanul_bench, lbin / "llama-bench")
        report(args, figures)
    print(f"load at the end: {load_avg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
