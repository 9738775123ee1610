"""One training step of hanul (train/train_step.h) against the same step in PyTorch.

For untied and tied embeddings this makes a small random transformers
LlamaForCausalLM (vocab 97, hidden 64, 2 layers, 4 heads, 2 kv heads, ffn 96),
saves it as a safetensors folder, and runs
    train_step_tool MODEL_DIR tokens.npy OUT_DIR lr=... wd=0.1 max_norm=1 micro=M
(tests/tools/train_step_tool.cpp), which loads it with hanul::load_model, copies
it to float32 and takes ONE step on the token batch [B, T+1]. The script takes
the same step in torch, float32 as training runs: logits of the first T columns,
F.cross_entropy (mean) against the next tokens, clip_grad_norm_(1.0), and
torch.optim.AdamW(lr, betas, eps, weight_decay=0.1). Required:
  - loss: relative error < 1e-5;
  - grad norm before clipping: relative error < 1e-5;
  - every updated weight: max |hanul - torch| < 1e-6, or, failing that, every
    weight that differs by more than 1e-6 has a (clipped) torch gradient below
    1e-6 = 100 * eps, i.e. at the noise floor, differs by at most 2 * lr, and
    such weights are at most 0.1% of the tensor (at least one allowed). Why that
    is the right scale: AdamW's
    first step moves a weight by lr * g / (|g| + eps) plus the decay, about lr
    whatever the gradient's size, so float32 rounding differences in the
    gradients (~1e-6 relative) change the update by ~lr * 1e-6; only where a
    gradient is itself at the float noise floor (|g| near eps, e.g. a weight the
    batch barely touches) can the two sides take a step of a different size,
    at most 2 * lr. The weights themselves carry float32 rounding of ~6e-8 * |w|.
The batch is also run as M = B micro-batches (gradient accumulation), which must
give the same step, since every row has the same number of targets.

    python tests/reference/check_train_step.py --tool build/tests/train_step_tool
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file
from transformers import LlamaConfig, LlamaForCausalLM

LR, BETAS, EPS, WD, MAX_NORM = 1e-3, (0.9, 0.999), 1e-8, 0.1, 1.0
B, T = 3, 16
failures = []


def make_model(tied, seed):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=tied,
                      attn_implementation="eager", torch_dtype="float32")
    model = LlamaForCausalLM(cfg).float()
    # A random-init model has its norms at exactly 1; move them off it so that
    # their gradients and updates are checked against a non-trivial point.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def torch_step(model, tokens):
    model.train()
    x = torch.tensor(tokens, dtype=torch.long)
    logits = model(input_ids=x[:, :-1]).logits  # [B, T, V]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1))
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WD,
                            foreach=False)
    opt.step()
    return loss.item(), norm.item()


def check(case, tool, tied, micro, workdir):
    d = Path(tempfile.mkdtemp(prefix=f"{case}_", dir=workdir))
    model = make_model(tied, seed=1234 + int(tied))
    model.save_pretrained(d / "model", safe_serialization=True)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(99 + int(tied))
    tokens = rng.integers(0, 97, size=(B, T + 1))
    np.save(d / "tokens.npy", tokens.astype(np.float32))
    (d / "out").mkdir()
    args = [tool, str(d / "model"), str(d / "tokens.npy"), str(d / "out"), f"lr={LR}",
            f"beta1={BETAS[0]}", f"beta2={BETAS[1]}", f"eps={EPS}", f"wd={WD}",
            f"max_norm={MAX_NORM}", f"micro={micro}"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"{case}: train_step_tool failed: {r.stderr.strip()}")
        print(f"  FAIL {case}: {r.stderr.strip()}")
        return
    loss, norm = torch_step(model, tokens)
    h_loss = float(np.load(d / "out" / "loss.npy")[0])
    h_norm = float(np.load(d / "out" / "grad_norm.npy")[0])
    got = load_file(str(d / "out" / "model.safetensors"))

    def verdict(ok, what):
        print(f"  {'ok  ' if ok else 'FAIL'} {case:14s} {what}")
        if not ok:
            failures.append(f"{case}: {what}")

    rel = abs(h_loss - loss) / abs(loss)
    verdict(rel < 1e-5, f"loss hanul {h_loss:.7f} torch {loss:.7f} rel err {rel:.1e}")
    rel = abs(h_norm - norm) / abs(norm)
    verdict(rel < 1e-5, f"grad norm hanul {h_norm:.6f} torch {norm:.6f} rel err {rel:.1e} "
                        f"({'clipped' if norm > MAX_NORM else 'not clipped'})")
    want = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    if tied:
        verdict("lm_head.weight" not in got, "tied: no lm_head.weight of its own")
        want.pop("lm_head.weight")
    verdict(set(got) == set(want), f"the same {len(want)} tensors")
    grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
    worst_abs, worst_rel, worst_step, n_over, g_over = 0.0, 0.0, 0.0, 0, 0.0
    for name in sorted(set(got) & set(want)):
        diff = np.abs(got[name].astype(np.float64) - want[name])
        a = float(diff.max())
        rel_w = a / float(np.abs(want[name]).max())
        moved = float(np.abs(want[name] - before[name].numpy()).max())
        worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, rel_w)
        worst_step = max(worst_step, a / LR)
        over = diff >= 1e-6
        g_max = float(np.abs(grads[name][over]).max()) if over.any() else 0.0
        n_over, g_over = n_over + int(over.sum()), max(g_over, g_max)
        few = int(over.sum()) <= max(1, over.size // 1000)
        if not (a < 1e-6 or (g_max < 100 * EPS and a <= 2 * LR and few)):
            verdict(False, f"{name}: max abs diff {a:.2e} (rel {rel_w:.2e}, the step moved it {moved:.2e}, "
                           f"{int(over.sum())} weights differ by >= 1e-6, their |grad| up to {g_max:.1e})")
        if moved < 0.5 * LR:
            verdict(False, f"{name}: torch's step barely moved it ({moved:.2e}): the check is vacuous")
    verdict(True, f"updated weights: max abs diff {worst_abs:.2e}, max rel (to the tensor's max) "
                  f"{worst_rel:.2e}, max diff / lr {worst_step:.2e}; {n_over} weights differ by >= 1e-6, "
                  f"all with |grad| <= {g_over:.1e} (noise floor)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="check_train_step_") as workdir:
        for tied in (False, True):
            for micro in (1, B):
                case = f"{'tied' if tied else 'untied'} micro={micro}"
                check(case, a.tool, tied, micro, workdir)
    if failures:
        print(f"{len(failures)} failure(s):\n  " + "\n  ".join(failures))
        return 1
    print("one training step matches PyTorch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
