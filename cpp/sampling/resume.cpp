#include "sampling/resume.h"

#include <string>

#include "common/errors.h"
#include "sampling/epoch_plan.h"

namespace lrs::sampling {

int64_t batches_per_epoch(int64_t samples_per_epoch, int64_t batch_size, bool drop_last) {
  if (batch_size < 1) {
    throw InvalidInput("resume: batch_size must be >= 1, got " + std::to_string(batch_size));
  }
  if (samples_per_epoch < 0) {
    throw InvalidInput("resume: samples_per_epoch must be >= 0, got " +
                       std::to_string(samples_per_epoch));
  }
  const int64_t full = samples_per_epoch / batch_size;
  return drop_last || samples_per_epoch % batch_size == 0 ? full : full + 1;
}

ResumePoint resume_point(int64_t batches_consumed, int64_t batch_size, int64_t num_workers,
                         int64_t worker, int64_t samples_per_epoch, bool drop_last) {
  // Note [Resume arithmetic]
  if (batches_consumed < 0) {
    throw InvalidInput("resume: batches_consumed must be >= 0, got " +
                       std::to_string(batches_consumed));
  }
  const int64_t workers = workers_per_rank(worker, num_workers);
  const int64_t nb = batches_per_epoch(samples_per_epoch, batch_size, drop_last);
  if (nb == 0) {
    if (batches_consumed > 0) {
      throw InvalidInput("resume: batches_consumed=" + std::to_string(batches_consumed) +
                         " but an epoch of " + std::to_string(samples_per_epoch) +
                         " samples per worker yields no batch of " + std::to_string(batch_size) +
                         (drop_last ? " (drop_last)" : ""));
    }
    return {};
  }
  const int64_t cw = batches_consumed / workers + (batches_consumed % workers > worker ? 1 : 0);
  return {cw / nb, (cw % nb) * batch_size};
}

}  // namespace lrs::sampling
