// Grammar-constrained decoding: a GBNF grammar (llama.cpp's grammars/README.md syntax)
// compiled to a pushdown recogniser over UTF-8 bytes, used as a mask on the logits.
//
//   root   ::= "yes" | "no" | answer
//   answer ::= [a-z]+ ("," [ \t]? [a-z]+){0,3}   # comments run to the end of the line
//
// Rules are `name ::= alternatives`; a rule ends at a newline unless inside ( ). Terminals are
// "literals" (escapes \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH), [char classes] with ranges
// and ^ negation, and . (any character); postfix * + ? {m} {m,} {m,n} repeat the item before.
//
//   auto g = Grammar::parse(text);                 // Result: errors name line and column
//   GrammarMatcher m(*g);
//   m.mask_logits(logits, pieces, eog_ids);        // -inf where a token cannot continue
//   m.accept_bytes(pieces[id]);                    // after sampling id
//   if (m.is_complete()) ...
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hanul/base/result.h"

namespace hanul {

class Tokenizer;

// One item of an alternative: a character class, a reference to a rule, or the end marker.
struct GrammarSymbol {
  enum Kind : uint8_t { kEnd, kChars, kRule };
  Kind kind = kEnd;
  bool negated = false;                                // kChars: [^...] and '.'
  uint32_t rule = 0;                                   // kRule
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // kChars: inclusive code point ranges

  bool matches(uint32_t cp) const;
  bool intersects(uint32_t lo, uint32_t hi) const;  // some code point in [lo, hi] matches
};

class Grammar {
 public:
  // root: the start rule. Errors: "grammar: line 3, column 12: ...".
  static Result<Grammar> parse(std::string_view text, std::string_view root = "root");

  size_t n_rules() const { return rule_alts_.size(); }
  const std::string& rule_name(uint32_t r) const { return rule_names_[r]; }

 private:
  friend class GrammarMatcher;
  friend class GrammarParser;
  // All alternatives laid out in one array, each ended by a kEnd symbol; a recogniser position
  // is an index into it. rule_alts_[r] holds the start index of each alternative of rule r.
  std::vector<GrammarSymbol> symbols_;
  std::vector<std::vector<uint32_t>> rule_alts_;
  std::vector<std::string> rule_names_;
  uint32_t root_ = 0;
};

// The state of one parse: the set of pushdown stacks still alive (each a list of positions in
// Grammar's symbol array, the top last) and the bytes of an unfinished UTF-8 character.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);
  explicit GrammarMatcher(const Grammar& grammar)
      : GrammarMatcher(std::make_shared<const Grammar>(grammar)) {}

  // Advances over the bytes if the grammar allows them all; otherwise returns false and
  // leaves the state as it was.
  bool accept_bytes(std::string_view bytes);
  bool can_accept(std::string_view bytes) const;
  // The text so far is a complete sentence of the grammar (it may still be extended).
  bool is_complete() const;
  // Nothing more can be accepted (complete, and no stack can take another character).
  bool is_finished() const;
  void reset();

  // The fewest bytes that make the text so far a complete sentence (0 when it is one already;
  // kNever when nothing can). With a vocabulary that holds every byte as a token (SentencePiece
  // byte fallback, byte-level BPE) that many tokens always suffice, so a generator with a token
  // budget can keep this within what it has left and end with a finished sentence.
  static constexpr size_t kNever = SIZE_MAX;
  size_t min_bytes_to_complete() const { return min_bytes(state_); }
  // The same after `bytes` (kNever if they are refused); the state does not change.
  size_t min_bytes_to_complete_after(std::string_view bytes) const;

  // Per-token decision: pieces[id] is the bytes token id stands for (Tokenizer::token_to_piece
  // with special=false, so control tokens are empty). An empty piece is allowed only for ids
  // in eog, and only when the text is complete.
  std::vector<bool> allowed(std::span<const std::string> pieces,
                            std::span<const int32_t> eog = {}) const;
  // Sets the logits of disallowed tokens to -inf. logits.size() may exceed pieces.size()
  // (padded vocabularies); the extra ids are masked.
  void mask_logits(std::span<float> logits, std::span<const std::string> pieces,
                   std::span<const int32_t> eog = {}) const;
  // The piece of every id of a tokenizer, as mask_logits wants them.
  static std::vector<std::string> pieces_of(const Tokenizer& tok);

 private:
  using Stack = std::vector<uint32_t>;
  struct State {
    std::vector<Stack> stacks;  // sorted, unique
    std::string partial;        // bytes of an unfinished UTF-8 character
  };
  bool step_byte(State& s, uint8_t byte) const;
  void advance(const std::vector<Stack>& in, uint32_t cp, std::vector<Stack>& out) const;
  void expand(Stack stack, std::vector<Stack>& out) const;
  size_t min_bytes(const State& s) const;

  std::shared_ptr<const Grammar> g_;
  // Per position in Grammar::symbols_: the fewest bytes from there to the end of its alternative.
  std::shared_ptr<const std::vector<size_t>> min_rest_;
  State state_;
};

}  // namespace hanul
