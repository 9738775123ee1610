// train_step_tool: the bridge from tests/reference/check_train_step.py to
// train/train_step.h. It loads a model folder (config.json + model.safetensors,
// any dtype the engine reads), copies it to float32, takes ONE training step on
// a token batch and writes what the step produced:
//   train_step_tool MODEL_DIR TOKENS.npy OUT_DIR [lr=1e-3] [beta1=0.9] [beta2=0.999]
//                   [eps=1e-8] [wd=0.1] [max_norm=1] [micro=1] [threads=2]
// TOKENS.npy is float32 [B, T+1] holding exactly representable token ids.
// OUT_DIR receives loss.npy ([1]), grad_norm.npy ([1]) and model.safetensors (the
// updated weights under their Hugging Face names).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/formats/npy.h"
#include "hanul/formats/safetensors.h"
#include "hanul/train/train_step.h"

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "train_step_tool: %s\n", msg.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: train_step_tool MODEL_DIR TOKENS.npy OUT_DIR [key=value ...]");
  std::map<std::string, std::string> args;
  for (int i = 4; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    if (eq == std::string::npos) die("expected key=value, got '" + a + "'");
    args[a.substr(0, eq)] = a.substr(eq + 1);
  }
  auto num = [&](const std::string& k, double def) {
    auto it = args.find(k);
    return it == args.end() ? def : std::stod(it->second);
  };

  auto model = hanul::load_model(argv[1]);
  if (!model.ok()) die(model.message());
  auto trainable = hanul::TrainableModel::from_model(**model);
  if (!trainable.ok()) die(trainable.message());

  std::vector<int64_t> shape;
  auto tokens = hanul::read_npy_f32(argv[2], &shape);
  if (!tokens.ok()) die(tokens.message());
  if (shape.size() != 2) die("tokens must be [B, T+1]");
  std::vector<int32_t> ids(tokens->begin(), tokens->end());

  hanul::AdamWParams hp;
  hp.lr = num("lr", 1e-3);
  hp.beta1 = num("beta1", 0.9);
  hp.beta2 = num("beta2", 0.999);
  hp.eps = num("eps", 1e-8);
  hp.weight_decay = num("wd", 0.1);
  hanul::ThreadPool pool(static_cast<int>(num("threads", 2)));
  auto r = hanul::train_step(*trainable, {ids, shape[0], shape[1]}, hp, static_cast<float>(num("max_norm", 1.0)),
                             static_cast<int>(num("micro", 1)), &pool);
  if (!r.ok()) die(r.message());

  const std::string out = argv[3];
  auto st = hanul::write_npy_f32(out + "/loss.npy", &r->loss, {1});
  if (st.ok()) st = hanul::write_npy_f32(out + "/grad_norm.npy", &r->grad_norm, {1});
  if (st.ok()) st = hanul::write_safetensors(out + "/model.safetensors", trainable->tensors(true));
  if (!st.ok()) die(st.message());
  std::printf("loss %.9g grad_norm %.9g params %lld\n", r->loss, r->grad_norm,
              static_cast<long long>(trainable->n_params()));
  return 0;
}
