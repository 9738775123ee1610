"""A `hanul train` checkpoint is a Hugging Face model: transformers and tokenizers load it and agree with hanul.

Trains a tiny model for a few steps with `hanul train` on text tokenized by a byte-level BPE that
`hanul tokenizer train` learns here (the default model's recipe in small), then loads the checkpoint
folder with transformers' LlamaForCausalLM.from_pretrained and tokenizers' Tokenizer.from_file, and checks:
  - the tokenizer.json of the checkpoint encodes Korean and English text to the ids hanul gives;
  - the logits of every position equal hanul's (`hanul run --logits`) within 1e-4 of the logit scale;
  - the checkpoint converted to GGUF by `hanul convert` gives the same logits again;
  - the chat template in tokenizer_config.json renders in transformers as `hanul template` does.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
CORPUS = [ROOT / "tests" / "fixtures" / "corpus" / n for n in ("en_tinystories_val.txt", "ko_wikinews.txt")]
TEMPLATE_CONFIG = ROOT / "models" / "hanul-mini" / "tokenizer_config.json"
TEXTS = ["Once upon a time, there was a little girl.", "버락 오바마 미국 대통령이 공식 취임하였다.",
         "한국어와 English가 섞인 문장 123."]


def run(hanul, *args):
    r = subprocess.run([hanul, *map(str, args)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"FAIL: hanul {' '.join(map(str, args))}: {r.stderr}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hanul", required=True)
    a = ap.parse_args()
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, LlamaForCausalLM

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tok_dir = tmp / "tok"
        tok_dir.mkdir()
        run(a.hanul, "tokenizer", "train", "--vocab-size", 600, "--special", "<|endoftext|>", "--special",
            "<|im_start|>", "--special", "<|im_end|>", "-o", tok_dir / "tokenizer.json", *CORPUS)
        (tok_dir / "tokenizer_config.json").write_text(TEMPLATE_CONFIG.read_text())
        run(a.hanul, "data", "prepare", "--tokenizer", tok_dir / "tokenizer.json", "--out", tmp / "data",
            "--val-fraction", "0.05", *CORPUS)
        run(a.hanul, "train", "--data", tmp / "data", "--out", tmp / "run", "--dim", 48, "--n-layers", 2,
            "--n-heads", 4, "--n-kv-heads", 2, "--ffn-dim", 96, "--seq-len", 32, "--batch-size", 4,
            "--steps", 6, "--warmup-steps", 2, "--lr", "3e-3", "--min-lr", "3e-4", "--eval-every", 0,
            "--tie-embeddings", "false", "--threads", 2)
        ck = tmp / "run" / "checkpoint"

        # Tokenizer: HF tokenizers on the checkpoint's tokenizer.json against hanul on the same file.
        hf_tok = Tokenizer.from_file(str(ck / "tokenizer.json"))
        for text in TEXTS:
            ids = [int(x) for x in run(a.hanul, "tokenize", "-m", ck / "tokenizer.json", "--ids", text).split()]
            want = hf_tok.encode(text, add_special_tokens=False).ids
            if ids != want:
                failures += 1
                print(f"FAIL tokenizer: {text!r}: hanul {ids} HF {want}")

        # Logits: transformers from_pretrained on the folder against hanul on the folder and on its GGUF.
        model = LlamaForCausalLM.from_pretrained(str(ck), torch_dtype=torch.float32).eval()
        gguf = tmp / "mini.gguf"
        run(a.hanul, "convert", "-m", ck, "-o", gguf)
        for text in TEXTS:
            ids = hf_tok.encode(text, add_special_tokens=False).ids
            with torch.no_grad():
                ref = model(torch.tensor([ids])).logits[0].numpy()
            scale = float(np.abs(ref).max())
            for label, path in (("safetensors", ck), ("gguf", gguf)):
                out = tmp / f"logits_{label}.npy"
                run(a.hanul, "run", "-m", path, "--prompt-tokens", ",".join(map(str, ids)), "-n", 1,
                    "--logits", out, "--ids")
                got = np.load(out)[: len(ids)]
                err = float(np.abs(got - ref).max())
                ok = err <= 1e-4 * max(scale, 1.0)
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} logits {label}: {text[:20]!r}: max |d| {err:.2e} (scale {scale:.2f})")

        # Chat template: transformers' Jinja on the checkpoint's tokenizer_config.json against hanul template.
        hf = AutoTokenizer.from_pretrained(str(ck))
        msgs = [{"role": "user", "content": "안녕하세요?"}, {"role": "assistant", "content": "반가워요."},
                {"role": "user", "content": "Tell me a story."}]
        want = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        conv = tmp / "conv.json"
        conv.write_text(json.dumps(msgs, ensure_ascii=False))
        got = run(a.hanul, "template", "-m", ck, conv)
        if got != want:
            failures += 1
            print(f"FAIL chat template: hanul {got!r} transformers {want!r}")
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
