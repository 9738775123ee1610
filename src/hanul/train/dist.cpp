#include "hanul/train/dist.h"

#include <fmt/core.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <type_traits>

#if HANUL_WITH_MPI
// The C API only: from C++, Open MPI's and MPICH's mpi.h would also pull in the MPI-2 C++ bindings
// (removed in MPI-3), which need libmpi_cxx at link time.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace hanul {
namespace {

// Elements per MPI call. MPI counts are int, so INT_MAX is the hard limit; a smaller chunk also
// bounds the scratch buffer MPI_Reduce allocates (one chunk) and costs nothing at these sizes.
// HANUL_MPI_CHUNK_ELEMS overrides it so a test can drive the chunking with a small array.
constexpr int64_t kDefaultChunk = int64_t{1} << 26;

int64_t chunk_from_env() {
  const char* s = std::getenv("HANUL_MPI_CHUNK_ELEMS");
  if (s == nullptr || *s == '\0') return kDefaultChunk;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (*end != '\0' || v < 1) return kDefaultChunk;
  return std::min<int64_t>(v, INT_MAX);
}

// The variable that names the launcher, if any: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE,
// MPICH/Hydra and Slurm's PMI set PMI_SIZE, PMIx launchers (Open MPI 4+, Slurm --mpi=pmix)
// PMIX_RANK.
const char* launcher_variable() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name) != nullptr) return name;
  return nullptr;
}

#if HANUL_WITH_MPI
std::string mpi_error(const char* what, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  return fmt::format("mpi: {} failed: {} (error {})", what, std::string(text, len), code);
}

// MPI_Finalize is collective: it waits for every rank. A rank that exits on an error would then
// wait for ranks that wait for it in their next collective, so only a clean exit finalizes; any
// other exit status aborts the job, which tells mpirun to end the other ranks.
void finalize_at_exit(int status, void*) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (status == 0) {
    MPI_Finalize();
  } else {
    MPI_Abort(MPI_COMM_WORLD, status);
  }
}

template <class T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>)
    return MPI_FLOAT;
  else
    return MPI_DOUBLE;
}
#endif

}  // namespace

bool Communicator::built_with_mpi() {
#if HANUL_WITH_MPI
  return true;
#else
  return false;
#endif
}

Result<Communicator*> Communicator::world() {
  // Decided once, on the first call (a function-local static is initialised exactly once, C++11).
  static Result<Communicator*> world = []() -> Result<Communicator*> {
    static Communicator comm;
    comm.chunk_ = chunk_from_env();
    const char* launcher = launcher_variable();
    if (launcher == nullptr) return &comm;  // not under mpirun: a group of one
#if HANUL_WITH_MPI
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      if (rc != MPI_SUCCESS) return Error{mpi_error("MPI_Init_thread", rc)};
#ifdef __GLIBC__
      on_exit(finalize_at_exit, nullptr);  // glibc: the handler sees the exit status
#else
      std::atexit([] { finalize_at_exit(0, nullptr); });
#endif
      if (provided < MPI_THREAD_FUNNELED)
        return Error{fmt::format(
            "mpi: the MPI library gives thread level {} but hanul needs MPI_THREAD_FUNNELED ({})",
            provided, MPI_THREAD_FUNNELED)};
    }
    // Errors come back as codes and then as a Status, not as MPI's default abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &comm.rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &comm.size_);
    comm.mpi_ = true;
    return &comm;
#else
    return Error{fmt::format(
        "mpi: this process was started by mpirun/mpiexec ({}={}) but hanul was built without MPI; "
        "install OpenMPI (libopenmpi-dev openmpi-bin, scripts/setup does) and rebuild with "
        "-DHANUL_WITH_MPI=ON, or run without mpirun",
        launcher, std::getenv(launcher))};
#endif
  }();
  return world;
}

template <class T>
Status Communicator::allreduce_impl(T* data, int64_t n) {
  if (n < 0) return Error{fmt::format("mpi: allreduce_sum of {} elements", n)};
  if (n > 0 && data == nullptr) return Error{"mpi: allreduce_sum of a null array"};
  if (!mpi_ || size_ == 1 || n == 0) return {};
#if HANUL_WITH_MPI
  for (int64_t at = 0; at < n; at += chunk_) {
    const int count = static_cast<int>(std::min(chunk_, n - at));
    T* p = data + at;
    if (size_ == 2) {
      // Each element of the result is one IEEE addition of the two ranks' values, and a + b ==
      // b + a bit for bit (IEEE 754 §6.3, NaN payloads aside), so both ranks compute the same bits
      // whatever the algorithm; and one allreduce moves less than a reduce plus a broadcast.
      const int rc = MPI_Allreduce(MPI_IN_PLACE, p, count, mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return Error{mpi_error("MPI_Allreduce", rc)};
    } else {
      // With three or more ranks MPI_Allreduce may add in a different order on each rank (MPI 4.0
      // §6.9.1 only advises the same result everywhere), and float addition is not associative:
      // sum on rank 0, then give everyone rank 0's bits.
      const int rc =
          rank_ == 0 ? MPI_Reduce(MPI_IN_PLACE, p, count, mpi_type<T>(), MPI_SUM, 0, MPI_COMM_WORLD)
                     : MPI_Reduce(p, nullptr, count, mpi_type<T>(), MPI_SUM, 0, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return Error{mpi_error("MPI_Reduce", rc)};
      const int rc2 = MPI_Bcast(p, count, mpi_type<T>(), 0, MPI_COMM_WORLD);
      if (rc2 != MPI_SUCCESS) return Error{mpi_error("MPI_Bcast", rc2)};
    }
  }
#endif
  return {};
}

Status Communicator::allreduce_sum(float* data, int64_t n) { return allreduce_impl(data, n); }
Status Communicator::allreduce_sum(double* data, int64_t n) { return allreduce_impl(data, n); }

Status Communicator::broadcast(void* data, int64_t bytes, int root) {
  if (root < 0 || root >= size_)
    return Error{fmt::format("mpi: broadcast from rank {} in a group of {}", root, size_)};
  if (bytes < 0) return Error{fmt::format("mpi: broadcast of {} bytes", bytes)};
  if (bytes > 0 && data == nullptr) return Error{"mpi: broadcast of a null buffer"};
  if (!mpi_ || size_ == 1 || bytes == 0) return {};
#if HANUL_WITH_MPI
  auto* p = static_cast<unsigned char*>(data);
  for (int64_t at = 0; at < bytes; at += chunk_) {
    const int count = static_cast<int>(std::min(chunk_, bytes - at));
    const int rc = MPI_Bcast(p + at, count, MPI_BYTE, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return Error{mpi_error("MPI_Bcast", rc)};
  }
#endif
  return {};
}

Status Communicator::barrier() {
  if (!mpi_ || size_ == 1) return {};
#if HANUL_WITH_MPI
  const int rc = MPI_Barrier(MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return Error{mpi_error("MPI_Barrier", rc)};
#endif
  return {};
}

}  // namespace hanul
