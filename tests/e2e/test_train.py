"""`hanul train` driven as a user would: a config file, progress, metrics, the loss plot, a checkpoint
that the other commands load, and a run killed with SIGKILL at random moments that resumes to the same
bits as an uninterrupted one (issue 5)."""
import json
import os
import random
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HANUL = os.environ.get("HANUL_BIN", "")
ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "tests" / "fixtures" / "stories260K-f32.gguf"  # vocab 512 (SentencePiece)
CORPUS = ROOT / "tests" / "fixtures" / "corpus" / "en_tinystories_val.txt"

# A tiny Llama: 2 layers of width 32, sequences of 32 tokens. Random weights of a real shape.
CONFIG = """\
# tiny run for the tests
dim: 32
n_layers: 2
n_heads: 4
n_kv_heads: 2
ffn_dim: 64
seq_len: 32
batch_size: 4
grad_accum: 2
steps: 48
warmup_steps: 3
lr: 1e-2          # high, so that a few steps show the loss falling
min_lr: 1e-3
checkpoint_every: 3
eval_every: 12
eval_batches: 2
seed: 7
threads: 2
"""


def hanul(*args, timeout=300, **kw):
    if not HANUL or not Path(HANUL).exists():
        pytest.fail(f"HANUL_BIN does not point at the hanul binary: {HANUL!r}")
    return subprocess.run([HANUL, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data") / "shards"
    r = hanul("data", "prepare", "--tokenizer", TOKENIZER, "--out", d, "--val-fraction", "0.05", CORPUS)
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "train.yaml"
    p.write_text(CONFIG)
    return p


def records(run):
    return [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]


def deterministic(rec):
    return {k: v for k, v in rec.items() if k not in ("tokens_per_s", "elapsed_s")}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, data, config):
    """The uninterrupted run the interrupted ones must equal."""
    run = tmp_path_factory.mktemp("ref") / "run"
    r = hanul("train", "--config", config, "--data", data, "--out", run)
    assert r.returncode == 0, r.stderr
    return run, r


def test_run_writes_checkpoint_metrics_and_plot(reference_run):
    run, r = reference_run
    assert "step 48" in r.stdout and "validation loss" in r.stdout
    assert "48/48" in r.stderr and "tok/s" in r.stderr  # the progress line
    recs = records(run)
    assert [x["step"] for x in recs] == list(range(1, 49))
    assert [x["tokens"] for x in recs] == [4 * 32 * s for s in range(1, 49)]
    vals = [x["val_loss"] for x in recs if "val_loss" in x]
    assert len(vals) == 4  # steps 12, 24, 36, 48
    # Learning: the loss falls well below the uniform guess ln(512) = 6.24.
    assert recs[0]["train_loss"] > 6.0
    assert recs[-1]["train_loss"] < recs[0]["train_loss"] - 1.0
    assert vals[-1] < vals[0]
    # Warm-up then cosine: lr rises for 3 steps, then falls to min_lr.
    lrs = [x["lr"] for x in recs]
    assert lrs[0] < lrs[1] < lrs[2] and abs(lrs[2] - 1e-2) < 1e-12 and lrs[-1] < lrs[3]
    svg = ET.parse(run / "loss.svg").getroot()
    assert svg.tag.endswith("svg")
    ck = run / "checkpoint"
    for f in ("model.safetensors", "config.json", "optimizer.safetensors", "manifest.json", "tokenizer.json",
              "tokenizer_config.json", "train_config.json"):
        assert (ck / f).is_file(), f
    cfg = json.loads((ck / "config.json").read_text())
    assert cfg["hidden_size"] == 32 and cfg["num_hidden_layers"] == 2 and cfg["num_key_value_heads"] == 2
    assert cfg["vocab_size"] == 512


def test_checkpoint_is_a_model_for_the_other_commands(reference_run, tmp_path):
    run, _ = reference_run
    r = hanul("run", "-m", run / "checkpoint", "-p", "Once upon a time", "-n", 8, "--no-display-prompt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    gguf = tmp_path / "tiny.gguf"
    r = hanul("convert", "-m", run / "checkpoint", "-o", gguf)
    assert r.returncode == 0, r.stderr
    a = hanul("run", "-m", run / "checkpoint", "-p", "Once upon a time", "-n", 8, "--ids")
    b = hanul("run", "-m", gguf, "-p", "Once upon a time", "-n", 8, "--ids")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout  # the same greedy tokens through safetensors and GGUF


def kill_at_random(cmd, run, rng, env=None):
    """Starts cmd and SIGKILLs it at a random moment: once the metrics log has grown by a random 1-12 steps,
    after a random 0-20 ms more (so kills also land inside checkpoint saves). Returns True if it was killed.
    Watching the log, not the clock, keeps the kills inside the run however fast the machine is."""
    start = len(records(run)) if (run / "metrics.jsonl").exists() else 0
    target = min(start + rng.randint(1, 12), 46)
    extra = rng.uniform(0.0, 0.02)
    p = subprocess.Popen([HANUL, *map(str, cmd)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 120:
        try:
            n = (run / "metrics.jsonl").read_text().count("\n")
        except OSError:
            n = 0
        if n >= target:
            break
        time.sleep(0.0005)
    time.sleep(extra)
    if p.poll() is not None:
        return False
    p.send_signal(signal.SIGKILL)
    p.wait()
    return True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_and_resume_reaches_the_same_bits(reference_run, data, config, tmp_path, seed):
    ref, _ = reference_run
    run = tmp_path / "run"
    rng = random.Random(seed)
    kills, at, saved = 0, [], []
    cmd = ["train", "--config", config, "--data", data, "--out", run]
    while kills < 3:
        if not kill_at_random(cmd, run, rng):
            break
        kills += 1
        at.append(len(records(run)) if (run / "metrics.jsonl").exists() else 0)
        manifest = run / "checkpoint" / "manifest.json"
        saved.append(json.loads(manifest.read_text())["step"] if manifest.exists() else 0)
        if manifest.exists():
            cmd = ["train", "--resume", run]
    # Finish: resume from the last complete checkpoint (or start again if none was made).
    r = hanul(*cmd)
    if r.returncode != 0 and "already holds a run" in r.stderr:
        r = hanul("train", "--resume", run)
    assert r.returncode == 0, r.stderr
    assert kills >= 1, "the run finished before it could be killed; the test proves nothing"
    print(f"killed {kills} times, after steps {at}, checkpoints at {saved}")
    assert saved == sorted(saved)  # a resumed run keeps checkpointing: no work is lost twice
    for f in ("model.safetensors", "optimizer.safetensors"):
        assert (run / "checkpoint" / f).read_bytes() == (ref / "checkpoint" / f).read_bytes(), f
    # The metrics log continues without gaps or duplicates and equals the reference's.
    assert [deterministic(x) for x in records(run)] == [deterministic(x) for x in records(ref)]


def test_resume_with_other_thread_count_and_ctrl_c(data, config, tmp_path, reference_run):
    ref, _ = reference_run
    run = tmp_path / "run"
    p = subprocess.Popen([HANUL, "train", "--config", config, "--data", data, "--out", run, "--threads", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 60 and not (run / "metrics.jsonl").exists():
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.fail("the run finished before Ctrl-C arrived")
    assert p.returncode == 130, err
    assert "--resume" in err
    stopped_at = json.loads((run / "checkpoint" / "manifest.json").read_text())["step"]
    assert 1 <= stopped_at < 48
    r = hanul("train", "--resume", run, "--threads", "2")
    assert r.returncode == 0, r.stderr
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == \
        (ref / "checkpoint" / "model.safetensors").read_bytes()
    # Resuming a finished run says so and changes nothing.
    r = hanul("train", "--resume", run)
    assert r.returncode == 0 and "complete" in r.stderr


def test_init_from_a_model(data, tmp_path):
    run = tmp_path / "ft"
    r = hanul("train", "--init", TOKENIZER, "--data", data, "--out", run, "--steps", 3, "--seq-len", 16,
              "--batch-size", 2, "--warmup-steps", 1, "--lr", "1e-4", "--eval-every", 0)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((run / "checkpoint" / "config.json").read_text())
    assert cfg["hidden_size"] == 64 and cfg["num_hidden_layers"] == 5  # stories260K's shape
    # Fine-tuning starts from the model: its first loss is far below a random model's ln(512) = 6.24.
    assert records(run)[0]["train_loss"] < 3.0
    # The checkpoint is a Hugging Face model (Q/K rows un-permuted from GGUF's layout): after 3 steps at
    # lr 1e-4 it still tells stories260K's story, through safetensors and converted back to GGUF.
    base = hanul("run", "-m", TOKENIZER, "-p", "Once upon a time", "-n", 12, "--ids")
    tuned = hanul("run", "-m", run / "checkpoint", "-p", "Once upon a time", "-n", 12, "--ids")
    assert base.returncode == 0 and tuned.returncode == 0, base.stderr + tuned.stderr
    assert tuned.stdout.split()[:6] == base.stdout.split()[:6]


def test_bf16_matmuls_follow_the_fp32_loss_curve(reference_run, data, config, tmp_path):
    """matmul_precision bf16 (the GEMM's products in bf16, weights and AdamW state float32) trains
    the tiny model along the float32 run's loss curve; where the CPU has no AVX512_BF16 it is refused
    with a message and nothing is written."""
    ref, _ = reference_run
    run = tmp_path / "bf16"
    r = hanul("train", "--config", config, "--data", data, "--out", run, "--matmul-precision", "bf16")
    flags = next((l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")), "")
    if "avx512_bf16" not in flags.split():
        assert r.returncode == 1 and "needs a CPU with AVX512_BF16" in r.stderr, r.stderr
        assert not run.exists()
        return
    assert r.returncode == 0, r.stderr
    assert "bf16 matmuls" in r.stderr
    want, got = records(ref), records(run)
    assert [x["step"] for x in got] == [x["step"] for x in want]
    # bf16 rounds each operand to 8 bits of mantissa (relative error 2^-9); over 48 steps at
    # lr 1e-2 the losses stay within 0.5% of float32's, the validation losses within 0.2%
    # (measured on a Zen 4: 0.044% and 0.031% at most).
    for w, g in zip(want, got):
        assert abs(g["train_loss"] - w["train_loss"]) <= 0.005 * w["train_loss"], (w, g)
        if "val_loss" in w:
            assert abs(g["val_loss"] - w["val_loss"]) <= 0.002 * w["val_loss"], (w, g)
    # Not float32's bits: the products really were bf16.
    assert any(g["train_loss"] != w["train_loss"] for w, g in zip(want, got))
    # Still the same bits for any thread count (the config says 2).
    one = tmp_path / "bf16-1thread"
    r = hanul("train", "--config", config, "--data", data, "--out", one, "--matmul-precision", "bf16",
              "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert [deterministic(x) for x in records(one)] == [deterministic(x) for x in got]
    # SIGKILLed and resumed (with no flag: the precision is part of the saved config), it reaches
    # the uninterrupted bf16 run's bits.
    killed = tmp_path / "bf16-killed"
    cmd = ["train", "--config", config, "--data", data, "--out", killed, "--matmul-precision", "bf16"]
    assert kill_at_random(cmd, killed, random.Random(4)), "the run finished before it could be killed"
    if (killed / "checkpoint" / "manifest.json").exists():
        cmd = ["train", "--resume", killed]
    print("bf16 killed after", len(records(killed)), "steps; resuming:", cmd[1] == "--resume")
    r = hanul(*cmd)
    assert r.returncode == 0, r.stderr
    assert "bf16 matmuls" in r.stderr
    for f in ("model.safetensors", "optimizer.safetensors"):
        assert (killed / "checkpoint" / f).read_bytes() == (run / "checkpoint" / f).read_bytes(), f


@pytest.mark.parametrize("args,code,message", [
    (["--out", "X"], 2, "--data"),
    (["--data", "/nonexistent", "--out", "X"], 2, "index.json"),
    (["--data", "DATA", "--out", "X", "--dim", "36", "--n-heads", "4"], 2, "head size"),
    (["--data", "DATA", "--out", "X", "--batch-size", "3", "--grad-accum", "2"], 2, "batch_size"),
    (["--data", "DATA", "--out", "X", "--steps", "ten"], 2, "'steps' must be an integer"),
    (["--data", "DATA", "--out", "X", "--seq-len", "100000"], 1, "too few"),
    (["--resume", "NOWHERE"], 1, "manifest.json"),
])
def test_bad_arguments_are_refused_with_a_message(data, tmp_path, args, code, message):
    args = [str(data) if a == "DATA" else str(tmp_path / "nowhere") if a == "NOWHERE" else
            str(tmp_path / "x") if a == "X" else a for a in args]
    r = hanul("train", *args)
    assert r.returncode == code, r.stderr
    assert message in r.stderr


@pytest.mark.parametrize("text,message", [
    ("dim: 32\nmodel:\n  dim: 64\n", ":2: a value is missing"),
    ("dim: 32\n  n_layers: 2\n", ":2: indented line"),
    ("dimm: 32\n", "unknown key 'dimm'"),
    ("steps: [1, 2]\n", "only plain scalars"),
    ("tie_embeddings: maybe\n", "true or false"),
    ('{"dim": 32, "steps": {"a": 1}}', "must be a string, number or boolean"),
    ('{"dim": 32,', "not valid JSON"),
])
def test_bad_config_files_name_the_problem(data, tmp_path, text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    r = hanul("train", "--config", cfg, "--data", data, "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


def test_existing_run_is_not_overwritten_and_resume_keeps_its_config(reference_run, data, config, tmp_path):
    ref, _ = reference_run
    r = hanul("train", "--config", config, "--data", data, "--out", ref)
    assert r.returncode == 1 and "already holds a run" in r.stderr
    r = hanul("train", "--resume", ref, "--lr", "1")
    assert r.returncode == 2 and "cannot change" in r.stderr


def test_corrupt_checkpoint_is_refused(reference_run, tmp_path):
    import shutil
    ref, _ = reference_run
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    f = run / "checkpoint" / "optimizer.safetensors"
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0x40
    f.write_bytes(bytes(b))
    r = hanul("train", "--resume", run)
    assert r.returncode == 1 and "corrupt" in r.stderr


def mpirun_cmd(n):
    """mpirun with the flags tests/mpi.cmake uses for Open MPI on one machine, as root, without a network."""
    import shutil
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if exe is None:
        pytest.fail("mpirun is not installed (scripts/setup installs openmpi-bin)")
    return [exe, "-np", str(n), "--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader",
            "--mca", "btl_vader_single_copy_mechanism", "none"]


def test_two_mpi_ranks_match_one_rank_with_accumulation(data, config, tmp_path):
    """2 ranks x batch 2 against 1 rank x batch 4 in 2 micro-batches: the same loss curve."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    common = ["train", "--config", config, "--data", data, "--steps", 12, "--eval-every", 6, "--threads", 1]
    one = tmp_path / "one"
    r = hanul(*common, "--out", one, "--grad-accum", 2)
    assert r.returncode == 0, r.stderr
    two = tmp_path / "two"
    r = subprocess.run(mpirun_cmd(2) + [HANUL, *map(str, common), "--out", str(two), "--grad-accum", "1"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "over 2 rank(s)" in r.stderr  # really data-parallel, not two independent runs
    a, b = records(one), records(two)
    assert [x["step"] for x in a] == [x["step"] for x in b] == list(range(1, 13))
    for x, y in zip(a, b):
        assert abs(x["train_loss"] - y["train_loss"]) <= 1e-4 * abs(x["train_loss"]), (x, y)
        assert abs(x["grad_norm"] - y["grad_norm"]) <= 1e-3 * abs(x["grad_norm"]), (x, y)
        if "val_loss" in x:
            assert abs(x["val_loss"] - y["val_loss"]) <= 1e-4 * abs(x["val_loss"]), (x, y)
    # Only rank 0 writes: one metrics line per step, one checkpoint.
    assert len(b) == 12 and (two / "checkpoint" / "manifest.json").is_file()
