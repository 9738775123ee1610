#!/usr/bin/env python3
"""hanul's quantize_row / dequantize_row against the gguf PyPI package (gguf-py,
the numpy twin of ggml-quants.c that llama.cpp's convert scripts use), numpy's
float16 and torch's bfloat16.

Checked bit for bit on random data:
  dequantize: F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K
              (every type both gguf-py and hanul implement), random blocks
  quantize:   F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 (gguf-py has no K-quant or
              Q8_1 / Q8_K quantizer: tests/unit/tensor/test_quantize.cpp
              compares those with blocks written by ggml's own
              quantize_row_*_ref, tests/fixtures/quants/)
  fp16:       all 65536 halves -> f32 vs numpy; f32 -> f16 at every rounding
              boundary vs numpy astype(float16)
  bf16:       f32 -> bf16 at every rounding boundary vs torch
Also: every K-quant that hanul writes decodes in gguf-py to exactly hanul's own
dequantized floats (the layouts agree).

Usage: check_quants.py --tool build/tests/quant_tool
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import quants as gq

BLOCK = {  # type: (elements per block, bytes per block, offsets of fp16 fields)
    "F16": (1, 2, []), "BF16": (1, 2, []),
    "Q4_0": (32, 18, [0]), "Q4_1": (32, 20, [0, 2]),
    "Q5_0": (32, 22, [0]), "Q5_1": (32, 24, [0, 2]),
    "Q8_0": (32, 34, [0]), "Q8_1": (32, 36, [0, 2]),
    "Q2_K": (256, 84, [80, 82]), "Q3_K": (256, 110, [108]),
    "Q4_K": (256, 144, [0, 2]), "Q5_K": (256, 176, [0, 2]),
    "Q6_K": (256, 210, [208]), "Q8_K": (256, 292, []),
}
GGUF_DEQUANT = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
GGUF_QUANT = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
HANUL_ONLY_QUANT = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]  # decoded by gguf-py

failures = []


class Tool:
    def __init__(self, path, tmp):
        self.path, self.tmp = path, tmp

    def run(self, mode, qtype, data: bytes) -> bytes:
        src, dst = os.path.join(self.tmp, "in.bin"), os.path.join(self.tmp, "out.bin")
        with open(src, "wb") as f:
            f.write(data)
        subprocess.run([self.path, mode, qtype, src, dst], check=True)
        with open(dst, "rb") as f:
            return f.read()

    def quantize(self, qtype, x: np.ndarray) -> np.ndarray:
        return np.frombuffer(self.run("quantize", qtype, x.astype("<f4").tobytes()), np.uint8)

    def dequantize(self, qtype, blocks: np.ndarray) -> np.ndarray:
        return np.frombuffer(self.run("dequantize", qtype, blocks.tobytes()), "<f4")


def same_floats(a: np.ndarray, b: np.ndarray) -> bool:
    """Identical bit patterns, except that any NaN matches any NaN."""
    a, b = np.asarray(a, np.float32).ravel(), np.asarray(b, np.float32).ravel()
    if a.shape != b.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | both_nan))


def check(ok: bool, what: str, detail: str = ""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else "  " + detail))
    if not ok:
        failures.append(what)


def first_diff(a, b):
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape or a.itemsize != b.itemsize:
        return f"shapes {a.shape} vs {b.shape}"
    u = np.dtype(f"u{a.itemsize}")
    diff = np.flatnonzero(a.view(u) != b.view(u))
    if diff.size == 0:
        return "no bit difference"
    i = int(diff[0])
    return f"{diff.size} differ, first at {i}: hanul {a[i]!r} vs reference {b[i]!r}"


def random_blocks(rng, qtype, n_blocks):
    """Random block bytes whose fp16 scale fields are finite (random bytes
    there would give inf/NaN scales, which no real file has)."""
    qk, size, half_offsets = BLOCK[qtype]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in half_offsets:
        h = (rng.standard_normal(n_blocks) * 10.0 ** rng.uniform(-4, 1, n_blocks)).astype(np.float16)
        b[:, off:off + 2] = h.view(np.uint8).reshape(n_blocks, 2)
    return b


def random_rows(rng, n):
    """Floats shaped like weights and activations, plus hard cases: zero and
    constant blocks, one outlier, tiny and huge magnitudes, exact .5 ties."""
    parts = [
        rng.standard_normal(n).astype(np.float32),
        (rng.standard_normal(n) * 0.02).astype(np.float32),
        (rng.uniform(-1, 1, n) * 10.0 ** rng.uniform(-6, 4, n)).astype(np.float32),
        np.abs(rng.standard_normal(n)).astype(np.float32),
        -np.abs(rng.standard_normal(n)).astype(np.float32),
        (rng.integers(-8, 8, n) * 0.5).astype(np.float32),
    ]
    x = rng.standard_normal(n).astype(np.float32)
    x[: n // 4] = 0.0
    x[n // 4: n // 2] = 1.25
    x[n // 2] = 1000.0
    parts.append(x)
    return parts


def check_dequantize(tool, rng):
    for qtype in GGUF_DEQUANT:
        qk, size, _ = BLOCK[qtype]
        n_blocks = 37 if qk > 1 else 4097
        blocks = random_blocks(rng, qtype, n_blocks)
        if qtype == "BF16":  # keep NaNs out of the bf16 input; tested separately
            v = blocks.view(np.uint16)
            v[(v & 0x7f80) == 0x7f80] &= 0xbfff
        ours = tool.dequantize(qtype, blocks)
        ref = gq.dequantize(blocks.reshape(-1), QT[qtype]).reshape(-1)
        check(same_floats(ours, ref), f"dequantize {qtype}: {n_blocks} random blocks",
              first_diff(ours, ref))


def check_quantize(tool, rng):
    for qtype in GGUF_QUANT:
        qk = BLOCK[qtype][0]
        for k, x in enumerate(random_rows(rng, 32 * 41)):
            ours = tool.quantize(qtype, x)
            ref = np.ascontiguousarray(gq.quantize(x, QT[qtype])).view(np.uint8).reshape(-1)
            check(ours.shape == ref.shape and bool(np.all(ours == ref)),
                  f"quantize {qtype}: data set {k}, bytes", first_diff(ours, ref))
            back = tool.dequantize(qtype, ours)
            ref_back = gq.dequantize(ref, QT[qtype]).reshape(-1)
            check(same_floats(back, ref_back), f"quantize {qtype}: data set {k}, round trip",
                  first_diff(back, ref_back))
    # The K-quants gguf-py cannot write: hanul's bytes must decode in gguf-py to
    # exactly what hanul decodes them to.
    for qtype in HANUL_ONLY_QUANT:
        for k, x in enumerate(random_rows(rng, 256 * 7)):
            ours = tool.quantize(qtype, x)
            back = tool.dequantize(qtype, ours)
            ref_back = gq.dequantize(ours, QT[qtype]).reshape(-1)
            check(same_floats(back, ref_back), f"quantize {qtype}: data set {k}, gguf-py decodes",
                  first_diff(back, ref_back))


def boundary_floats():
    """float32 values at every fp16 / bf16 rounding decision: each exact
    half/bf16 value, the midpoints between neighbours (ties), and one float32
    ulp either side of each, over the whole range including subnormals."""
    h = np.arange(0, 0x7c00, dtype=np.uint32)  # positive finite halves
    lo = h.astype(np.uint16).view(np.float16).astype(np.float64)
    hi = (h + 1).astype(np.uint16).view(np.float16).astype(np.float64)
    mid = ((lo + hi) / 2).astype(np.float32)  # exact in float32
    vals = [lo.astype(np.float32), mid]
    b = np.arange(0, 0x7f80, dtype=np.uint32)  # positive finite bf16
    blo = (b << 16).view(np.float32)
    bmid = ((b << 16) + 0x8000).view(np.float32)  # exact tie between b and b+1
    vals += [blo, bmid]
    v = np.concatenate(vals)
    bits = v.view(np.uint32)
    v = np.concatenate([v, (bits + 1).view(np.float32), (bits - 1)[bits > 0].view(np.float32)])
    special = np.array([np.inf, np.nan, 65504, 65519.996, 65520, 3.4e38, 1e-45, 5.96e-8, 2.98e-8,
                        2.9802322e-08, 2.9802326e-08], np.float32)
    v = np.concatenate([v, special])
    return np.concatenate([v, -v])


def check_half_conversions(tool, rng):
    halves = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    ours = tool.dequantize("F16", halves.view(np.uint8))
    check(same_floats(ours, halves.view(np.float16).astype(np.float32)),
          "fp16 -> f32: all 65536 halves vs numpy")

    x = boundary_floats()
    x = np.concatenate([x, rng.integers(0, 2**32, 1 << 20, dtype=np.uint64)
                        .astype(np.uint32).view(np.float32)])
    with np.errstate(over="ignore", invalid="ignore"):
        ref = x.astype(np.float16)
    ours = tool.quantize("F16", x).view(np.float16)
    nan = np.isnan(ref)
    check(bool(np.all((ours.view(np.uint16) == ref.view(np.uint16)) | (nan & np.isnan(ours)))),
          f"f32 -> fp16: {x.size} boundary and random floats vs numpy astype(float16)",
          first_diff(ours.view(np.uint16)[~nan], ref.view(np.uint16)[~nan]))

    import torch
    ref_bf = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    ours_bf = tool.quantize("BF16", x).view(np.uint16)
    nan = np.isnan(x)
    check(bool(np.all((ours_bf == ref_bf)[~nan])) and
          bool(np.all((ours_bf[nan] & 0x7fff) > 0x7f80)),
          f"f32 -> bf16: {x.size} boundary and random floats vs torch",
          first_diff(ours_bf[~nan], ref_bf[~nan]))
    # gguf-py's BF16 matches ggml even on NaN payloads.
    ref_g = np.ascontiguousarray(gq.quantize(x, QT.BF16)).view(np.uint16).reshape(-1)
    check(bool(np.all(ours_bf == ref_g)), "f32 -> bf16 vs gguf-py (NaNs included)",
          first_diff(ours_bf, ref_g))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, help="path to the quant_tool executable")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tool = Tool(args.tool, tmp)
        check_dequantize(tool, rng)
        if not os.environ.get("CHECK_QUANTS_DEQUANT_ONLY"):
            check_quantize(tool, rng)
            check_half_conversions(tool, rng)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all quantization checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
