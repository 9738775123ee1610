// grad_tool: the bridge from tests/reference/check_grads.py to the backward ops of
// kernels/ref/ops_backward.h (and kernels/cpu/ops_backward.h). The script writes
// the inputs as float32 .npy files into DIR (integer inputs such as tokens as
// exactly representable floats), runs
//   grad_tool OP DIR [key=value ...]
// and reads the gradients back from DIR. OPs and their files:
//   embedding      emb tokens dout                  -> demb
//   rmsnorm        x w dout            eps          -> dx dw
//   rope           dout positions inv_freq  layout  -> dx
//   swiglu         gate up dout                     -> dgate dup
//   matmul         x w b dy            impl         -> dx dw db
//   attention      q k v dout          n_head n_head_kv pos0 scale impl -> dq dk dv
//   cross_entropy  logits targets      dloss        -> loss dlogits
//   adamw          p grads[steps, n]   lr beta1 beta2 eps wd -> p m v
//   clip           g0 g1 g2            max_norm     -> norm g0 g1 g2
//   block          x attn_norm wq wk wv wo ffn_norm w1 w3 w2 inv_freq dout
//                  n_head n_head_kv eps impl        -> out and d<each input but dout>
// impl is ref (default) or cpu: which twin of matmul/attention backward runs.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/formats/npy.h"
#include "hanul/kernels/cpu/ops_backward.h"
#include "hanul/kernels/ref/ops.h"
#include "hanul/kernels/ref/ops_backward.h"

namespace {

using hanul::ThreadPool;
using Vec = std::vector<float>;

struct Array {
  Vec data;
  std::vector<int64_t> shape;
  float* p() { return data.data(); }
  int64_t dim(size_t i) const { return shape.at(i); }
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "grad_tool: %s\n", msg.c_str());
  std::exit(1);
}

class Io {
 public:
  Io(std::string dir, std::map<std::string, std::string> args)
      : dir_(std::move(dir)), args_(std::move(args)) {}

  Array in(const std::string& name) const {
    Array a;
    auto r = hanul::read_npy_f32(dir_ + "/" + name + ".npy", &a.shape);
    if (!r.ok()) die(r.message());
    a.data = std::move(r.value());
    return a;
  }
  std::vector<int32_t> ints(const std::string& name) const {
    Array a = in(name);
    return std::vector<int32_t>(a.data.begin(), a.data.end());
  }
  void out(const std::string& name, const Vec& v, const std::vector<int64_t>& shape) const {
    auto st = hanul::write_npy_f32(dir_ + "/" + name + ".npy", v.data(), shape);
    if (!st.ok()) die(st.message());
  }
  double num(const std::string& key, double def) const {
    auto it = args_.find(key);
    return it == args_.end() ? def : std::stod(it->second);
  }
  std::string str(const std::string& key, const std::string& def) const {
    auto it = args_.find(key);
    return it == args_.end() ? def : it->second;
  }
  bool cpu() const { return str("impl", "ref") == "cpu"; }

 private:
  std::string dir_;
  std::map<std::string, std::string> args_;
};

Vec zeros(int64_t n) { return Vec(static_cast<size_t>(n), 0.0f); }

void matmul_backward(const Io& io, float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, int64_t m, int64_t k, int64_t n, ThreadPool* pool) {
  (io.cpu() ? hanul::cpu::matmul_backward : hanul::ref::matmul_backward)(dx, dw, db, dy, x, w, m, k,
                                                                         n, pool);
}

// One pre-norm Llama block (HF LlamaDecoderLayer, no KV cache, positions 0..T-1,
// RoPE in the halves layout), forward with the ref ops and backward with ours.
void block(const Io& io, ThreadPool* pool) {
  Array x = io.in("x"), attn_norm = io.in("attn_norm"), wq = io.in("wq"), wk = io.in("wk");
  Array wv = io.in("wv"), wo = io.in("wo"), ffn_norm = io.in("ffn_norm"), w1 = io.in("w1");
  Array w3 = io.in("w3"), w2 = io.in("w2"), inv_freq = io.in("inv_freq"), dout = io.in("dout");
  const int64_t T = x.dim(0), E = x.dim(1), F = w1.dim(0);
  const int n_head = static_cast<int>(io.num("n_head", 0)),
            n_head_kv = static_cast<int>(io.num("n_head_kv", 0));
  const int D = static_cast<int>(inv_freq.dim(0) * 2);
  const int64_t QD = int64_t{n_head} * D, KD = int64_t{n_head_kv} * D;
  const float eps = static_cast<float>(io.num("eps", 1e-5));
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(t);
  const auto layout = hanul::RopeLayout::kHalves;
  using hanul::DType;
  namespace ref = hanul::ref;

  // Forward, every intermediate kept for the backward.
  Vec xn = zeros(T * E), q = zeros(T * QD), k = zeros(T * KD), v = zeros(T * KD), a = zeros(T * QD);
  Vec h = zeros(T * E), hn = zeros(T * E), g = zeros(T * F), u = zeros(T * F), s = zeros(T * F),
      out = zeros(T * E);
  ref::rmsnorm(xn.data(), x.p(), attn_norm.p(), T, E, eps);                       // [T, E]
  ref::matmul(xn.data(), T, E, wq.p(), DType::F32, QD, nullptr, q.data(), pool);  // [T, n_head, D]
  ref::matmul(xn.data(), T, E, wk.p(), DType::F32, KD, nullptr, k.data(),
              pool);  // [T, n_head_kv, D]
  ref::matmul(xn.data(), T, E, wv.p(), DType::F32, KD, nullptr, v.data(),
              pool);  // [T, n_head_kv, D]
  ref::rope(q.data(), T, n_head, D, pos.data(), inv_freq.p(), layout);
  ref::rope(k.data(), T, n_head_kv, D, pos.data(), inv_freq.p(), layout);
  ref::attention(a.data(), q.data(), T, k.data(), v.data(), T, n_head, n_head_kv, D, 0, scale,
                 pool);
  ref::matmul(a.data(), T, QD, wo.p(), DType::F32, E, nullptr, h.data(), pool);  // [T, E]
  for (int64_t i = 0; i < T * E; ++i) h[i] += x.data[i];                         // residual
  ref::rmsnorm(hn.data(), h.data(), ffn_norm.p(), T, E, eps);
  ref::matmul(hn.data(), T, E, w1.p(), DType::F32, F, nullptr, g.data(), pool);  // gate [T, F]
  ref::matmul(hn.data(), T, E, w3.p(), DType::F32, F, nullptr, u.data(), pool);  // up   [T, F]
  ref::swiglu(s.data(), g.data(), u.data(), T * F);
  ref::matmul(s.data(), T, F, w2.p(), DType::F32, E, nullptr, out.data(), pool);  // [T, E]
  for (int64_t i = 0; i < T * E; ++i) out[i] += h[i];                             // residual

  // Backward, in the reverse order.
  Vec dh = dout.data;  // the residual passes dout straight to h
  Vec ds = zeros(T * F), dg = zeros(T * F), du = zeros(T * F), dhn = zeros(T * E);
  Vec dw2 = zeros(E * F), dw1 = zeros(F * E), dw3 = zeros(F * E), dffn = zeros(E);
  matmul_backward(io, ds.data(), dw2.data(), nullptr, dout.p(), s.data(), w2.p(), T, F, E, pool);
  ref::swiglu_backward(dg.data(), du.data(), ds.data(), g.data(), u.data(), T * F);
  matmul_backward(io, dhn.data(), dw1.data(), nullptr, dg.data(), hn.data(), w1.p(), T, E, F, pool);
  matmul_backward(io, dhn.data(), dw3.data(), nullptr, du.data(), hn.data(), w3.p(), T, E, F, pool);
  ref::rmsnorm_backward(dh.data(), dffn.data(), dhn.data(), h.data(), ffn_norm.p(), T, E, eps);
  Vec da = zeros(T * QD), dwo = zeros(E * QD);
  matmul_backward(io, da.data(), dwo.data(), nullptr, dh.data(), a.data(), wo.p(), T, QD, E, pool);
  Vec dq = zeros(T * QD), dk = zeros(T * KD), dv = zeros(T * KD);
  (io.cpu() ? hanul::cpu::attention_backward : ref::attention_backward)(
      dq.data(), dk.data(), dv.data(), da.data(), q.data(), T, k.data(), v.data(), T, n_head,
      n_head_kv, D, 0, scale, pool);
  ref::rope_backward(dq.data(), T, n_head, D, pos.data(), inv_freq.p(), layout);
  ref::rope_backward(dk.data(), T, n_head_kv, D, pos.data(), inv_freq.p(), layout);
  Vec dxn = zeros(T * E), dwq = zeros(QD * E), dwk = zeros(KD * E), dwv = zeros(KD * E),
      dattn = zeros(E);
  matmul_backward(io, dxn.data(), dwq.data(), nullptr, dq.data(), xn.data(), wq.p(), T, E, QD,
                  pool);
  matmul_backward(io, dxn.data(), dwk.data(), nullptr, dk.data(), xn.data(), wk.p(), T, E, KD,
                  pool);
  matmul_backward(io, dxn.data(), dwv.data(), nullptr, dv.data(), xn.data(), wv.p(), T, E, KD,
                  pool);
  Vec dx = dh;  // the first residual
  ref::rmsnorm_backward(dx.data(), dattn.data(), dxn.data(), x.p(), attn_norm.p(), T, E, eps);

  io.out("out", out, {T, E});
  io.out("dx", dx, {T, E});
  io.out("dattn_norm", dattn, {E});
  io.out("dwq", dwq, {QD, E});
  io.out("dwk", dwk, {KD, E});
  io.out("dwv", dwv, {KD, E});
  io.out("dwo", dwo, {E, QD});
  io.out("dffn_norm", dffn, {E});
  io.out("dw1", dw1, {F, E});
  io.out("dw3", dw3, {F, E});
  io.out("dw2", dw2, {E, F});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) die("usage: grad_tool OP DIR [key=value ...]");
  const std::string op = argv[1];
  std::map<std::string, std::string> args;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    if (eq == std::string::npos) die("argument '" + a + "' is not key=value");
    args[a.substr(0, eq)] = a.substr(eq + 1);
  }
  const Io io(argv[2], args);
  ThreadPool pool(static_cast<int>(io.num("threads", 2)));
  namespace ref = hanul::ref;

  if (op == "embedding") {
    Array emb = io.in("emb"), dout = io.in("dout");
    auto tokens = io.ints("tokens");
    Vec demb = zeros(emb.dim(0) * emb.dim(1));
    ref::embedding_backward(demb.data(), dout.p(), tokens.data(),
                            static_cast<int64_t>(tokens.size()), emb.dim(1));
    io.out("demb", demb, emb.shape);
  } else if (op == "rmsnorm") {
    Array x = io.in("x"), w = io.in("w"), dout = io.in("dout");
    Vec dx = zeros(x.dim(0) * x.dim(1)), dw = zeros(w.dim(0));
    ref::rmsnorm_backward(dx.data(), dw.data(), dout.p(), x.p(), w.p(), x.dim(0), x.dim(1),
                          static_cast<float>(io.num("eps", 1e-5)));
    io.out("dx", dx, x.shape);
    io.out("dw", dw, w.shape);
  } else if (op == "rope") {
    Array dout = io.in("dout"), inv_freq = io.in("inv_freq");
    auto pos = io.ints("positions");
    const auto layout = io.str("layout", "halves") == "pairs" ? hanul::RopeLayout::kPairs
                                                              : hanul::RopeLayout::kHalves;
    ref::rope_backward(dout.p(), dout.dim(0), static_cast<int>(dout.dim(1)),
                       static_cast<int>(dout.dim(2)), pos.data(), inv_freq.p(), layout);
    io.out("dx", dout.data, dout.shape);
  } else if (op == "swiglu") {
    Array gate = io.in("gate"), up = io.in("up"), dout = io.in("dout");
    const int64_t n = static_cast<int64_t>(gate.data.size());
    Vec dg = zeros(n), du = zeros(n);
    ref::swiglu_backward(dg.data(), du.data(), dout.p(), gate.p(), up.p(), n);
    io.out("dgate", dg, gate.shape);
    io.out("dup", du, up.shape);
  } else if (op == "matmul") {
    Array x = io.in("x"), w = io.in("w"), b = io.in("b"), dy = io.in("dy");
    const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(0);
    Vec dx = zeros(m * k), dw = zeros(n * k), db = zeros(n);
    matmul_backward(io, dx.data(), dw.data(), db.data(), dy.p(), x.p(), w.p(), m, k, n, &pool);
    io.out("dx", dx, x.shape);
    io.out("dw", dw, w.shape);
    io.out("db", db, b.shape);
  } else if (op == "attention") {
    Array q = io.in("q"), k = io.in("k"), v = io.in("v"), dout = io.in("dout");
    Vec dq = zeros(static_cast<int64_t>(q.data.size())),
        dk = zeros(static_cast<int64_t>(k.data.size()));
    Vec dv = zeros(static_cast<int64_t>(v.data.size()));
    (io.cpu() ? hanul::cpu::attention_backward : ref::attention_backward)(
        dq.data(), dk.data(), dv.data(), dout.p(), q.p(), q.dim(0), k.p(), v.p(), k.dim(0),
        static_cast<int>(io.num("n_head", 0)), static_cast<int>(io.num("n_head_kv", 0)),
        static_cast<int>(q.dim(2)), static_cast<int64_t>(io.num("pos0", 0)),
        static_cast<float>(io.num("scale", 1.0)), &pool);
    io.out("dq", dq, q.shape);
    io.out("dk", dk, k.shape);
    io.out("dv", dv, v.shape);
  } else if (op == "cross_entropy") {
    Array logits = io.in("logits");
    auto targets = io.ints("targets");
    Vec dl = zeros(logits.dim(0) * logits.dim(1));
    const float loss = ref::cross_entropy(dl.data(), logits.p(), targets.data(), logits.dim(0),
                                          logits.dim(1), static_cast<float>(io.num("dloss", 1.0)));
    io.out("loss", Vec{loss}, {1});
    io.out("dlogits", dl, logits.shape);
  } else if (op == "adamw") {
    Array p = io.in("p"), grads = io.in("grads");
    const int64_t n = p.dim(0), steps = grads.dim(0);
    hanul::AdamWParams hp;
    hp.lr = io.num("lr", hp.lr);
    hp.beta1 = io.num("beta1", hp.beta1);
    hp.beta2 = io.num("beta2", hp.beta2);
    hp.eps = io.num("eps", hp.eps);
    hp.weight_decay = io.num("wd", hp.weight_decay);
    Vec m = zeros(n), v = zeros(n);
    for (int64_t s = 0; s < steps; ++s)
      ref::adamw(p.p(), grads.p() + s * n, m.data(), v.data(), n, hp, s + 1);
    io.out("p", p.data, p.shape);
    io.out("m", m, p.shape);
    io.out("v", v, p.shape);
  } else if (op == "clip") {
    std::vector<Array> g = {io.in("g0"), io.in("g1"), io.in("g2")};
    std::vector<hanul::GradSpan> spans;
    for (auto& a : g) spans.push_back({a.p(), static_cast<int64_t>(a.data.size())});
    const float norm = ref::clip_grad_norm(spans.data(), static_cast<int>(spans.size()),
                                           static_cast<float>(io.num("max_norm", 1.0)));
    io.out("norm", Vec{norm}, {1});
    for (size_t i = 0; i < g.size(); ++i) io.out("g" + std::to_string(i), g[i].data, g[i].shape);
  } else if (op == "block") {
    block(io, &pool);
  } else {
    die("unknown op '" + op + "'");
  }
  return 0;
}
