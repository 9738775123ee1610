// Chat templates: parser errors, each construct against Jinja's documented
// behaviour, and the real templates of each family (tests/fixtures/chat_templates)
// with and without a system message and generation prompt. The byte-for-byte
// comparison with transformers on many more conversations is
// tests/reference/check_chat_templates.py.
#include "hanul/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "hanul/formats/gguf.h"
#include "tokenizer_test_util.h"

namespace hanul {
namespace {

std::string fixture(const std::string& name) {
  return testing::read_all(std::string(HANUL_SOURCE_DIR) + "/tests/fixtures/chat_templates/" + name + ".jinja");
}

Result<std::string> render(const std::string& source, const std::vector<ChatMessage>& msgs, bool gen = true,
                           const std::string& bos = "<s>", const std::string& eos = "</s>") {
  auto t = ChatTemplate::parse(source);
  if (!t.ok()) return t.error();
  ChatTemplateInputs in;
  in.bos_token = bos;
  in.eos_token = eos;
  in.add_generation_prompt = gen;
  return t->render(msgs, in);
}

std::string ok(const std::string& source, const std::vector<ChatMessage>& msgs = {}, bool gen = true) {
  auto r = render(source, msgs, gen);
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? *r : std::string("<error: ") + r.message() + ">";
}

std::string parse_error(const std::string& source) {
  auto t = ChatTemplate::parse(source);
  EXPECT_FALSE(t.ok());
  return t.ok() ? std::string() : t.message();
}

const std::vector<ChatMessage> kUser = {{"user", "Hello"}};
const std::vector<ChatMessage> kSystemUser = {{"system", "Be brief."}, {"user", "Hello"}};
const std::vector<ChatMessage> kMulti = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", " Hey! "},
                                         {"user", "안녕하세요"}};

TEST(ChatTemplateParse, ErrorsNameTheLineAndConstruct) {
  EXPECT_NE(parse_error("a\n{% if x %}b").find("line 2"), std::string::npos);
  EXPECT_NE(parse_error("a\n{% if x %}b").find("never closed"), std::string::npos);
  std::string e = parse_error("x\ny\n{{ a | wordwrap }}");
  EXPECT_NE(e.find("line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("unsupported filter 'wordwrap'"), std::string::npos) << e;
  e = parse_error("{% macro m() %}{% endmacro %}");
  EXPECT_NE(e.find("unsupported statement '{% macro %}'"), std::string::npos) << e;
  e = parse_error("{% include 'x' %}");
  EXPECT_NE(e.find("include"), std::string::npos) << e;
  EXPECT_NE(parse_error("{{ 'abc }}").find("unterminated string"), std::string::npos);
  EXPECT_NE(parse_error("{{ a").find("never closed"), std::string::npos);
  EXPECT_NE(parse_error("{{ a is prime }}").find("unsupported test 'prime'"), std::string::npos);
  EXPECT_NE(parse_error("{% endfor %}").find("unexpected"), std::string::npos);
  EXPECT_NE(parse_error("{{ (1 }}").find("'(' is still open"), std::string::npos);
  EXPECT_NE(parse_error("{# open").find("comment"), std::string::npos);
  EXPECT_NE(parse_error("{{ a $ b }}").find("unexpected character '$'"), std::string::npos);
}

TEST(ChatTemplateParse, DeepNestingIsFineAndNoCrash) {
  std::string deep;
  for (int k = 0; k < 50; ++k) deep += "{% if true %}";
  deep += "x";
  for (int k = 0; k < 50; ++k) deep += "{% endif %}";
  EXPECT_EQ(ok(deep), "x");
  // Hostile nesting is refused with an error, not a stack overflow.
  EXPECT_NE(parse_error("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}").find("nests deeper"),
            std::string::npos);
  std::string ifs;
  for (int k = 0; k < 5000; ++k) ifs += "{% if true %}";
  EXPECT_NE(parse_error(ifs).find("nests deeper"), std::string::npos);
  EXPECT_NE(parse_error("{{ " + std::string(100000, '-') + "1 }}").find("nests deeper"), std::string::npos);
}

// Random edits of the real templates: each must parse and render or fail with
// an error; never crash, hang or read out of bounds (run under ASan to see the last).
TEST(ChatTemplateParse, MutatedTemplatesNeverCrash) {
  std::mt19937 rng(20250220);
  const std::string alphabet = "{}%#-+()[]'\".|:=~*/ \nabx01";
  int parsed = 0, rendered = 0, total = 0;
  for (const char* name : {"llama2", "llama3", "llama3.1", "mistral-v0.3", "qwen2.5", "solar", "constructs"}) {
    const std::string base = fixture(name);
    for (int k = 0; k < 150; ++k) {
      std::string t = base;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !t.empty(); ++e) {
        const size_t at = rng() % t.size();
        switch (rng() % 3) {
          case 0: t.erase(at, 1 + rng() % 3); break;
          case 1: t.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
          default: t[at] = alphabet[rng() % alphabet.size()];
        }
      }
      ++total;
      auto parsed_t = ChatTemplate::parse(t);
      if (!parsed_t.ok()) {
        EXPECT_FALSE(parsed_t.message().empty());
        continue;
      }
      ++parsed;
      ChatTemplateInputs in;
      in.bos_token = "<s>";
      auto r = parsed_t->render(kMulti, in);
      if (r.ok()) ++rendered;
      else EXPECT_FALSE(r.message().empty());
    }
  }
  EXPECT_EQ(total, 7 * 150);
  EXPECT_GT(parsed, 0);    // the edits are not all fatal, so rendering was exercised too
  EXPECT_GT(rendered, 0);
}

TEST(ChatTemplateRender, TextAndWhitespaceControl) {
  EXPECT_EQ(ok("plain text"), "plain text");
  EXPECT_EQ(ok("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(ok("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before it.
  EXPECT_EQ(ok("{% if true %}\n    x\n    {% endif %}\ny"), "    x\ny");
  // Neither applies to {{ }}.
  EXPECT_EQ(ok("  {{ 'v' }}\n"), "  v");  // the template's one final newline is dropped (jinja2)
  EXPECT_EQ(ok("  {%+ if true %}x{% endif +%}\n"), "  x");
  EXPECT_EQ(ok("a{# comment #}\nb"), "ab");
  EXPECT_EQ(ok("a\r\nb"), "a\nb");
}

TEST(ChatTemplateRender, Loops) {
  const std::vector<ChatMessage> three = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}};
  EXPECT_EQ(ok("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.length }}"
               "{{ 'F' if loop.first }}{{ 'L' if loop.last }}{{ m.content }};{% endfor %}",
               three),
            "103Fa;213b;323Lc;");
  EXPECT_EQ(ok("{% for m in messages if m.role == 'user' %}{{ loop.length }}{{ m['content'] }}{% endfor %}", three),
            "2a2c");
  EXPECT_EQ(ok("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(ok("{% for i in range(9) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 5 %}{% break %}"
               "{% endif %}{{ i }}{% endfor %}"),
            "024");
  EXPECT_EQ(ok("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}{{ v }}{% endfor %}"), "a1b2");
  EXPECT_EQ(ok("{% for x in undefined_list %}x{% endfor %}ok"), "ok");
}

TEST(ChatTemplateRender, SetScopingAndNamespace) {
  // A set inside a loop does not leak out (Jinja scoping); a namespace does.
  EXPECT_EQ(ok("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i * 10 %}{{ x }}{% endfor %}{{ x }}"), "10201");
  EXPECT_EQ(ok("{% set ns = namespace(found=false) %}{% for i in [1, 2] %}{% set ns.found = true %}{% endfor %}"
               "{{ ns.found }}"),
            "True");
  EXPECT_EQ(ok("{% if true %}{% set y = 'in-if' %}{% endif %}{{ y }}"), "in-if");
  EXPECT_EQ(ok("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(ok("{% set blk %} x {{ 1 + 1 }} {% endset %}[{{ blk }}]"), "[ x 2 ]");
  EXPECT_NE(render("{% set s = 'str' %}{% set s.x = 1 %}", {}).message().find("not a namespace"), std::string::npos);
}

TEST(ChatTemplateRender, Expressions) {
  EXPECT_EQ(ok("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}"),
            "7 3 -4 2 3.5 1024");
  EXPECT_EQ(ok("{{ 'a' ~ 1 ~ none }} {{ 'a' + 'b' }} {{ [1] + [2] }}"), "a1None ab [1, 2]");
  EXPECT_EQ(ok("{{ 'b' if false else 'c' }}|{{ 'x' if false }}|"), "c||");
  EXPECT_EQ(ok("{{ 'ell' in 'hello' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 0} }} {{ 1 < 2 <= 2 }}"),
            "True True True True");
  EXPECT_EQ(ok("{{ not true or false and true }} {{ none or 'd' }} {{ 0 and 1 }}"), "False d 0");
  EXPECT_EQ(ok("{{ messages[1:] | length }} {{ messages[-1]['content'] }} {{ messages[0].role }}", kMulti),
            "3 안녕하세요 system");
  EXPECT_EQ(ok("{{ 'abcdef'[1:4] }} {{ 'abcdef'[::-2] }} {{ [1, 2, 3][:-1] }} {{ '한국어'[1] }}"),
            "bcd fdb [1, 2] 국");
  EXPECT_EQ(ok("{{ {'a': [1, 'x', none, true, 1.5]} }}"), "{'a': [1, 'x', None, True, 1.5]}");
  EXPECT_EQ(ok("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.0 }} {{ 2.5e-5 }}"), "0.30000000000000004 1e+16 1.0 2.5e-05");
}

TEST(ChatTemplateRender, UndefinedIsFalsyAndEmpty) {
  EXPECT_EQ(ok("[{{ nothing }}]{% if nothing %}yes{% else %}no{% endif %}{{ nothing is defined }}"),
            "[]noFalse");
  EXPECT_EQ(ok("{{ messages[0].tool_calls is defined }}{{ messages[9] is defined }}", kUser), "FalseFalse");
  EXPECT_EQ(ok("{{ nothing | default('d') }}{{ nothing | length }}{{ nothing | trim }}"), "d0");
  // Using an undefined value as a value fails, as Jinja's default Undefined does.
  auto r = render("{{ nothing.attr }}", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("'nothing' is undefined"), std::string::npos) << r.message();
  r = render("{{ nothing + 'x' }}", {});
  ASSERT_FALSE(r.ok());
  r = render("{{ 'a' + 1 }}", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("'str' and 'int'"), std::string::npos) << r.message();
}

TEST(ChatTemplateRender, FiltersTestsAndMethods) {
  EXPECT_EQ(ok("{{ '  x \u3000' | trim }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}|{{ 'hELLO' | capitalize }}"),
            "x|ABab|Hello");
  EXPECT_EQ(ok("{{ [3, 1] | first }}{{ [3, 1] | last }}{{ ['a', 'b'] | join('-') }}{{ 'a-b' | replace('-', '+') }}"),
            "31a-ba+b");
  EXPECT_EQ(ok("{{ {'k': '한', 'n': [1, 2.5, none]} | tojson }}"), "{\"k\": \"한\", \"n\": [1, 2.5, null]}");
  EXPECT_EQ(ok("{{ {'a': 'q\"\\n'} | tojson(indent=2) }}"), "{\n  \"a\": \"q\\\"\\n\"\n}");
  EXPECT_EQ(ok("{% for k, v in {'x': 1} | items %}{{ k }}{{ v }}{% endfor %}{{ 5 | string ~ '!' }}"), "x15!");
  EXPECT_EQ(ok("{{ messages | selectattr('role', 'equalto', 'user') | list | length }}"
               "{{ messages | map(attribute='role') | join(',') }}",
               kMulti),
            "2system,user,assistant,user");
  EXPECT_EQ(ok("{{ ' a b '.strip() }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}|{{ 'a b  c'.split() }}"
               "|{{ 'a,b'.split(',') }}|{{ 'x'.upper() }}{{ 'Y'.lower() }}|{{ {'a': 1}.get('a') }}"
               "{{ {'a': 1}.get('z', 'dflt') }}{{ {'a': 1}.get('z') }}"),
            "a b|TrueTrue|['a', 'b', 'c']|['a', 'b']|Xy|1dfltNone");
  EXPECT_EQ(ok("{{ none is none }}{{ 's' is string }}{{ 1 is number }}{{ {} is mapping }}{{ 4 is divisibleby 2 }}"
               "{{ 'a' is not string }}{{ [1] is iterable }}"),
            "TrueTrueTrueTrueTrueFalseTrue");
  auto r = render("{{ 'x'.zfill(3) }}", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("unsupported method 'str.zfill()'"), std::string::npos) << r.message();
  r = render("{{ messages.append(1) }}", {});
  ASSERT_FALSE(r.ok());
  r = render("{{ cycler(1) }}", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("unsupported function 'cycler()'"), std::string::npos) << r.message();
}

TEST(ChatTemplateRender, RaiseExceptionGivesItsMessage) {
  auto r = render("a{{ raise_exception('Roles must alternate!') }}", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "Roles must alternate!");
}

TEST(ChatTemplateRender, SpecialTokensAndGenerationPrompt) {
  EXPECT_EQ(ok("{{ bos_token }}{% if add_generation_prompt %}G{% endif %}{{ eos_token }}", {}, true), "<s>G</s>");
  EXPECT_EQ(ok("{{ bos_token }}{% if add_generation_prompt %}G{% endif %}{{ eos_token }}", {}, false), "<s></s>");
  // transformers passes tools=None and documents=None.
  EXPECT_EQ(ok("{{ tools is defined }}{{ tools is none }}{{ documents is none }}"), "TrueTrueTrue");
  // An empty token is not passed at all (Qwen2 has no BOS): undefined, prints as nothing.
  auto r = render("[{{ bos_token }}]{{ bos_token is defined }}", {}, true, "", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "[]False");
}

// ---- the families ---------------------------------------------------------

TEST(ChatTemplateFamilies, Llama2) {
  const std::string t = fixture("llama2");
  EXPECT_EQ(ok(t, kUser), "<s>[INST] Hello [/INST]");
  EXPECT_EQ(ok(t, kSystemUser, false), "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST]");
  EXPECT_EQ(ok(t, kMulti), "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hey! </s><s>[INST] 안녕하세요 [/INST]");
  auto r = render(t, {{"user", "a"}, {"user", "b"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "Conversation roles must alternate user/assistant/user/assistant/...");
}

TEST(ChatTemplateFamilies, Llama3) {
  const std::string t = fixture("llama3");
  const std::string b = "<|begin_of_text|>";
  auto r = render(t, kUser, true, b, "<|eot_id|>");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(*r, b + "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n");
  r = render(t, kSystemUser, false, b, "<|eot_id|>");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(*r, b + "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                    "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>");
  r = render(t, kMulti, true, b, "<|eot_id|>");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_NE(r->find("<|start_header_id|>assistant<|end_header_id|>\n\nHey!<|eot_id|>"), std::string::npos) << *r;
}

TEST(ChatTemplateFamilies, Mistral) {
  const std::string v2 = fixture("mistral-v0.2");
  EXPECT_EQ(ok(v2, {{"user", "Hi"}, {"assistant", "Hey"}, {"user", "Q"}}), "<s>[INST] Hi [/INST]Hey</s>[INST] Q [/INST]");
  auto r = render(v2, kSystemUser);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "Conversation roles must alternate user/assistant/user/assistant/...");
  const std::string v1 = fixture("mistral-v0.1");
  EXPECT_EQ(ok(v1, kSystemUser), "<s> [INST] Be brief.\n\nHello [/INST]");
  const std::string v3 = fixture("mistral-v0.3");
  EXPECT_EQ(ok(v3, kUser), "<s>[INST] Hello[/INST]");
  EXPECT_EQ(ok(v3, kMulti), "<s>[INST] Hi[/INST] Hey!</s>[INST] Be brief.\n\n안녕하세요[/INST]");
}

TEST(ChatTemplateFamilies, Qwen2ChatMl) {
  const std::string t = fixture("qwen2");
  EXPECT_EQ(ok(t, kUser), "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                          "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ok(t, kSystemUser, false), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n");
  EXPECT_EQ(ok(fallback_chat_template(), kSystemUser),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateFamilies, Solar) {
  const std::string t = fixture("solar");
  EXPECT_EQ(ok(t, kUser), "### User:\nHello\n\n### Assistant:\n");
  EXPECT_EQ(ok(t, kSystemUser, false), "### System:\nBe brief.\n\n### User:\nHello\n\n");
  EXPECT_EQ(ok(t, kMulti), "### System:\nBe brief.\n\n### User:\nHi\n\n### Assistant:\n Hey! ### User:\n안녕하세요\n\n"
                           "### Assistant:\n");
}

TEST(ChatTemplateFamilies, EveryFixtureParses) {
  for (const char* name : {"llama2", "llama3", "llama3.1", "mistral-v0.1", "mistral-v0.2", "mistral-v0.3", "qwen2",
                           "qwen2.5", "solar", "gemma", "deepseek-coder", "constructs"}) {
    auto t = ChatTemplate::parse(fixture(name));
    EXPECT_TRUE(t.ok()) << name << ": " << t.message();
  }
}

// ---- finding a model's template ---------------------------------------------

TEST(FindChatTemplate, ConfigStringListGgufAndNone) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(HANUL_BINARY_DIR) / "test_chat_template_tmp";
  fs::remove_all(dir);
  fs::create_directories(dir / "str");
  fs::create_directories(dir / "list");
  fs::create_directories(dir / "none");
  std::ofstream(dir / "str" / "tokenizer_config.json") << R"({"chat_template": "{{ 'S' }}"})";
  std::ofstream(dir / "list" / "tokenizer_config.json")
      << R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})";
  std::ofstream(dir / "none" / "tokenizer_config.json") << R"({"bos_token": "<s>"})";
  auto s = find_chat_template((dir / "str").string());
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ(**s, "{{ 'S' }}");
  auto l = find_chat_template((dir / "list").string());
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ(**l, "D");
  auto n = find_chat_template((dir / "none").string());
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->has_value());
  std::ofstream(dir / "bad.json") << "{not json";
  EXPECT_FALSE(find_chat_template((dir / "bad.json").string()).ok());
  EXPECT_FALSE(find_chat_template((dir / "missing.gguf").string()).ok());

  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.chat_template", fixture("solar"));
  ASSERT_TRUE(w.write((dir / "m.gguf").string()).ok());
  auto g = find_chat_template((dir / "m.gguf").string());
  ASSERT_TRUE(g.ok()) << g.message();
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ(**g, fixture("solar"));
  GgufWriter w2;
  w2.set_string("general.architecture", "llama");
  ASSERT_TRUE(w2.write((dir / "plain.gguf").string()).ok());
  auto p = find_chat_template((dir / "plain.gguf").string());
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_value());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hanul
