// The process group of data-parallel training (issue 5): every rank holds the
// same weights, computes gradients on its own shard of the batch, and sums them
// with allreduce_sum before the optimizer step. Over MPI when hanul is built
// with it (HANUL_WITH_MPI) and the process was started by mpirun/mpiexec;
// otherwise a group of one that needs no MPI at all, so the plain build and its
// tests always work (STYLE.md habit 14).
//
// Only the thread that called world() may call the other methods
// (MPI_THREAD_FUNNELED): the thread pool computes, the main thread talks.
#pragma once

#include <cstdint>

#include "hanul/base/result.h"

namespace hanul {

class Communicator {
 public:
  // The process group of this process: MPI_COMM_WORLD when hanul was built with MPI and this
  // process was launched by mpirun/mpiexec (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the
  // environment), else a group of one that needs no MPI at all. The first call initialises MPI
  // (MPI_Init_thread, FUNNELED); MPI_Finalize runs at process exit. Launched by mpirun but built
  // without MPI: an error that says so. Later calls return the first call's answer.
  //
  // At exit (glibc on_exit) a status of 0 runs MPI_Finalize, any other status MPI_Abort:
  // MPI_Finalize waits for every rank, so a rank that gives up on an error would otherwise hang the
  // others.
  static Result<Communicator*> world();
  static bool built_with_mpi();

  int rank() const { return rank_; }
  int size() const { return size_; }

  // In-place element-wise sum over all ranks. Every rank ends with the SAME bits (weights must stay
  // identical across ranks). n may exceed INT_MAX (it goes in chunks). Size 1: a no-op.
  Status allreduce_sum(float* data, int64_t n);
  Status allreduce_sum(double* data, int64_t n);
  // Copies `bytes` bytes at `data` on rank `root` to `data` on every rank.
  Status broadcast(void* data, int64_t bytes, int root = 0);
  // Returns once every rank has called it.
  Status barrier();

  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

 private:
  Communicator() = default;
  template <class T>
  Status allreduce_impl(T* data, int64_t n);

  int rank_ = 0;
  int size_ = 1;
  bool mpi_ = false;   // MPI_COMM_WORLD; false: the group of one
  int64_t chunk_ = 0;  // elements per MPI call (<= INT_MAX)
};

}  // namespace hanul
