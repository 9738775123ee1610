#!/usr/bin/env python3
"""Does training with bf16 matmuls (matmul_precision: bf16) follow float32's loss curve?

Trains the default model's recipe (models/hanul-mini/train.yaml: the llama2.c 15M shape, the
8192-token Korean + English tokenizer) twice from the same seed, float32 and bf16 matmuls, one
thread each and side by side, and compares the two metrics logs: the validation loss at every
evaluation and the training loss averaged over windows of steps.

  .venv/bin/python bench/train/bf16_loss_curve.py --data DATA --work DIR [--steps 600]
  (DATA from `PREPARE_ONLY=1 bash scripts/train-default-model CORPUS WORK`, i.e. WORK/data)
  .venv/bin/python bench/train/bf16_loss_curve.py --compare RUN_FP32 RUN_BF16   (runs made before)
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path


def records(run):
    return [json.loads(l) for l in (Path(run) / "metrics.jsonl").read_text().splitlines() if l.strip()]


def compare(fp32_run, bf16_run, window):
    a, b = records(fp32_run), records(bf16_run)
    n = min(len(a), len(b))
    print(f"{'steps':>11s} {'train fp32':>11s} {'train bf16':>11s} {'diff':>8s}")
    worst_train = 0.0
    for s in range(0, n, window):
        ta = sum(r["train_loss"] for r in a[s:s + window]) / len(a[s:s + window])
        tb = sum(r["train_loss"] for r in b[s:s + window]) / len(b[s:s + window])
        worst_train = max(worst_train, abs(tb - ta) / ta)
        print(f"{a[s]['step']:5d}-{a[min(n, s + window) - 1]['step']:<5d} {ta:11.4f} {tb:11.4f} {tb - ta:+8.4f}")
    print(f"\n{'step':>5s} {'val fp32':>9s} {'val bf16':>9s} {'diff':>8s}")
    worst_val = 0.0
    for ra, rb in zip(a[:n], b[:n]):
        if "val_loss" in ra and "val_loss" in rb:
            worst_val = max(worst_val, abs(rb["val_loss"] - ra["val_loss"]) / ra["val_loss"])
            print(f"{ra['step']:5d} {ra['val_loss']:9.4f} {rb['val_loss']:9.4f} {rb['val_loss'] - ra['val_loss']:+8.4f}")
    tok = lambda rs: sorted(r["tokens_per_s"] for r in rs)[len(rs) // 2]
    result = {"steps": n, "worst_train_window_rel_diff": round(worst_train, 4),
              "worst_val_rel_diff": round(worst_val, 4),
              "final_val_fp32": a[n - 1].get("val_loss"), "final_val_bf16": b[n - 1].get("val_loss"),
              "median_tok_s_fp32": round(tok(a[:n]), 1), "median_tok_s_bf16": round(tok(b[:n]), 1)}
    print(json.dumps(result))
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hanul", default="build/bin/hanul")
    ap.add_argument("--data")
    ap.add_argument("--work")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--compare", nargs=2, metavar=("RUN_FP32", "RUN_BF16"))
    a = ap.parse_args()
    if a.compare:
        compare(*a.compare, a.window)
        return
    if not a.data or not a.work:
        ap.error("give --data and --work, or --compare")
    runs = {p: Path(a.work) / f"run-{p}" for p in ("fp32", "bf16")}
    procs = [subprocess.Popen([a.hanul, "train", "--config", "models/hanul-mini/train.yaml", "--data", a.data,
                               "--out", runs[p], "--steps", str(a.steps), "--eval-every", "50",
                               "--checkpoint-every", str(a.steps), "--threads", "1", "--matmul-precision", p],
                              stdout=subprocess.DEVNULL, stderr=open(Path(a.work) / f"log-{p}.txt", "w"))
             for p in runs]
    if any(p.wait() != 0 for p in procs):
        sys.exit(f"a training run failed: see {a.work}/log-*.txt")
    compare(runs["fp32"], runs["bf16"], a.window)


if __name__ == "__main__":
    main()
