#!/usr/bin/env python3
"""hanul's tokenizers against the reference implementations, line by line.

A mixed corpus (tests/fixtures/corpus: Korean Wikinews, the Korean
constitution, Korean chatbot Q/A, Shakespeare, TinyStories; plus hand-made
lines: code, emoji, NFC vs NFD Hangul, zero-width and unusual spaces, lone
surrogates, long runs of spaces and digits, special-token text) is encoded by

  * Python sentencepiece with the Llama 2 tokenizer.model,
  * HF tokenizers with a tokenizer.json built here from the fixtures: Llama 2
    (transformers' slow->fast converter), GPT-2 (vocab and merges read from
    ggml-vocab-gpt-2.gguf), and the output of `hanul tokenizer train`,
  * tiktoken with the Llama 3 tokenizer.model, set up as Meta's llama3
    tokenizer.py does (its split regex, the 256 special tokens from 128000),
    once with special-token text as plain text and once matched as specials,
  * HF tokenizers with the tokenizer.json that `hanul tokenizer export` writes
    from llama.cpp's vocab GGUFs (mpt, starcoder, refact, deepseek-coder),
    against hanul on the GGUF and on the exported file,

and by hanul on the same file (`hanul tokenizer encode`, one process for all
lines; and `hanul tokenize --ids -m ...` per text for the hand-made lines).
Every line must give identical ids, and hanul's decode must equal the
reference's decode (so decode(encode(x)) == x wherever the reference is
lossless; the script checks that claim too for the byte-level tokenizers).

Lone surrogates: a JSON text may hold "\\ud800", which is no Unicode scalar
value and cannot reach a UTF-8 tokenizer as is. Policy (same for every
tokenizer here): after JSON decoding, the string is encoded with Python's
'surrogatepass' (a surrogate becomes the 3 bytes ED A0 80 ...) and decoded
back with errors='replace', so each surrogate becomes U+FFFD x3, exactly
what hanul's own UTF-8 sanitizer makes of those bytes. The texts handed to
hanul and to the references are that valid UTF-8.

usage: check_tokenizers.py --hanul build/bin/hanul --work build/reference_tokenizers
"""
import argparse
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def fix_surrogates(s):
    return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def hand_made_lines():
    ko = "대한민국은 민주공화국이다. 한국어 문장을 토큰으로 나눕니다."
    lines = [
        # code
        "def f(x):\n    return x ** 2  # square\n\n\tif x:\n\t\tpass",
        "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // 합계",
        "#include <vector>\nstd::vector<int> v{1, 2, 3};",
        '{"key": [1, 2.5e-3, null], "이름": "홍길동"}',
        "SELECT * FROM t WHERE id = 42 AND name LIKE '%김%';",
        # emoji, flags, skin tones, ZWJ sequences
        "🙂👍🏽👨‍👩‍👧‍👦 🇰🇷🇺🇸 안녕😀하세요 ❤️",
        "😀😀😀😀😀😀😀😀",
        # NFC vs NFD Hangul, compatibility jamo
        unicodedata.normalize("NFC", ko),
        unicodedata.normalize("NFD", ko),
        unicodedata.normalize("NFD", "각") + unicodedata.normalize("NFC", "각"),
        "ㅋㅋㅋㅋ ㅎㅎ ㄱㄴㄷ ㅏㅑㅓ",
        # zero-width and unusual spaces
        "a\u200bb\u200cc\u200dd\ufeffe\u2060f 가\u200b나",
        "\u00a0nbsp\u3000ideographic\u2003em\u0085nel\u2028ls",
        "e\u0301 n\u0303 ﬁ ① ½ Ⅻ",
        # lone surrogates escaped in JSON (see the policy above)
        fix_surrogates(json.loads('"x\\ud800y \\udfff한 \\ud83d"')),
        # long runs of spaces, tabs, newlines and digits
        " " * 40,
        "a" + " " * 17 + "b",
        "trailing   ",
        "   leading",
        "\t\t  \n  \n\n\n \r\n",
        "1234567890" * 6,
        "3.14159265358979 2024년 12월 31일 1,000,000원 007",
        "0" * 33 + " " + "9" * 7,
        # other scripts, special-token look-alikes, apostrophes
        "مرحبا بالعالم 漢字かなカナ Ελληνικά русский",
        "<|endoftext|> is special <s> </s> <unk>",
        "<|begin_of_text|>Hi<|eot_id|><|reserved_special_token_250|> <|start_header_id|>",
        "It's they're we've I'm you'll he'd 'S 'T",
        "Hello 세계! It's 2024.",
        "",
    ]
    return lines


def corpus_lines():
    lines = []
    for p in sorted((FIX / "corpus").iterdir()):
        if p.suffix not in (".txt", ".csv"):
            continue
        text = p.read_text(encoding="utf-8")
        lines += [l for l in text.split("\n") if l.strip()]
    return lines


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n")
        sys.stderr.write(r.stderr.decode("utf-8", "replace"))
        sys.exit(1)
    return r.stdout


def hanul_encode_all(hanul, model, lines_file, parse_special):
    cmd = [hanul, "tokenizer", "encode", "-m", str(model), str(lines_file), "--decode"]
    if parse_special:
        cmd.append("--parse-special")
    out = run(cmd).decode("utf-8").split("\n")
    res = []
    for l in out[:-1]:
        ids, text = l.split("\t", 1)
        res.append(([int(x) for x in ids.split()], json.loads(text)))
    return res


def hanul_tokenize_one(hanul, model, text, parse_special):
    cmd = [hanul, "tokenize", "--ids", "-m", str(model)]
    if parse_special:
        cmd.append("--parse-special")
    out = run(cmd, input=text.encode("utf-8")).decode()
    return [int(x) for x in out.split()]


class Reference:
    def __init__(self, name, hanul_model, encode, decode, parse_special, byte_level=False, per_text_cli=True):
        self.name, self.hanul_model, self.byte_level = name, hanul_model, byte_level
        self.encode, self.decode, self.parse_special = encode, decode, parse_special
        # `hanul tokenize --ids` once per hand-made line: one process per text,
        # so only where it adds something (the CLI path is the same for all).
        self.per_text_cli = per_text_cli


def llama_tokenizer_json(sp):
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(n)}
    # SentencePieceExtractor.extract(vocab_scores): every split of a piece into
    # two pieces is a merge, ranked by the merged piece's score.
    merges = []
    for piece, score in scores.items():
        local = [(piece[:k], piece[k:], score) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]]))
    merges.sort(key=lambda m: m[2], reverse=True)
    added = [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}
             for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": sp.id_to_piece(sp.unk_id()),
                  "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
                  "byte_fallback": True, "ignore_merges": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b, _ in merges]},
    }
    return json.dumps(tj, ensure_ascii=False)


def build_references(hanul, work):
    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    refs = []
    sp_path = FIX / "tokenizer" / "llama2-tokenizer.model"
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    refs.append(Reference("llama2 sentencepiece (tokenizer.model)", sp_path,
                          lambda t: sp.encode(t), lambda ids: sp.decode(ids), False))

    # Llama 2 tokenizer.json from the .model, built as transformers' LlamaConverter
    # (convert_slow_tokenizer.py, 4.45, legacy=True) does; rewritten here because
    # its protobuf import does not work with this venv's protobuf.
    llama_json = work / "llama2-tokenizer.json"
    llama_json.write_text(llama_tokenizer_json(sp), encoding="utf-8")
    hf_llama = Tokenizer.from_file(str(llama_json))
    # HF matches the text of added special tokens (<s>) always: hanul --parse-special.
    refs.append(Reference("llama2 HF tokenizers (tokenizer.json)", llama_json,
                          lambda t: hf_llama.encode(t, add_special_tokens=False).ids,
                          lambda ids: hf_llama.decode(ids, skip_special_tokens=False), True))

    # GPT-2 tokenizer.json from the llama.cpp vocab GGUF (same vocab/merges as HF gpt2).
    import gguf
    gpt2_gguf = FIX / "tokenizer" / "ggml-vocab-gpt-2.gguf"
    rd = gguf.GGUFReader(str(gpt2_gguf))

    def strings(key):
        f = rd.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens, merges = strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges")
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                     merges=[tuple(m.split(" ", 1)) for m in merges])
    gpt2 = Tokenizer(bpe)
    gpt2.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    gpt2.decoder = decoders.ByteLevel()
    gpt2.add_special_tokens(["<|endoftext|>"])
    gpt2_json = work / "gpt2-tokenizer.json"
    gpt2.save(str(gpt2_json))
    gpt2 = Tokenizer.from_file(str(gpt2_json))
    # HF always matches added special tokens in text: hanul with --parse-special.
    for model, label in ((gpt2_json, "tokenizer.json"), (gpt2_gguf, "GGUF")):
        refs.append(Reference(f"gpt-2 HF tokenizers vs hanul on the {label}", model,
                              lambda t: gpt2.encode(t, add_special_tokens=False).ids,
                              lambda ids: gpt2.decode(ids, skip_special_tokens=False), True, True))

    # The trainer's own output: trained on the fixture corpus here.
    trained_json = work / "trained-bpe.json"
    corpus = sorted(str(p) for p in (FIX / "corpus").iterdir())
    run([hanul, "tokenizer", "train", "--vocab-size", "3000", "--special", "<|endoftext|>",
         "-o", str(trained_json)] + corpus)
    trained = Tokenizer.from_file(str(trained_json))
    if trained.get_vocab_size() != 3000:
        sys.exit(f"trained tokenizer has {trained.get_vocab_size()} tokens, want 3000")
    refs.append(Reference("hanul-trained BPE (3000) HF tokenizers", trained_json,
                          lambda t: trained.encode(t, add_special_tokens=False).ids,
                          lambda ids: trained.decode(ids, skip_special_tokens=False), True, True))
    refs += llama3_references()
    refs += exported_references(hanul, work)
    return refs


# llama.cpp's vocab GGUFs that `hanul tokenizer export` writes as tokenizer.json:
# HF tokenizers must then give the ids hanul gives on the GGUF (hanul passes
# llama.cpp's own test vectors for these, so the GGUF side is the ground truth).
# Pre-tokenizers written: mpt = gpt-2's regex; starcoder and refact = Split(\p{N})
# then gpt-2's; deepseek-coder = its five Splits ([\r\n], \s?\p{L}+, \s?\p{P}+,
# CJK/Hangul ranges, \p{N}), each Isolated, then ByteLevel without its regex.
# bert-bge is WordPiece, which the exporter refuses (it checks that it does).
EXPORTED_VOCABS = ["mpt", "starcoder", "refact", "deepseek-coder"]


def exported_references(hanul, work):
    from tokenizers import Tokenizer

    refs = []
    for name in EXPORTED_VOCABS:
        src = FIX / "tokenizer" / f"ggml-vocab-{name}.gguf"
        out = work / f"export-{name}"
        run([hanul, "tokenizer", "export", "-m", str(src), "-o", str(out)])
        cfg = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
        if cfg.get("tokenizer_class") != "PreTrainedTokenizerFast":
            sys.exit(f"export {name}: tokenizer_config.json has no tokenizer_class: {cfg}")
        tok = Tokenizer.from_file(str(out / "tokenizer.json"))
        # HF matches every added token's text (CONTROL and USER_DEFINED alike):
        # hanul with --parse-special, as llama.cpp's parse_special=true.
        enc = (lambda t, tok=tok: tok.encode(t, add_special_tokens=False).ids)
        dec = (lambda ids, tok=tok: tok.decode(ids, skip_special_tokens=False))
        refs.append(Reference(f"{name} HF tokenizers (exported tokenizer.json) vs hanul on the GGUF", src,
                              enc, dec, True, True, per_text_cli=False))
        refs.append(Reference(f"{name} HF tokenizers vs hanul on the exported tokenizer.json",
                              out / "tokenizer.json", enc, dec, True, True, per_text_cli=False))
    # WordPiece cannot be written yet: export must say so, not write something wrong.
    r = subprocess.run([hanul, "tokenizer", "export", "-m", str(FIX / "tokenizer" / "ggml-vocab-bert-bge.gguf"),
                        "-o", str(work / "export-bert-bge")], capture_output=True)
    if r.returncode == 0 or b"WordPiece" not in r.stderr:
        sys.exit(f"export bert-bge: want a WordPiece refusal, got rc {r.returncode}: {r.stderr[-300:]!r}")
    return refs


# Meta's Llama 3 tokenizer (meta-llama/llama3 llama/tokenizer.py): the split
# regex and the special tokens it appends after the 128000 ranks.
LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_references():
    import tiktoken
    import tiktoken.load

    path = FIX / "tokenizer" / "llama3-tokenizer.model"
    ranks = tiktoken.load.load_tiktoken_bpe(str(path))  # a local file: no download
    n_reserved = 256
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|reserved_special_token_4|>", "<|eot_id|>"]
    specials += [f"<|reserved_special_token_{i}|>" for i in range(5, n_reserved - 5)]
    enc = tiktoken.Encoding(name="llama3", pat_str=LLAMA3_PAT, mergeable_ranks=ranks,
                            special_tokens={t: len(ranks) + i for i, t in enumerate(specials)})
    assert enc.n_vocab == 128256, enc.n_vocab
    return [
        # Special-token text is ordinary text: hanul without --parse-special.
        Reference("llama3 tiktoken (tokenizer.model), specials as text", path,
                  lambda t: enc.encode(t, allowed_special=set(), disallowed_special=()),
                  lambda ids: enc.decode(ids), False, True),
        Reference("llama3 tiktoken (tokenizer.model), specials matched", path,
                  lambda t: enc.encode(t, allowed_special="all"),
                  lambda ids: enc.decode(ids), True, True),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hanul", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    hand = hand_made_lines()
    lines = hand + corpus_lines()
    for l in lines:
        l.encode("utf-8")  # valid scalar values only (surrogates were fixed)
    lines_file = work / "lines.jsonl"
    lines_file.write_text("".join(json.dumps(l, ensure_ascii=True) + "\n" for l in lines), encoding="ascii")
    print(f"{len(lines)} lines ({len(hand)} hand-made), "
          f"{sum(len(l.encode()) for l in lines) / 1e3:.0f} KB")

    failures = 0
    for ref in build_references(args.hanul, work):
        got = hanul_encode_all(args.hanul, ref.hanul_model, lines_file, ref.parse_special)
        if len(got) != len(lines):
            sys.exit(f"{ref.name}: hanul gave {len(got)} lines for {len(lines)}")
        bad_ids = bad_dec = lossless = 0
        for i, (text, (ids, dec)) in enumerate(zip(lines, got)):
            want = ref.encode(text)
            if ids != want:
                bad_ids += 1
                if bad_ids <= 5:
                    print(f"  MISMATCH {ref.name} line {i}: {text[:80]!r}\n    hanul {ids[:40]}\n"
                          f"    ref   {want[:40]}")
                continue
            want_dec = ref.decode(want)
            lossless += want_dec == text
            if dec != want_dec:
                bad_dec += 1
                if bad_dec <= 5:
                    print(f"  DECODE {ref.name} line {i}: hanul {dec[:80]!r} ref {want_dec[:80]!r}")
        # The per-text CLI (hanul tokenize --ids) on the hand-made lines.
        bad_cli = 0
        for text in (hand if ref.per_text_cli else []):
            if not text:
                continue  # tokenize reads stdin when the text is empty
            ids = hanul_tokenize_one(args.hanul, ref.hanul_model, text, ref.parse_special)
            if ids != ref.encode(text):
                bad_cli += 1
                print(f"  CLI MISMATCH {ref.name}: {text[:60]!r}")
        status = "ok" if bad_ids == bad_dec == bad_cli == 0 else "FAIL"
        print(f"{status:4} {ref.name}: {len(lines) - bad_ids}/{len(lines)} lines identical ids, "
              f"{bad_dec} decode differences, {lossless} lines round-trip exactly, "
              f"hanul tokenize --ids: {bad_cli} differences")
        failures += bad_ids + bad_dec + bad_cli
        if ref.byte_level and lossless != len(lines):
            # Byte-level BPE with no normalizer is lossless on valid UTF-8.
            print(f"FAIL {ref.name}: only {lossless}/{len(lines)} lines round-trip")
            failures += 1
    if failures:
        sys.exit(f"check_tokenizers: {failures} failures")
    print("check_tokenizers: all identical")


if __name__ == "__main__":
    main()
