// The single-process path of train/dist.h: not started by mpirun, world() is a
// group of one whatever the build, and its collectives leave the data as is.
// The multi-rank path runs under mpirun in tests/mpi.cmake (mpi_allreduce_2ranks).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "hanul/train/dist.h"

namespace hanul {
namespace {

bool under_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

Communicator* world() {
  Result<Communicator*> w = Communicator::world();
  EXPECT_TRUE(w.ok()) << w.message();
  return w.ok() ? *w : nullptr;
}

TEST(Communicator, SingleProcessIsRankZeroOfOne) {
  ASSERT_FALSE(under_mpirun()) << "run this test without mpirun";
  Communicator* comm = world();
  ASSERT_NE(comm, nullptr);
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  Result<Communicator*> again = Communicator::world();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, comm);  // one group per process
}

TEST(Communicator, AllreduceOfOneLeavesTheBits) {
  ASSERT_FALSE(under_mpirun());
  Communicator* comm = world();
  ASSERT_NE(comm, nullptr);
  std::vector<float> f = {1.5f,
                          -0.0f,
                          3e-39f,
                          std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          7.0f,
                          -2.25f};
  const std::vector<float> f0 = f;
  ASSERT_TRUE(comm->allreduce_sum(f.data(), static_cast<int64_t>(f.size())).ok());
  EXPECT_EQ(std::memcmp(f.data(), f0.data(), f.size() * sizeof(float)), 0);

  std::vector<double> d = {1.0 / 3, -0.0, 1e300, 5e-324};
  const std::vector<double> d0 = d;
  ASSERT_TRUE(comm->allreduce_sum(d.data(), static_cast<int64_t>(d.size())).ok());
  EXPECT_EQ(std::memcmp(d.data(), d0.data(), d.size() * sizeof(double)), 0);

  EXPECT_TRUE(comm->allreduce_sum(static_cast<float*>(nullptr), 0).ok());
}

TEST(Communicator, BroadcastAndBarrierOfOne) {
  ASSERT_FALSE(under_mpirun());
  Communicator* comm = world();
  ASSERT_NE(comm, nullptr);
  char buf[6] = "hanul";
  ASSERT_TRUE(comm->broadcast(buf, sizeof buf).ok());
  EXPECT_STREQ(buf, "hanul");
  EXPECT_TRUE(comm->barrier().ok());
}

TEST(Communicator, RefusesBadArguments) {
  ASSERT_FALSE(under_mpirun());
  Communicator* comm = world();
  ASSERT_NE(comm, nullptr);
  float x = 1;
  Status s = comm->allreduce_sum(&x, -1);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("-1"), std::string::npos) << s.message();
  EXPECT_FALSE(comm->allreduce_sum(static_cast<double*>(nullptr), 3).ok());
  s = comm->broadcast(&x, sizeof x, 1);  // rank 1 of a group of one
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rank 1 in a group of 1"), std::string::npos) << s.message();
  EXPECT_FALSE(comm->broadcast(&x, -4).ok());
  EXPECT_FALSE(comm->broadcast(nullptr, 4).ok());
}

// Started by mpirun but built without MPI: world() must say so rather than run
// as N independent single-rank jobs. The check needs a fresh process (world()
// decides once), so it runs as a death test in a re-executed copy of this binary.
TEST(CommunicatorDeathTest, LaunchedByMpirunWithoutMpiIsAnError) {
  if (Communicator::built_with_mpi())
    GTEST_SKIP() << "this build has MPI; the built-without-MPI error is checked in a build "
                    "configured with -DHANUL_WITH_MPI=OFF";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
        Result<Communicator*> w = Communicator::world();
        if (w.ok()) std::exit(0);
        fprintf(stderr, "%s\n", w.message().c_str());
        std::exit(3);
      },
      testing::ExitedWithCode(3), "\\(OMPI_COMM_WORLD_SIZE=2\\) but hanul was built without MPI");
}

}  // namespace
}  // namespace hanul
