// Python bindings of the sampling layer: consumer ids, EpochPlan, ConsumerSchedule, resume
// arithmetic, elastic resume (ElasticPass) and delta windows. Sample indices cross as 1-D numpy arrays whose owner is a small
// bound holder of the C++ buffer (no copy, no raw new/delete). The GIL is released while a
// schedule draws or skips. Bindings convert types and nothing else.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/errors.h"
#include "sampling/consumer_schedule.h"
#include "sampling/elastic.h"
#include "sampling/epoch_plan.h"
#include "sampling/resume.h"
#include "sampling/window.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

namespace ls = lrs::sampling;

// A heap buffer handed to numpy: the ndarray's owner is the Python object that holds it.
template <typename T>
struct OwnedArray {
  explicit OwnedArray(size_t n) : data(std::make_unique<T[]>(n)), size(n) {}
  std::span<T> span() { return {data.get(), size}; }

  std::unique_ptr<T[]> data;
  size_t size = 0;
};

template <typename T>
using NumpyVector = nb::ndarray<nb::numpy, T, nb::ndim<1>, nb::c_contig>;

template <typename T>
NumpyVector<T> to_numpy(OwnedArray<T>&& array, size_t length) {
  T* data = array.data.get();
  const size_t shape[1] = {length};
  nb::object owner = nb::cast(std::move(array), nb::rv_policy::move);
  return NumpyVector<T>(data, 1, shape, owner);
}

using SegmentTuple = std::tuple<int64_t, int64_t, int64_t>;  // (episode_pos, begin, end)

std::vector<SegmentTuple> as_tuples(const std::vector<ls::Segment>& segments) {
  std::vector<SegmentTuple> out;
  out.reserve(segments.size());
  for (const ls::Segment& s : segments) out.emplace_back(s.episode_pos, s.begin, s.end);
  return out;
}

// (episode_pos, begin, end, frames): frames empty for the whole range [begin, end).
using PieceTuple = std::tuple<int64_t, int64_t, int64_t, std::vector<int64_t>>;

std::vector<PieceTuple> piece_tuples(const std::vector<ls::Piece>& pieces) {
  std::vector<PieceTuple> out;
  out.reserve(pieces.size());
  for (const ls::Piece& p : pieces) out.emplace_back(p.episode_pos, p.begin, p.end, p.frames);
  return out;
}

void bind_plan(nb::module_& m) {
  m.def("consumer_id", &ls::consumer_id, "rank"_a, "world_size"_a, "worker"_a, "num_workers"_a,
        "The consumer index rank * W + worker with W = max(num_workers, 1) workers per rank.\n"
        "Raises ValueError for an argument out of range.");

  nb::class_<ls::EpochPlan>(m, "EpochPlan",
                            "Which frames each consumer (rank x worker) reads per epoch: episodes permuted by\n"
                            "(seed, epoch), frames concatenated, consumer c takes the slice [c*n, (c+1)*n);\n"
                            "the remainder (< num_consumers frames) is dropped. Immutable, thread-safe.")
      .def(
          "__init__",
          [](ls::EpochPlan* self, std::vector<int64_t> episode_lengths, uint64_t seed, bool shuffle,
             int64_t num_consumers) {
            new (self) ls::EpochPlan(ls::PlanInputs{std::move(episode_lengths), seed, shuffle}, num_consumers);
          },
          "episode_lengths"_a, "seed"_a, "shuffle"_a, "num_consumers"_a,
          "Raises ValueError for an episode length < 1 or num_consumers < 1.")
      .def_prop_ro("total_frames", &ls::EpochPlan::total_frames, "Frames of all selected episodes (N).")
      .def_prop_ro("samples_per_consumer", &ls::EpochPlan::samples_per_consumer,
                   "Samples every consumer reads per epoch: N // num_consumers.")
      .def_prop_ro("dropped_per_epoch", &ls::EpochPlan::dropped_per_epoch,
                   "Frames no consumer reads in an epoch: N % num_consumers.")
      .def_prop_ro("num_consumers", &ls::EpochPlan::num_consumers)
      .def("episode_order", &ls::EpochPlan::episode_order, "epoch"_a,
           "Episode positions (indices into episode_lengths) in the epoch's order.")
      .def(
          "segments",
          [](const ls::EpochPlan& plan, int64_t epoch, int64_t consumer) {
            return as_tuples(plan.segments(epoch, consumer));
          },
          "epoch"_a, "consumer"_a,
          "The consumer's (episode_pos, begin, end) frame ranges for the epoch, in reading order.");
}

void bind_schedule(nb::module_& m) {
  nb::class_<OwnedArray<int64_t>>(m, "_Int64Buffer", "Owner of an int64 array's memory (internal).");
  nb::class_<OwnedArray<bool>>(m, "_BoolBuffer", "Owner of a bool array's memory (internal).");

  nb::class_<ls::ConsumerSchedule>(
      m, "ConsumerSchedule",
      "The samples (episode_pos, frame) one consumer reads in one epoch, drawn uniformly without\n"
      "replacement from a pool of at most pool_size episode segments (sequential when shuffle is\n"
      "False). Not thread-safe: drive one schedule from one thread.")
      .def(
          "__init__",
          [](ls::ConsumerSchedule* self, std::vector<int64_t> episode_lengths, uint64_t seed, bool shuffle,
             int64_t epoch, int64_t rank, int64_t world_size, int64_t worker, int64_t num_workers,
             int64_t pool_size) {
            new (self) ls::ConsumerSchedule(ls::PlanInputs{std::move(episode_lengths), seed, shuffle}, epoch, rank,
                                            world_size, worker, num_workers, pool_size);
          },
          "episode_lengths"_a, "seed"_a, "shuffle"_a, "epoch"_a, "rank"_a, "world_size"_a, "worker"_a,
          "num_workers"_a, "pool_size"_a,
          "Raises ValueError for bad lengths, epoch < 0, rank/worker out of range or pool_size < 1.")
      .def_prop_ro("total", &ls::ConsumerSchedule::total, "Samples this consumer reads in the epoch.")
      .def_prop_ro("emitted", &ls::ConsumerSchedule::emitted, "Samples drawn or skipped so far.")
      .def_prop_ro("remaining", &ls::ConsumerSchedule::remaining)
      .def_prop_ro("epoch", &ls::ConsumerSchedule::epoch)
      .def(
          "next",
          [](ls::ConsumerSchedule& s, int64_t max_samples) {
            if (max_samples < 0) {
              throw lrs::InvalidInput("consumer schedule: next(max_samples) needs max_samples >= 0, got " +
                                      std::to_string(max_samples));
            }
            const auto n = static_cast<size_t>(std::min(max_samples, s.remaining()));
            OwnedArray<int64_t> episode_pos(n), frame(n);
            int64_t drawn = 0;
            {
              nb::gil_scoped_release release;
              drawn = s.next(episode_pos.span(), frame.span());
            }
            const auto length = static_cast<size_t>(drawn);
            return std::make_pair(to_numpy(std::move(episode_pos), length), to_numpy(std::move(frame), length));
          },
          "max_samples"_a,
          "Up to max_samples next samples as (episode_pos, frame) int64 arrays; frame is the offset within\n"
          "the episode. Empty arrays once the epoch is done.")
      .def("skip", &ls::ConsumerSchedule::skip, "k"_a, nb::call_guard<nb::gil_scoped_release>(),
           "Fast-forward k samples exactly as drawing them would (pool, RNG, events), without output.\n"
           "Raises ValueError for k < 0 and IndexError past the end of the epoch.")
      .def(
          "pool", [](const ls::ConsumerSchedule& s) { return as_tuples(s.pool()); },
          "The admitted, not yet exhausted segments (episode_pos, begin, end), in admission order.")
      .def(
          "unconsumed", [](const ls::ConsumerSchedule& s) { return piece_tuples(s.unconsumed()); },
          "The frames not drawn yet as (episode_pos, begin, end, frames) pieces in plan order (frames\n"
          "empty: the whole range).")
      .def(
          "take_admitted", [](ls::ConsumerSchedule& s) { return as_tuples(s.take_admitted()); },
          "Segments admitted since the last call (load their rows before building the samples).")
      .def(
          "take_evicted", [](ls::ConsumerSchedule& s) { return as_tuples(s.take_evicted()); },
          "Segments evicted since the last call (their last sample was already returned).");
}

// (world_size, num_workers, batch_size, drop_last, batches): one phase of an interrupted epoch.
using PhaseTuple = std::tuple<int64_t, int64_t, int64_t, bool, int64_t>;

std::vector<ls::Phase> to_phases(const std::vector<PhaseTuple>& tuples) {
  std::vector<ls::Phase> out;
  out.reserve(tuples.size());
  for (const auto& [world_size, num_workers, batch_size, drop_last, batches] : tuples) {
    out.push_back(ls::Phase{world_size, num_workers, batch_size, drop_last, batches});
  }
  return out;
}

void bind_elastic(nb::module_& m) {
  m.def("pass_batches", &ls::pass_batches, "samples"_a, "batch_size"_a, "num_workers"_a, "drop_last"_a,
        "Batches each rank's DataLoader yields in a pass where every consumer has `samples` samples.");
  m.def("consumed_samples", &ls::consumed_samples, "batches"_a, "batch_size"_a, "num_workers"_a, "worker"_a,
        "samples"_a, "drop_last"_a,
        "Samples worker `worker` of a rank emitted into the first `batches` batches of such a pass\n"
        "(see Note [Elastic resume]).");
  m.def(
      "leftover_frames",
      [](int64_t total_frames, const std::vector<PhaseTuple>& phases) {
        return ls::leftover_frames(total_frames, to_phases(phases));
      },
      "total_frames"_a, "phases"_a,
      "Frames of an epoch left after `phases`, each (world_size, num_workers, batch_size, drop_last,\n"
      "batches): arithmetic only. Raises ValueError naming a bad phase.");

  nb::class_<ls::ElasticPass>(
      m, "ElasticPass",
      "The frames of an interrupted epoch that its earlier layouts (phases) did not emit, derived by\n"
      "replaying their schedules (no I/O), split equally among the consumers of a new layout.\n"
      "See Note [Elastic resume] in cpp/sampling/elastic.h. Immutable, thread-safe.")
      .def(
          "__init__",
          [](ls::ElasticPass* self, std::vector<int64_t> episode_lengths, uint64_t seed, bool shuffle,
             int64_t epoch, const std::vector<PhaseTuple>& phases, int64_t pool_size) {
            const std::vector<ls::Phase> parsed = to_phases(phases);
            nb::gil_scoped_release release;
            new (self) ls::ElasticPass(ls::PlanInputs{std::move(episode_lengths), seed, shuffle}, epoch, parsed,
                                       pool_size);
          },
          "episode_lengths"_a, "seed"_a, "shuffle"_a, "epoch"_a, "phases"_a, "pool_size"_a,
          "Replays `phases` (phases[0] = the epoch's regular pass), each (world_size, num_workers,\n"
          "batch_size, drop_last, batches consumed per rank); O(samples consumed), GIL released.\n"
          "Raises ValueError for bad lengths, epoch < 0, pool_size < 1 or a bad phase (naming it).")
      .def_prop_ro("epoch", &ls::ElasticPass::epoch)
      .def_prop_ro("phase", &ls::ElasticPass::phase, "This pass's index in the epoch: len(phases).")
      .def_prop_ro("leftover", &ls::ElasticPass::leftover, "Frames the phases left (L).")
      .def("samples_per_consumer", &ls::ElasticPass::samples_per_consumer, "num_consumers"_a,
           "Samples every new consumer emits in this pass: leftover // num_consumers.")
      .def(
          "pieces", [](const ls::ElasticPass& p) { return piece_tuples(p.pieces()); },
          "The leftover in canonical order as (episode_pos, begin, end, frames) with frames empty for\n"
          "the whole range [begin, end).")
      .def(
          "slice",
          [](const ls::ElasticPass& p, int64_t consumer, int64_t num_consumers) {
            return piece_tuples(p.slice(consumer, num_consumers));
          },
          "consumer"_a, "num_consumers"_a, "Consumer c's pieces: the leftover's slice [c*n', (c+1)*n').")
      .def(
          "schedule",
          [](const ls::ElasticPass& p, int64_t rank, int64_t world_size, int64_t worker, int64_t num_workers) {
            std::optional<ls::ConsumerSchedule> schedule;
            {
              nb::gil_scoped_release release;
              schedule.emplace(p.schedule(rank, world_size, worker, num_workers));
            }
            return std::move(*schedule);
          },
          "rank"_a, "world_size"_a, "worker"_a, "num_workers"_a,
          "The ConsumerSchedule of consumer (rank, worker) of the new layout over its slice.");
}

void bind_resume_and_windows(nb::module_& m) {
  m.def("batches_per_epoch", &ls::batches_per_epoch, "samples_per_epoch"_a, "batch_size"_a, "drop_last"_a,
        "Batches one worker yields per epoch from samples_per_epoch samples.");
  m.def(
      "resume_point",
      [](int64_t batches_consumed, int64_t batch_size, int64_t num_workers, int64_t worker,
         int64_t samples_per_epoch, bool drop_last) {
        const ls::ResumePoint p =
            ls::resume_point(batches_consumed, batch_size, num_workers, worker, samples_per_epoch, drop_last);
        return std::make_pair(p.epoch, p.samples_to_skip);
      },
      "batches_consumed"_a, "batch_size"_a, "num_workers"_a, "worker"_a, "samples_per_epoch"_a, "drop_last"_a,
      "(epoch, samples_to_skip) where `worker` resumes after batches_consumed batches of a DataLoader\n"
      "that takes batch k from worker k % max(num_workers, 1).");
  m.def(
      "window_indices",
      [](int64_t episode_length, int64_t frame,
         nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> offsets) {
        const size_t n = offsets.shape(0);
        OwnedArray<int64_t> indices(n);
        OwnedArray<bool> is_pad(n);
        ls::window_indices(episode_length, frame, std::span<const int64_t>(offsets.data(), n), indices.span(),
                           is_pad.span());
        return std::make_pair(to_numpy(std::move(indices), n), to_numpy(std::move(is_pad), n));
      },
      "episode_length"_a, "frame"_a, "offsets"_a,
      "(indices, is_pad) for integer frame offsets at `frame`: clamp(frame + offsets, 0, episode_length - 1)\n"
      "and whether frame + offset falls outside the episode (lerobot's `<key>_is_pad`).");
}

}  // namespace

void bind_sampling(nb::module_& m) {
  bind_plan(m);
  bind_schedule(m);
  bind_resume_and_windows(m);
  bind_elastic(m);
}
