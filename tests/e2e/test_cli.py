"""The hanul CLI driven as a user would: exit codes, messages, outputs."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

HANUL = os.environ.get("HANUL_BIN", "")
ROOT = Path(__file__).resolve().parents[2]
STORIES = ROOT / "models" / "stories260K" / "stories260K-f32.gguf"
# First 64 greedy ids after BOS (shared/data/MANIFEST.md; "Once upon a time...").
STORIES_IDS = ("403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 "
               "292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 "
               "266 267 337 335 312 432 398 312 286 267 414 270 333 415 426 13 438 310")


def hanul(*args, **kw):
    if not HANUL or not Path(HANUL).exists():
        pytest.fail(f"HANUL_BIN does not point at the hanul binary: {HANUL!r}")
    return subprocess.run([HANUL, *map(str, args)], capture_output=True, text=True, timeout=120, **kw)


def test_no_command_prints_usage_and_exits_2():
    r = hanul()
    assert r.returncode == 2
    assert "usage: hanul" in r.stderr


def test_unknown_command_and_bad_flags_exit_2():
    assert hanul("frobnicate").returncode == 2
    r = hanul("run", "--no-such-flag")
    assert r.returncode == 2 and "--no-such-flag" in r.stderr
    r = hanul("run", "-m", STORIES, "-n", "-5")
    assert r.returncode == 2


def test_missing_model_is_named():
    r = hanul("run", "-m", "/nonexistent/model.gguf")
    assert r.returncode == 2
    assert "/nonexistent/model.gguf" in r.stderr


def test_stories260k_greedy_from_bos():
    r = hanul("run", "-m", STORIES, "-n", 64, "--ids", cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == STORIES_IDS


def test_without_m_the_default_model_is_used_from_any_folder():
    r = hanul("run", "-p", "Once upon a time", "-n", 16, "--ids", cwd="/")
    assert r.returncode == 0, r.stderr
    named = hanul("run", "-m", ROOT / "models" / "default.gguf", "-p", "Once upon a time", "-n", 16, "--ids")
    assert r.stdout == named.stdout and len(r.stdout.split()) >= 16


def test_batch_and_logits(tmp_path):
    out = tmp_path / "logits.npy"
    r = hanul("run", "-m", STORIES, "--prompt-tokens", "1,403,407;1", "-n", 4, "--logits", out, "-t", 2, "--ids")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().split("\n")
    assert len(lines) == 2
    assert lines[1] == " ".join(STORIES_IDS.split()[:4])
    logits = np.load(out)
    assert logits.shape == (4, 512) and logits.dtype == np.float32
    # Row 2 of the first prompt continues BOS 403 407 -> the story's next id.
    assert int(np.argmax(logits[2])) == int(STORIES_IDS.split()[2])
    assert np.array_equal(logits[0], logits[3])  # BOS alone, in either sequence


def test_bad_prompts_are_refused(tmp_path):
    r = hanul("run", "-m", STORIES, "--prompt-tokens", "1,99999", "-n", 1)
    assert r.returncode != 0 and "vocabulary" in r.stderr
    r = hanul("run", "-m", STORIES, "--prompt-tokens", "1,abc")
    assert r.returncode == 2 and "abc" in r.stderr
    r = hanul("run", "-m", STORIES, "--prompt-tokens", "1,2", "-n", 10, "-c", 4)
    assert r.returncode == 2 and "context" in r.stderr


def test_truncated_and_garbage_model_files(tmp_path):
    data = STORIES.read_bytes()
    for name, blob in [("trunc.gguf", data[: len(data) // 3]), ("head.gguf", data[:100]),
                       ("garbage.gguf", b"\x00" * 4096), ("empty.gguf", b"")]:
        p = tmp_path / name
        p.write_bytes(blob)
        r = hanul("run", "-m", p, "-n", 1)
        assert r.returncode == 2, (name, r.stderr)
        assert str(p) in r.stderr, (name, r.stderr)


def test_info_and_convert(tmp_path):
    r = hanul("info", "-m", STORIES)
    assert r.returncode == 0
    assert "n_layer      5" in r.stdout and "parameters   292800" in r.stdout
    hf = tmp_path / "hf"
    assert hanul("convert", "-m", STORIES, "-o", hf).returncode == 0
    assert (hf / "config.json").exists()
    q8 = tmp_path / "q8.gguf"
    assert hanul("convert", "-m", hf, "-o", q8, "--type", "Q8_0").returncode == 0
    r = hanul("run", "-m", q8, "-n", 16, "--ids")
    assert r.returncode == 0
    assert r.stdout.split() == STORIES_IDS.split()[:16]
    assert hanul("convert", "-m", STORIES, "-o", tmp_path / "x.gguf", "--type", "Q9_9").returncode == 2


def test_text_prompt_streams_the_story():
    # Karpathy's documented greedy output of stories260K (llama2.c README).
    r = hanul("run", "-m", STORIES, "-p", "Once upon a time", "-n", 40)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Once upon a time, there was a little girl named Lily. She loved to play outside")
    r = hanul("run", "-m", STORIES, "-p", "Once upon a time", "-n", 40, "--no-display-prompt")
    assert r.stdout.startswith(", there was a little girl named Lily.")
    r = hanul("run", "-m", STORIES, "-p", "x", "--prompt-tokens", "1")
    assert r.returncode == 2


def test_continuation_keeps_the_space_between_prompt_and_answer():
    # "was" + "▁a": the SentencePiece space of the first generated token separates words.
    r = hanul("run", "-m", STORIES, "-p", "Once upon a time there was", "-n", 4)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Once upon a time there was a little gir"), r.stdout


def test_data_prepare(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("Once upon a time.\n\n한국어 문단입니다.\n\nThird.\n", encoding="utf-8")
    out = tmp_path / "data"
    r = hanul("data", "prepare", "--tokenizer", STORIES, "--out", out, corpus)
    assert r.returncode == 0, r.stderr
    import json
    index = json.loads((out / "index.json").read_text())
    assert index["documents"] == 3 and index["eos"] == 2 and index["n_vocab"] == 512
    tokens = np.fromfile(out / index["train"]["shards"][0]["file"], dtype="<u4")
    assert len(tokens) == index["train"]["shards"][0]["tokens"] and tokens[-1] == 2
    r = hanul("data", "prepare", "--tokenizer", STORIES, "--out", out, tmp_path / "missing.txt")
    assert r.returncode == 2 and "missing.txt" in r.stderr
