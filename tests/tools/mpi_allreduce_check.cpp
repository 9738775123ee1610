// Checks train/dist.h across real MPI ranks; tests/mpi.cmake runs it as
// `mpirun -np 2 mpi_allreduce_check`. Each rank fills arrays from a generator
// seeded by its rank, allreduces them, and compares the result with the sum it
// computes itself from every rank's seed; then checks that all ranks hold the
// same bits (rank 0's hash, broadcast), and checks broadcast and barrier.
// Every rank takes part in every collective whatever it found, and the ranks
// agree on the verdict at the end, so a failure ends the job instead of
// hanging it. Exit 0 only when every check holds on every rank.
//
//   mpi_allreduce_check [--ranks N]     N: the group size to expect (default 2)
//   mpi_allreduce_check --time N        also time allreduce_sum of N floats
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "hanul/train/dist.h"

namespace hanul {
namespace {

// splitmix64 (Steele, Lea & Flood 2014): a seeded stream that every rank can replay for any seed.
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-52 - 1.0; }
};

uint64_t seed_of(int rank, int64_t n) { return 1000003ull * static_cast<uint64_t>(rank + 1) + n; }

template <class T>
std::vector<T> fill(int rank, int64_t n) {
  SplitMix g{seed_of(rank, n)};
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(g.uniform() * 8.0);
  return v;
}

// FNV-1a over the bytes: equal hashes for equal bits (and, in practice, only for them).
uint64_t fnv1a(const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

struct Checker {
  Communicator* comm;
  int failures = 0;

  void fail(const std::string& what) {
    ++failures;
    fmt::print(stderr, "rank {}: FAIL {}\n", comm->rank(), what);
  }
  void check_status(const Status& s, const char* what) {
    if (!s.ok()) fail(fmt::format("{}: {}", what, s.message()));
  }

  // Sum of n values per rank; with two ranks the expected sum is one IEEE addition, exactly what
  // any MPI algorithm computes, so it must match bit for bit. With more ranks the order of the
  // additions is MPI's choice: compare within a rounding bound.
  template <class T>
  void allreduce(int64_t n) {
    const int size = comm->size();
    std::vector<T> data = fill<T>(comm->rank(), n);
    std::vector<T> want(static_cast<size_t>(n), T(0));
    for (int r = 0; r < size; ++r) {
      const std::vector<T> part = fill<T>(r, n);
      for (int64_t i = 0; i < n; ++i) want[i] += part[i];
    }
    check_status(comm->allreduce_sum(data.data(), n), "allreduce_sum");
    const char* type = sizeof(T) == 4 ? "float" : "double";
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; ++i) {
      const bool ok = size == 2 ? std::memcmp(&data[i], &want[i], sizeof(T)) == 0
                                : std::fabs(data[i] - want[i]) <=
                                      8.0 * size * size * std::numeric_limits<T>::epsilon();
      if (!ok && bad++ == 0) first = i;
    }
    if (bad)
      fail(
          fmt::format("allreduce_sum<{}> n={}: {} of {} elements off the local sum, first [{}] "
                      "= {} want {}",
                      type, n, bad, n, first, data[first], want[first]));

    // Same bits on every rank: rank 0's hash against each rank's own.
    const uint64_t mine = fnv1a(data.data(), data.size() * sizeof(T));
    uint64_t root = mine;
    check_status(comm->broadcast(&root, sizeof root, 0), "broadcast of the hash");
    if (root != mine)
      fail(fmt::format("allreduce_sum<{}> n={}: rank 0 holds hash {:016x}, this rank {:016x}", type,
                       n, root, mine));
  }

  void broadcast(int64_t bytes, int root) {
    std::vector<unsigned char> buf(static_cast<size_t>(bytes));
    SplitMix g{seed_of(root, bytes) ^ 0xb5ull};
    std::vector<unsigned char> want(buf.size());
    for (auto& b : want) b = static_cast<unsigned char>(g.next());
    if (comm->rank() == root) buf = want;
    check_status(comm->broadcast(buf.data(), bytes, root), "broadcast");
    if (buf != want) fail(fmt::format("broadcast of {} bytes from rank {} differs", bytes, root));
  }

  // No rank may leave a barrier before the last one has entered it.
  void barrier() {
    using clock = std::chrono::steady_clock;
    // Rank size-1 enters late: nobody may leave before its entry time.
    if (comm->rank() == comm->size() - 1)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const double entered = std::chrono::duration<double>(clock::now().time_since_epoch()).count();
    check_status(comm->barrier(), "barrier");
    const double left = std::chrono::duration<double>(clock::now().time_since_epoch()).count();
    double late_entry = entered;
    check_status(comm->broadcast(&late_entry, sizeof late_entry, comm->size() - 1),
                 "broadcast of the entry time");
    // steady_clock is CLOCK_MONOTONIC: one clock for every process on this machine.
    if (left < late_entry)
      fail(fmt::format("barrier: left at {:.6f} before rank {} entered at {:.6f}", left,
                       comm->size() - 1, late_entry));
  }

  void argument_errors() {
    float x = 1;
    if (comm->allreduce_sum(&x, -1).ok()) fail("allreduce_sum accepted n = -1");
    if (comm->broadcast(&x, 4, comm->size()).ok()) fail("broadcast accepted root = size");
  }
};

int run(int argc, char** argv) {
  int want_ranks = 2;
  int64_t time_n = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--ranks" && i + 1 < argc) {
      want_ranks = std::atoi(argv[++i]);
    } else if (a == "--time" && i + 1 < argc) {
      time_n = std::atoll(argv[++i]);
    } else {
      fmt::print(stderr, "usage: mpi_allreduce_check [--ranks N] [--time N_FLOATS]\n");
      return 2;
    }
  }

  Result<Communicator*> world = Communicator::world();
  if (!world.ok()) {
    fmt::print(stderr, "mpi_allreduce_check: {}\n", world.message());
    return 1;
  }
  Communicator* comm = *world;
  if (comm->size() != want_ranks) {
    fmt::print(
        stderr,
        "mpi_allreduce_check: FAIL: a group of {} ranks, want {} (hanul built with MPI: {}); "
        "run it as `mpirun -np {} mpi_allreduce_check` from a build configured with OpenMPI "
        "installed (scripts/setup installs libopenmpi-dev openmpi-bin)\n",
        comm->size(), want_ranks, Communicator::built_with_mpi() ? "yes" : "no", want_ranks);
    return 1;
  }

  Checker c{comm};
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
    c.allreduce<float>(n);
    c.allreduce<double>(n);
  }
  c.allreduce<float>(0);
  for (int root = 0; root < comm->size(); ++root) {
    c.broadcast(1, root);
    c.broadcast(1000003, root);
  }
  c.barrier();
  c.argument_errors();

  if (time_n > 0) {
    std::vector<float> g(static_cast<size_t>(time_n), 1e-3f);
    std::vector<double> ms;
    for (int it = 0; it < 6; ++it) {
      c.check_status(comm->barrier(), "barrier");
      const auto t0 = std::chrono::steady_clock::now();
      c.check_status(comm->allreduce_sum(g.data(), time_n), "allreduce_sum");
      const auto t1 = std::chrono::steady_clock::now();
      if (it > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    double best = ms[0], sum = 0;
    for (double m : ms) best = std::min(best, m), sum += m;
    if (comm->rank() == 0)
      fmt::print("allreduce_sum of {} floats over {} ranks: best {:.1f} ms, mean {:.1f} ms\n",
                 time_n, comm->size(), best, sum / static_cast<double>(ms.size()));
  }

  // The verdict of every rank, summed: all pass or all fail, and rank 0 says so.
  double failed = c.failures > 0 ? 1 : 0;
  c.check_status(comm->allreduce_sum(&failed, 1), "allreduce_sum of the verdict");
  if (comm->rank() == 0)
    fmt::print("mpi_allreduce_check: {} ranks, {}\n", comm->size(),
               failed == 0 ? "all checks hold" : fmt::format("{} rank(s) FAILED", failed));
  return failed == 0 && c.failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace hanul

int main(int argc, char** argv) { return hanul::run(argc, argv); }
