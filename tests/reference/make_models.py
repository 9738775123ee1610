#!/usr/bin/env python3
"""Builds the random-weight reference models and their transformers goldens.

For each architecture hanul must run (Llama 2 / Llama 3 / Llama with linear RoPE scaling / Mistral /
SOLAR / Qwen2) this writes, under OUT/<name>/:
  hf/                 config.json + model.safetensors (save_pretrained, float32)
  golden.json         prompts, greedy continuations, logit scale, smallest greedy margin
  golden_logits.npy   float32 [total prompt positions, n_vocab]: the logits of every prompt
                      position, prompts concatenated in order (the layout of `hanul run --logits`)

The goldens come from transformers on CPU in float32 with eager attention, one prompt at a time
(no padding), so they are the plain definition of each architecture. Greedy continuations are a
manual argmax loop over the full sequence (no KV cache, no EOS): the most literal reference there
is.

Weights: every tensor is drawn from torch.manual_seed(seed): N(0, 0.02) for matrices and biases,
1 + N(0, 0.02) for RMSNorm weights. Nothing is zero, so a weight that hanul skips or swaps shows.

Run: python make_models.py OUT [--force]. It does nothing when OUT/.stamp matches this file and the
library versions, so the test suite can call it every time.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

N_GENERATE = 32
# A greedy step whose top-2 logits differ by less than this (relative to the logit scale) could
# flip under float32 reordering in hanul, which would make the greedy test flaky for no fault of
# either side; such seeds are skipped (see pick_seed). 5x the F32 logits tolerance of 1e-4.
MIN_GREEDY_MARGIN = 5e-4

ARCHS = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
}

# Small but real-shaped models. Between them: head_dim 64 and 128; n_kv_heads 1, 2 and == n_heads;
# vocab 1000 and 997 (not a multiple of 32); tied and untied output; hidden sizes that are and are
# not multiples of 256 (Q4_K's block), RoPE plain / llama3 / linear, theta 1e4, 5e5, 1e6.
MODELS = {
    # Llama 2 7B's layout: MHA (kv == heads), theta 1e4, eps 1e-5, untied.
    "llama2": dict(arch="llama", seed=1, config=dict(
        vocab_size=1000, hidden_size=256, intermediate_size=768, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5, rope_theta=10000.0,
        max_position_embeddings=512, tie_word_embeddings=False)),
    # Llama 3.1 / 3.2: GQA, theta 5e5, rope_scaling llama3, tied (as 3.2 1B). The original context
    # is 64 (real models: 8192) so that the scaled and the smoothed frequency bands both matter at
    # the short positions of the test; it is set at the top level too because llama.cpp's
    # convert_hf_to_gguf.py reads original_max_position_embeddings from there.
    "llama3": dict(arch="llama", seed=2, config=dict(
        vocab_size=997, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, rms_norm_eps=1e-5, rope_theta=500000.0,
        max_position_embeddings=512, original_max_position_embeddings=64, tie_word_embeddings=True,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=64))),
    # Linear position interpolation (e.g. LongChat, Vicuna-16k): positions divided by the factor.
    "llama_linear": dict(arch="llama", seed=3, config=dict(
        vocab_size=1000, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=10000.0,
        max_position_embeddings=512, tie_word_embeddings=False,
        rope_scaling=dict(type="linear", factor=2.0))),
    # Mistral 7B v0.2 style: GQA with a single KV head here, theta 1e6; the sliding window is longer
    # than any test sequence (as in real use below 4096 tokens).
    "mistral": dict(arch="mistral", seed=4, config=dict(
        vocab_size=1000, hidden_size=256, intermediate_size=768, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, rms_norm_eps=1e-5, rope_theta=1000000.0,
        max_position_embeddings=512, sliding_window=4096, tie_word_embeddings=False)),
    # SOLAR 10.7B: the Llama architecture with more layers (48 there, 6 here). Hidden 128 is not a
    # multiple of Q4_K's 256-wide super-block, so Q4_K conversion must fall back for those rows.
    "solar": dict(arch="llama", seed=5, config=dict(
        vocab_size=1000, hidden_size=128, intermediate_size=256, num_hidden_layers=6,
        num_attention_heads=2, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
        max_position_embeddings=512, tie_word_embeddings=False)),
    # Qwen2 (0.5B layout): q/k/v biases, tied embeddings, theta 1e6, eps 1e-6, head_dim 128.
    "qwen2": dict(arch="qwen2", seed=6, config=dict(
        vocab_size=997, hidden_size=256, intermediate_size=768, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0,
        max_position_embeddings=512, tie_word_embeddings=True, use_sliding_window=False)),
}


def build_model(spec, seed):
    """The transformers model of `spec` with every weight drawn from `seed` (float32, eager)."""
    config_cls, model_cls = ARCHS[spec["arch"]]
    config = config_cls(**spec["config"], bos_token_id=1, eos_token_id=2, torch_dtype="float32",
                        attn_implementation="eager")
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):  # tied weights appear once
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.02 * torch.randn_like(p))
            else:
                p.copy_(0.02 * torch.randn_like(p))
    return model


def make_prompts(vocab_size, seed):
    """Three prompts of different lengths, each starting with BOS (1); one is BOS alone."""
    g = torch.Generator().manual_seed(1000 + seed)
    lengths = [13, 6, 1]
    return [[1] + torch.randint(3, vocab_size, (n - 1,), generator=g).tolist() for n in lengths]


@torch.no_grad()
def prompt_logits(model, prompts):
    """float32 [sum(len(p)), n_vocab]: every prompt position, prompts concatenated in order."""
    return torch.cat([model(torch.tensor([p])).logits[0] for p in prompts]).float().numpy()


@torch.no_grad()
def greedy(model, prompt, n):
    """n argmax tokens after `prompt`, recomputing the whole sequence each step, and the smallest
    top-1 / top-2 logit gap met on the way."""
    ids = list(prompt)
    margin = math.inf
    for _ in range(n):
        logits = model(torch.tensor([ids])).logits[0, -1]
        top2 = torch.topk(logits, 2).values
        margin = min(margin, float(top2[0] - top2[1]))
        ids.append(int(torch.argmax(logits)))
    return ids[len(prompt):], margin


def rope_sensitivity(spec, seed, prompts, logits):
    """How much the logits move when rope_scaling is dropped: proof that the test can see it."""
    plain = dict(spec, config={k: v for k, v in spec["config"].items() if k != "rope_scaling"})
    return float(np.abs(prompt_logits(build_model(plain, seed), prompts) - logits).max())


def make_one(name, spec, out_dir):
    # Try seeds until every greedy step is decided by a clear margin (see MIN_GREEDY_MARGIN).
    for attempt in range(50):
        seed = spec["seed"] + 100 * attempt
        model = build_model(spec, seed)
        prompts = make_prompts(model.config.vocab_size, seed)
        logits = prompt_logits(model, prompts)
        scale = max(1.0, float(np.abs(logits).max()))
        generated, margins = zip(*(greedy(model, p, N_GENERATE) for p in prompts))
        if min(margins) >= MIN_GREEDY_MARGIN * scale:
            break
    else:
        raise RuntimeError(f"{name}: no seed gives greedy margins >= {MIN_GREEDY_MARGIN}")

    # A cross-check of the manual loop: transformers' own generate (KV cache) must agree.
    for p, g in zip(prompts, generated):
        out = model.generate(torch.tensor([p]), max_new_tokens=N_GENERATE,
                             min_new_tokens=N_GENERATE, do_sample=False, eos_token_id=None,
                             pad_token_id=0)
        assert out[0, len(p):].tolist() == list(g), f"{name}: generate() disagrees with argmax loop"

    golden = dict(name=name, arch=spec["arch"], seed=seed, prompts=prompts,
                  generated=[list(g) for g in generated], logit_scale=scale,
                  min_greedy_margin=min(margins), n_vocab=model.config.vocab_size)
    if "rope_scaling" in spec["config"]:
        golden["rope_scaling_effect"] = rope_sensitivity(spec, seed, prompts, logits)
        # The F32 tolerance is 1e-4 * scale; scaling must move the logits far more than that.
        assert golden["rope_scaling_effect"] > 100 * 1e-4 * scale, (name, golden)

    d = out_dir / name
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(d / "hf", safe_serialization=True)
    np.save(d / "golden_logits.npy", logits.astype(np.float32))
    (d / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"{name}: seed {seed}, {sum(p.numel() for p in model.parameters())} params, "
          f"logit scale {scale:.3f}, min greedy margin {min(margins):.2e}", flush=True)


def stamp_of():
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(f"{torch.__version__} {transformers.__version__} {np.__version__}".encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    args = ap.parse_args()
    stamp = args.out / ".stamp"
    if not args.force and stamp.exists() and stamp.read_text() == stamp_of():
        print(f"make_models: {args.out} is up to date")
        return 0
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    for name, spec in MODELS.items():
        make_one(name, spec, args.out)
    stamp.write_text(stamp_of())
    return 0


if __name__ == "__main__":
    sys.exit(main())
