// Contracts of cpp/sampling/resume.h: resume_point equals a brute-force simulation of a torch
// DataLoader over an IterableDataset (per-worker batching, in-order round robin, exhausted
// workers skipped, a new iteration per epoch), with and without drop_last, across epochs.
#include "sampling/resume.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common/errors.h"
#include "dataloader_sim.h"

namespace lrs::sampling {
namespace {

using test::Batch;
using test::simulate_dataloader;

TEST(Resume, EqualsDataLoaderSimulationAcrossEpochBoundaries) {
  for (int64_t num_workers : {0, 1, 2, 3, 4}) {
    const int64_t workers = std::max<int64_t>(num_workers, 1);
    for (int64_t n : {1, 2, 5, 8, 13}) {
      for (int64_t b : {1, 3, 4, 8, 20}) {
        for (bool drop_last : {false, true}) {
          const std::vector<Batch> run = simulate_dataloader(n, b, workers, drop_last, 4);
          if (run.empty()) continue;  // covered by NoBatchEver
          // Stop after B batches: each worker resumes at its first batch not yet consumed.
          for (size_t consumed = 0; consumed + 1 < run.size(); ++consumed) {
            for (int64_t w = 0; w < workers; ++w) {
              const auto it = std::find_if(run.begin() + static_cast<std::ptrdiff_t>(consumed), run.end(),
                                           [w](const Batch& x) { return x.worker == w; });
              if (it == run.end()) continue;  // beyond the simulated epochs
              const ResumePoint got =
                  resume_point(static_cast<int64_t>(consumed), b, num_workers, w, n, drop_last);
              EXPECT_EQ(got, (ResumePoint{it->epoch, it->first_sample}))
                  << "B=" << consumed << " b=" << b << " W=" << num_workers << " w=" << w << " n=" << n
                  << " drop_last=" << drop_last;
            }
          }
          EXPECT_EQ(static_cast<int64_t>(run.size()), 4 * workers * batches_per_epoch(n, b, drop_last));
        }
      }
    }
  }
}

TEST(Resume, NoBatchEver) {
  EXPECT_EQ(batches_per_epoch(0, 4, false), 0);
  EXPECT_EQ(batches_per_epoch(3, 4, true), 0);
  EXPECT_EQ(resume_point(0, 4, 2, 1, 3, true), (ResumePoint{0, 0}));
  EXPECT_THROW(resume_point(1, 4, 2, 1, 3, true), InvalidInput);
  EXPECT_THROW(resume_point(5, 4, 0, 0, 0, false), InvalidInput);
}

TEST(Resume, LargeRunsAccountForEveryBatch) {
  // 10^12 + 5 batches over 8 workers: no replay, no overflow; the workers' positions add up to the
  // batches consumed and no two workers are more than one batch apart.
  const int64_t consumed = 1'000'000'000'005;
  const int64_t n = 1'000'001, b = 32, workers = 8;
  const int64_t per_epoch = batches_per_epoch(n, b, false);
  int64_t total = 0, most = 0, least = consumed;
  for (int64_t w = 0; w < workers; ++w) {
    const ResumePoint p = resume_point(consumed, b, workers, w, n, false);
    ASSERT_EQ(p.samples_to_skip % b, 0);
    ASSERT_LT(p.samples_to_skip, n);
    const int64_t batches = p.epoch * per_epoch + p.samples_to_skip / b;
    total += batches;
    most = std::max(most, batches);
    least = std::min(least, batches);
  }
  EXPECT_EQ(total, consumed);
  EXPECT_LE(most - least, 1);
}

TEST(Resume, RejectsBadArguments) {
  EXPECT_THROW(resume_point(-1, 4, 2, 0, 10, false), InvalidInput);
  EXPECT_THROW(resume_point(0, 0, 2, 0, 10, false), InvalidInput);
  EXPECT_THROW(resume_point(0, 4, -1, 0, 10, false), InvalidInput);
  EXPECT_THROW(resume_point(0, 4, 2, 2, 10, false), InvalidInput);
  EXPECT_THROW(resume_point(0, 4, 0, 1, 10, false), InvalidInput);
  EXPECT_THROW(resume_point(0, 4, 2, 0, -1, false), InvalidInput);
  try {
    resume_point(0, 4, 2, 5, 10, false);
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("worker"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lrs::sampling
