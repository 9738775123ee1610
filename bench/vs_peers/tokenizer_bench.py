#!/usr/bin/env python3
"""Tokenizer encode speed: hanul vs HF tokenizers, same tokenizer.json, one thread.

Builds a ~10 MB mixed Korean/English text at run time (half Korean, half
English lines, interleaved, from /work/shared/data/corpus when present, else
from tests/fixtures/corpus repeated), then runs, alternately and --rounds
times, hanul's build/bench/tokenizer_bench and HF tokenizers'
Tokenizer.encode_batch over the lines (TOKENIZERS_PARALLELISM=false, so one
thread). Both encode every line on its own with special-token matching on;
the ids must be identical (checksum). Prints MB/s and hanul/HF.

usage: tokenizer_bench.py --bench build/bench/tokenizer_bench --tokenizer tokenizer.json [--mb 10]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
ROOT = Path(__file__).resolve().parents[2]


def corpus_lines(paths):
    out = []
    for p in paths:
        text = Path(p).read_text(encoding="utf-8", errors="replace")
        out += [l for l in text.split("\n") if l.strip()]
    return out


def build_text(mb):
    shared = Path("/work/shared/data/corpus")
    if shared.exists():
        ko = sorted(str(p) for p in (shared / "ko").rglob("*") if p.is_file())
        en = sorted(str(p) for p in (shared / "en").rglob("*") if p.is_file())
    else:
        fx = ROOT / "tests" / "fixtures" / "corpus"
        ko = sorted(str(p) for p in fx.glob("ko_*"))
        en = sorted(str(p) for p in fx.glob("en_*"))
    ko_lines, en_lines = corpus_lines(ko), corpus_lines(en)
    target = int(mb * 1e6)
    out, size, i = [], 0, 0
    ko_size = en_size = 0
    while size < target:
        # Keep Korean and English bytes about equal.
        src = ko_lines if ko_size <= en_size else en_lines
        line = src[i % len(src)] if src is ko_lines else src[(i * 7) % len(src)]
        out.append(line)
        n = len(line.encode("utf-8")) + 1
        size += n
        if src is ko_lines:
            ko_size += n
        else:
            en_size += n
        i += 1
    return "\n".join(out), ko_size, en_size


def fnv(ids_lists):
    h = 1469598103934665603
    n = 0
    for ids in ids_lists:
        n += len(ids)
        for i in ids:
            h = ((h ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h, n


def run_hf(tok, lines, nbytes):
    t0 = time.perf_counter()
    enc = tok.encode_batch(lines, add_special_tokens=False)
    s = time.perf_counter() - t0
    return nbytes / 1e6 / s, enc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=str(ROOT / "build" / "bench" / "tokenizer_bench"))
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json (both sides load it)")
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default="/tmp/hanul_tokenizer_bench")
    args = ap.parse_args()
    from tokenizers import Tokenizer

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    text, ko, en = build_text(args.mb)
    text_file = work / "mixed.txt"
    text_file.write_text(text, encoding="utf-8")
    lines = text.split("\n")
    nbytes = len(text.encode("utf-8"))
    print(f"text: {nbytes / 1e6:.2f} MB, {len(lines)} lines, Korean {ko / 1e6:.2f} MB, English {en / 1e6:.2f} MB")
    print(f"tokenizer: {args.tokenizer}")
    hf = Tokenizer.from_file(args.tokenizer)

    hanul_best = hf_best = 0.0
    for r in range(args.rounds):
        out = subprocess.run([args.bench, args.tokenizer, str(text_file), "1"], capture_output=True, check=True)
        h = json.loads(out.stdout)
        hf_mbs, enc = run_hf(hf, lines, nbytes)
        if r == 0:
            checksum, ntok = fnv(e.ids for e in enc)
            if checksum != h["checksum"] or ntok != h["tokens"]:
                sys.exit(f"ids differ: hanul {h['tokens']} tokens (checksum {h['checksum']}), "
                         f"HF {ntok} tokens (checksum {checksum})")
            print(f"ids identical: {ntok} tokens, {nbytes / ntok:.2f} bytes/token")
        print(f"round {r + 1}: hanul {h['mb_s']:.2f} MB/s   HF tokenizers {hf_mbs:.2f} MB/s   "
              f"hanul/HF {h['mb_s'] / hf_mbs:.2f}")
        hanul_best, hf_best = max(hanul_best, h["mb_s"]), max(hf_best, hf_mbs)
    print(f"best: hanul {hanul_best:.2f} MB/s, HF tokenizers {hf_best:.2f} MB/s, hanul/HF {hanul_best / hf_best:.2f}")


if __name__ == "__main__":
    main()
