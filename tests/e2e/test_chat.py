"""`hanul chat` driven as a person would: in a terminal (tmux), and with piped stdin.
Also `hanul run`'s sampling flags: the same seed twice gives the same text."""
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

HANUL = os.environ.get("HANUL_BIN", "")
ROOT = Path(__file__).resolve().parents[2]
STORIES = ROOT / "models" / "stories260K" / "stories260K-f32.gguf"


def hanul_bin():
    if not HANUL or not Path(HANUL).exists():
        pytest.fail(f"HANUL_BIN does not point at the hanul binary: {HANUL!r}")
    return HANUL


def run(*args, stdin=None, timeout=60):
    return subprocess.run([hanul_bin(), *map(str, args)], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def test_run_same_seed_same_text_other_seed_other_text():
    args = ["run", "-m", STORIES, "-p", "Once upon a time", "-n", 40, "--temp", 1.0]
    a = run(*args, "--seed", 11)
    b = run(*args, "--seed", 11)
    c = run(*args, "--seed", 12)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout
    assert a.stdout.startswith("Once upon a time")


def test_run_stop_string_is_not_printed_and_grammar_holds(tmp_path):
    r = run("run", "-m", STORIES, "-p", "Once upon a time", "-n", 60, "--stop", "Lily")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Once upon a time, there was a little girl named \n"
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"n": {"type": "integer"},
                                                                   "ok": {"type": "boolean"}},
                                  "required": ["n", "ok"]}))
    for seed in range(3):
        r = run("run", "-m", STORIES, "-p", "", "--json-schema", schema, "--temp", 1.0, "--seed", seed, "-n", 300,
                "--no-display-prompt")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert isinstance(doc["n"], int) and isinstance(doc["ok"], bool)
    bad = tmp_path / "bad.gbnf"
    bad.write_text("root ::= (\n")
    r = run("run", "-m", STORIES, "--grammar-file", bad)
    assert r.returncode == 2 and "bad.gbnf" in r.stderr
    r = run("run", "-m", STORIES, "--logit-bias", "7x")
    assert r.returncode == 2 and "--logit-bias" in r.stderr


def test_run_logit_bias_bans_a_token():
    plain = run("run", "-m", STORIES, "-n", 8, "--ids")
    first = plain.stdout.split()[0]
    banned = run("run", "-m", STORIES, "-n", 8, "--ids", "--logit-bias", f"{first}-inf")
    assert banned.returncode == 0, banned.stderr
    assert first not in banned.stdout.split()


def test_chat_with_piped_stdin(tmp_path):
    saved = tmp_path / "conv.json"
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    script = (f"Hello there\nTell me\\\na story\n/save {saved}\n/load {bad}\n/reset\nHi\n")
    r = run("chat", "-m", STORIES, "-n", 12, "--seed", 3, "--stats", stdin=script)
    assert r.returncode == 0, r.stderr
    # Three answers, one line-ended answer each; no prompt characters without a terminal.
    assert "> " not in r.stdout
    assert r.stderr.count("generation: ") == 3
    assert "tokens/s" in r.stderr
    # The second turn extends the first: its prompt reuses the cached tokens.
    second = [line for line in r.stderr.splitlines() if line.startswith("[prompt:")][1]
    assert "(0 reused" not in second
    assert "not valid JSON" not in r.stderr and "bad.json" in r.stderr  # clear error, chat went on
    conv = json.loads(saved.read_text())
    assert [m["role"] for m in conv] == ["user", "assistant", "user", "assistant"]
    assert conv[0]["content"] == "Hello there"
    assert conv[2]["content"] == "Tell me\na story"  # a line ending in '\' continues
    # /load then a question: the loaded history goes into the prompt.
    r2 = run("chat", "-m", STORIES, "-n", 4, "--seed", 3, "--stats", stdin=f"/load {saved}\nmore\n")
    assert r2.returncode == 0, r2.stderr
    assert "loaded 4 messages" in r2.stderr


def test_chat_drops_oldest_turns_when_the_context_is_full():
    lines = "".join(f"message number {i} with some words in it\n" for i in range(6))
    r = run("chat", "-m", STORIES, "-c", 160, "-n", 16, "--seed", 1, "--system", "Be kind.", stdin=lines)
    assert r.returncode == 0, r.stderr
    assert "dropped the" in r.stderr


# --- the terminal: tmux ----------------------------------------------------------------------

TMUX = shutil.which("tmux")


class Tmux:
    def __init__(self, cmd, cwd):
        if TMUX is None:
            pytest.fail("tmux is not installed (scripts/setup installs it)")
        self.name = f"hanul-chat-{uuid.uuid4().hex[:8]}"
        # A server of its own per session: a socket shared with the previous test can still be
        # shutting down after its kill-server ("server exited unexpectedly").
        self.sock = f"hanul-test-{os.getpid()}-{self.name}"
        subprocess.run([TMUX, "-L", self.sock, "new-session", "-d", "-s", self.name, "-x", "200", "-y", "50",
                        "-c", str(cwd), cmd], check=True, timeout=10)

    def send(self, *keys):
        subprocess.run([TMUX, "-L", self.sock, "send-keys", "-t", self.name, *keys], check=True, timeout=10)

    def screen(self):
        r = subprocess.run([TMUX, "-L", self.sock, "capture-pane", "-p", "-J", "-S", "-2000", "-t", self.name],
                           capture_output=True, text=True, timeout=10)
        return r.stdout

    def alive(self):
        return subprocess.run([TMUX, "-L", self.sock, "has-session", "-t", self.name],
                              capture_output=True, timeout=10).returncode == 0

    def wait_for(self, predicate, what, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            s = self.screen()
            if predicate(s):
                return s
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}; screen:\n{self.screen()[-3000:]}")

    def kill(self):
        subprocess.run([TMUX, "-L", self.sock, "kill-server"], capture_output=True, timeout=10)


def test_chat_in_a_terminal(tmp_path):
    done = tmp_path / "exit_code"
    # A context and answer limit large enough that the answer runs for seconds: Ctrl-C must
    # stop it long before the end.
    cmd = (f"'{hanul_bin()}' chat -m '{STORIES}' -c 60000 -n 59000 --seed 5 --stats --ignore-eos; "
           f"echo $? > '{done}'; sleep 30")
    t = Tmux(cmd, tmp_path)
    try:
        t.wait_for(lambda s: "/reset" in s and s.rstrip().endswith(">"), "the first prompt")
        # Turn 1 and turn 2 (with -n 59000 they would run long: end each with Ctrl-C once text shows).
        for turn, text in enumerate(["Hello", "Tell me a story"], start=1):
            t.send(text, "Enter")
            t.wait_for(lambda s, n=turn: s.count("generation: ") + s.count("[stopped]") >= n
                       or len(s.split(f"> {text}")[-1]) > 200, f"answer {turn}")
            t.send("C-c")
            t.wait_for(lambda s, n=turn: s.count("[stopped]") >= n, f"the answer {turn} to stop", timeout=20)
            t.wait_for(lambda s, n=turn: s.count("generation: ") >= n and s.rstrip().endswith(">"),
                       f"the prompt after answer {turn}")
        s = t.screen()
        assert s.count("[stopped]") == 2
        # The second turn reused the cache of the first.
        stats = [line for line in s.splitlines() if line.startswith("[prompt:")]
        assert len(stats) == 2 and "(0 reused" not in stats[1], stats
        t.send("/reset", "Enter")
        t.wait_for(lambda s: "[conversation cleared]" in s and s.rstrip().endswith(">"), "/reset")
        # A Ctrl-C at the prompt asks first; EOF quits.
        t.send("C-c")
        t.wait_for(lambda s: "Ctrl-C again or Ctrl-D to quit" in s, "the quit hint")
        assert t.alive()
        t.send("C-d")
        end = time.time() + 20
        while not done.exists() and time.time() < end:
            time.sleep(0.1)
        assert done.exists(), t.screen()[-3000:]
        assert done.read_text().strip() == "0"
    finally:
        t.kill()


def test_chat_second_ctrl_c_at_the_prompt_quits(tmp_path):
    done = tmp_path / "exit_code"
    t = Tmux(f"'{hanul_bin()}' chat -m '{STORIES}'; echo $? > '{done}'; sleep 30", tmp_path)
    try:
        t.wait_for(lambda s: s.rstrip().endswith(">"), "the first prompt")
        t.send("C-c")
        t.wait_for(lambda s: "Ctrl-C again" in s, "the quit hint")
        t.send("C-c")
        end = time.time() + 20
        while not done.exists() and time.time() < end:
            time.sleep(0.1)
        assert done.exists() and done.read_text().strip() == "0", t.screen()[-2000:]
    finally:
        t.kill()
