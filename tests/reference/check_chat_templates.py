#!/usr/bin/env python3
"""hanul's chat templates against transformers' own Jinja machinery.

Every template in tests/fixtures/chat_templates/*.jinja is rendered on a set
of conversations (with and without a system message, multi-turn, Korean text,
whitespace at the edges, add_generation_prompt true and false, and
conversations the template must refuse) by transformers 4.45's
_compile_jinja_template (ImmutableSandboxedEnvironment with trim_blocks and
lstrip_blocks, its tojson, raise_exception, strftime_now) with the same
variables apply_chat_template passes (messages, tools=None, documents=None,
add_generation_prompt, bos_token, eos_token). `hanul template` must print the
same bytes, or fail where transformers raises.

usage: check_chat_templates.py --hanul build/bin/hanul [--fixtures DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "chat_templates")

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
KO_SYSTEM = {"role": "system", "content": "당신은 친절한 한국어 비서입니다. 짧게 답하세요."}

CONVERSATIONS = {
    "single": [{"role": "user", "content": "Hello!"}],
    "system_single": [SYSTEM, {"role": "user", "content": "Hello!"}],
    "multi": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3?"},
    ],
    "system_multi": [
        SYSTEM,
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "   Hello! How can I help?   "},
        {"role": "user", "content": "  Tell me a joke.\n"},
    ],
    "korean": [
        KO_SYSTEM,
        {"role": "user", "content": "안녕하세요! 오늘 서울 날씨 어때요?"},
        {"role": "assistant", "content": "맑고 따뜻합니다. 🌤️"},
        {"role": "user", "content": "고마워요.\n\n그럼 내일은요?"},
    ],
    "ends_with_assistant": [
        {"role": "user", "content": "Say \"yes\" or 'no'."},
        {"role": "assistant", "content": "yes"},
    ],
    "special_chars": [
        {"role": "user", "content": "{{ not a template }} {% neither %} \\n \t tab <s> </s> [INST]"},
    ],
    "empty_system": [{"role": "system", "content": ""}, {"role": "user", "content": "x"}],
    # Templates that check roles refuse these.
    "bad_alternation": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ],
    "starts_with_assistant": [
        {"role": "assistant", "content": "I speak first"},
        {"role": "user", "content": "ok"},
    ],
    "unknown_role": [{"role": "user", "content": "a"}, {"role": "tool_x", "content": "b"}],
}


def reference(template, messages, tokens, add_generation_prompt):
    """transformers' render, or ('error', message)."""
    kwargs = {}
    if tokens.get("bos_token"):
        kwargs["bos_token"] = tokens["bos_token"]
    if tokens.get("eos_token"):
        kwargs["eos_token"] = tokens["eos_token"]
    try:
        compiled = _compile_jinja_template(template)
        return "ok", compiled.render(messages=messages, tools=None, documents=None,
                                     add_generation_prompt=add_generation_prompt, **kwargs)
    except Exception as e:  # noqa: BLE001 - any failure is the expected outcome
        return "error", f"{type(e).__name__}: {e}"


def hanul(binary, template_path, conv_path, tokens, add_generation_prompt):
    cmd = [binary, "template", "-m", template_path, conv_path,
           "--bos", tokens.get("bos_token", ""), "--eos", tokens.get("eos_token", "")]
    if not add_generation_prompt:
        cmd.append("--no-generation-prompt")
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    if p.returncode == 0:
        return "ok", p.stdout.decode("utf-8")
    return "error", f"exit {p.returncode}: {p.stderr.decode('utf-8', 'replace').strip()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hanul", required=True)
    ap.add_argument("--fixtures", default=FIXTURES)
    args = ap.parse_args()
    with open(os.path.join(args.fixtures, "tokens.json"), encoding="utf-8") as f:
        tokens_of = json.load(f)
    names = sorted(n[:-len(".jinja")] for n in os.listdir(args.fixtures) if n.endswith(".jinja"))
    assert names, "no templates found"
    failures, checked, refused = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        conv_paths = {}
        for cname, conv in CONVERSATIONS.items():
            conv_paths[cname] = os.path.join(tmp, cname + ".json")
            with open(conv_paths[cname], "w", encoding="utf-8") as f:
                json.dump(conv, f, ensure_ascii=False)
        for name in names:
            path = os.path.join(args.fixtures, name + ".jinja")
            with open(path, encoding="utf-8", newline="") as f:
                template = f.read()
            tokens = tokens_of.get(name, {})
            for cname, conv in CONVERSATIONS.items():
                for agp in (True, False):
                    want = reference(template, conv, tokens, agp)
                    got = hanul(args.hanul, path, conv_paths[cname], tokens, agp)
                    checked += 1
                    if want[0] == "error":
                        refused += 1
                    if want[0] != got[0] or (want[0] == "ok" and want[1] != got[1]):
                        failures += 1
                        print(f"FAIL {name} / {cname} / add_generation_prompt={agp}")
                        print(f"  transformers: {want[0]}: {want[1]!r}")
                        print(f"  hanul:        {got[0]}: {got[1]!r}")
    print(f"{checked} renders of {len(names)} templates checked ({refused} refused by both sides "
          f"as expected), {failures} differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
