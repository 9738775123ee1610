#include "hanul/generate/stop_strings.h"

#include <algorithm>

namespace hanul {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));  // an empty stop string would stop at once
  }
}

void StopMatcher::reset() {
  held_.clear();
  stopped_ = false;
}

StopMatcher::Step StopMatcher::push(std::string_view piece) {
  Step step;
  if (stopped_) return step;
  held_.append(piece);

  // The earliest complete stop string wins; at one position, the longest (a stop string that
  // is a prefix of another ends the text at the same place either way).
  size_t best = std::string::npos;
  int best_index = -1;
  for (size_t i = 0; i < stops_.size(); ++i) {
    size_t at = held_.find(stops_[i]);
    if (at < best) {
      best = at;
      best_index = int(i);
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    step.stopped = true;
    step.stop_index = best_index;
    step.text = held_.substr(0, best);
    held_.clear();
    return step;
  }

  // Hold the longest tail of held_ that is a proper prefix of some stop string. No stop string
  // occurs in held_, so only the last (max stop length - 1) bytes can start one.
  size_t hold = 0;
  for (const auto& s : stops_) {
    size_t max_len = std::min(s.size() - 1, held_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  step.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return step;
}

std::string StopMatcher::flush() {
  if (stopped_) return {};
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace hanul
