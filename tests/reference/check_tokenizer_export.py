"""hanul convert carries the tokenizer across formats, checked with the trusted readers.

For each llama.cpp vocab fixture (llama-spm: SentencePiece BPE, gpt-2: byte-level BPE):
  1. a tiny random-weight Llama GGUF is written with gguf-py, carrying the fixture's
     tokenizer.ggml.* keys as they are;
  2. `hanul convert` turns it into a Hugging Face folder: HF `tokenizers` must load its
     tokenizer.json and encode every llama.cpp test vector (.inp/.out) to the recorded ids, and a
     mixed Korean/English/code/emoji text to the ids `hanul tokenize` gives on the GGUF and on the
     folder (with and without special tokens); transformers' AutoTokenizer reads
     tokenizer_config.json (bos/eos);
  3. `hanul convert` turns the folder back into GGUF: gguf-py's GGUFReader must find the keys
     llama.cpp reads (tokenizer.ggml.model/pre/tokens/token_type/scores or merges, bos/eos ids
     as UINT32, add_bos/add_eos as BOOL) with the fixture's tokens, types and merges;
  4. `hanul run -p TEXT --ids` gives the same prompt and generated ids on all three files.

Usage: check_tokenizer_export.py HANUL_BIN FIXTURE_DIR WORK_DIR
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from tokenizers import Tokenizer

MIXED = ("안녕하세요, 세계! 한국어와 English를 섞어 씁니다. "
         "def f(x):\n    return x ** 2  # 제곱\n\t{\"key\": [1, 22, 333, 4444]}  "
         "🙂👍🏽 café naïve   spaces\n\n"
         "\u1112\u1161\u11ab\u1100\u1173\u11af (NFD 한글)")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args, stdin=None):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, input=stdin)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p.stdout


def hanul_ids(hanul, model, text, special=False):
    out = run(hanul, "tokenize", "-m", model, "--ids", *(["--add-special"] if special else []), "-", stdin=text)
    return [int(x) for x in out.replace(",", " ").replace("[", " ").replace("]", " ").split()]


def field_value(f):
    return f.contents()


def tokenizer_fields(path):
    r = GGUFReader(path)
    return {name: f for name, f in r.fields.items() if name.startswith("tokenizer.")}


def write_model(path, fixture):
    """A 1-layer Llama with random weights (std 0.02) and the fixture's tokenizer keys."""
    fields = tokenizer_fields(fixture)
    n_vocab = len(field_value(fields["tokenizer.ggml.tokens"]))
    n_embd, n_head, n_ff = 16, 2, 32
    rng = np.random.default_rng(7)
    w = GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    for name, f in fields.items():
        vtype = f.types[0]
        if vtype == GGUFValueType.ARRAY:
            w.add_key_value(name, field_value(f), vtype, sub_type=f.types[1])
        else:
            w.add_key_value(name, field_value(f), vtype)

    def t(name, *shape):
        w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    t("token_embd.weight", n_vocab, n_embd)
    w.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
    t("output.weight", n_vocab, n_embd)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(n_embd, np.float32))
    for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
        t(f"blk.0.{n}.weight", n_embd, n_embd)
    t("blk.0.ffn_gate.weight", n_ff, n_embd)
    t("blk.0.ffn_up.weight", n_ff, n_embd)
    t("blk.0.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def read_vectors(fixtures, stem):
    inp = (fixtures / f"{stem}.inp").read_text(encoding="utf-8")
    texts = inp.split("\n__ggml_vocab_test__\n")[:-1]
    outs = (fixtures / f"{stem}.out").read_text(encoding="utf-8").splitlines()
    return [(t, [int(x) for x in o.split()]) for t, o in zip(texts, outs)]


def check_vocab(hanul, fixtures, work, stem):
    print(f"--- {stem}")
    fixture = fixtures / stem
    src = work / f"{stem}.model.gguf"
    n_vocab = write_model(src, fixture)
    hf = work / f"{stem}.hf"
    back = work / f"{stem}.back.gguf"
    run(hanul, "convert", "-m", src, "-o", hf)
    run(hanul, "convert", "-m", hf, "-o", back)

    # 2. HF tokenizers on the exported tokenizer.json.
    tok = Tokenizer.from_file(str(hf / "tokenizer.json"))
    cases = read_vectors(fixtures, stem)
    bad = [i for i, (text, ids) in enumerate(cases) if tok.encode(text, add_special_tokens=False).ids != ids]
    check(not bad, f"{stem}: HF tokenizers on hanul's tokenizer.json gives llama.cpp's ids on "
                   f"{len(cases) - len(bad)}/{len(cases)} test vectors (differ: {bad[:10]})")
    want = tok.encode(MIXED, add_special_tokens=False).ids
    for label, model in (("GGUF", src), ("HF folder", hf), ("GGUF back", back)):
        got = hanul_ids(hanul, model, MIXED)
        check(got == want, f"{stem}: mixed text, {len(want)} ids: HF tokenizers == hanul tokenize on {label}")
    want_sp = tok.encode(MIXED, add_special_tokens=True).ids
    check(hanul_ids(hanul, src, MIXED, special=True) == want_sp,
          f"{stem}: with special tokens, HF {want_sp[:2]}... == hanul --add-special on the GGUF")
    check(tok.decode(want, skip_special_tokens=False) == MIXED,
          f"{stem}: HF decodes the ids back to the text")
    cfg = json.loads((hf / "tokenizer_config.json").read_text(encoding="utf-8"))
    from transformers import AutoTokenizer
    at = AutoTokenizer.from_pretrained(str(hf))
    check(at.eos_token == cfg["eos_token"] and at(MIXED, add_special_tokens=False)["input_ids"] == want,
          f"{stem}: transformers AutoTokenizer loads the folder (eos {at.eos_token!r}) and encodes the same")

    # 3. The GGUF written back from the folder, as llama.cpp reads it.
    f_src, f_back = tokenizer_fields(fixture), tokenizer_fields(back)
    model = field_value(f_src["tokenizer.ggml.model"])
    check(field_value(f_back["tokenizer.ggml.model"]) == model, f"{stem}: tokenizer.ggml.model = {model!r}")
    check("tokenizer.ggml.pre" in f_back and field_value(f_back["tokenizer.ggml.pre"])
          == field_value(f_src["tokenizer.ggml.pre"]),
          f"{stem}: tokenizer.ggml.pre = {field_value(f_back['tokenizer.ggml.pre'])!r}")
    for key, sub in (("tokenizer.ggml.tokens", GGUFValueType.STRING),
                     ("tokenizer.ggml.token_type", GGUFValueType.INT32)):
        f = f_back[key]
        check(f.types == [GGUFValueType.ARRAY, sub] and field_value(f) == field_value(f_src[key]),
              f"{stem}: {key} is ARRAY[{sub.name}] equal to the fixture's ({len(field_value(f))})")
    if model == "llama":
        f = f_back["tokenizer.ggml.scores"]
        check(f.types == [GGUFValueType.ARRAY, GGUFValueType.FLOAT32] and len(field_value(f)) == n_vocab,
              f"{stem}: tokenizer.ggml.scores is ARRAY[FLOAT32] of {n_vocab}")
    else:
        f = f_back["tokenizer.ggml.merges"]
        check(f.types == [GGUFValueType.ARRAY, GGUFValueType.STRING]
              and field_value(f) == field_value(f_src["tokenizer.ggml.merges"]),
              f"{stem}: tokenizer.ggml.merges equal to the fixture's ({len(field_value(f))})")
    for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
        check(f_back[key].types == [GGUFValueType.UINT32]
              and field_value(f_back[key]) == field_value(f_src[key]),
              f"{stem}: {key} = {field_value(f_back[key])} (UINT32)")
    for key in ("tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"):
        check(key in f_back and f_back[key].types == [GGUFValueType.BOOL],
              f"{stem}: {key} = {field_value(f_back[key]) if key in f_back else None} (BOOL)")

    # 4. hanul run on the converted models: the same prompt and generated ids.
    outs = [run(hanul, "run", "-m", m, "-p", "Hello world 안녕", "-n", "4", "--ids", "-t", "1").strip()
            for m in (src, hf, back)]
    check(outs[0] == outs[1] == outs[2], f"{stem}: hanul run -p on GGUF / HF / GGUF-back: {outs}")


def main():
    hanul, fixtures, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    for stem in ("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"):
        check_vocab(hanul, fixtures, work, stem)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all tokenizer export checks passed")


if __name__ == "__main__":
    main()
