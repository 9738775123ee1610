// Stop strings that may span token boundaries. Text is pushed piece by piece as it streams;
// any tail that could still become the start of a stop string is held back, so a stop string
// is never printed, not even its first half.
//
//   StopMatcher stop({"\nUser:", "</s>"});
//   for (...) {
//     auto r = stop.push(piece);
//     std::cout << r.text;          // safe to show now
//     if (r.stopped) break;         // r.text ends where the stop string began
//   }
//   std::cout << stop.flush();      // generation ended for another reason (EOS, max tokens)
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hanul {

class StopMatcher {
 public:
  struct Step {
    std::string text;   // text that can be emitted now
    bool stopped = false;
    int stop_index = -1;  // which stop string completed
  };

  explicit StopMatcher(std::vector<std::string> stops);

  // Appends a piece. Once stopped, further pushes return nothing.
  Step push(std::string_view piece);
  // The held-back text, when generation ends without a stop string.
  std::string flush();
  void reset();

  bool stopped() const { return stopped_; }
  const std::string& held() const { return held_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace hanul
