// lrs_decode_bench: times decode of a dataset's videos through the C++ core only (no Python): the
// DecoderCache + CpuVideoDecoder path the dataset uses, one thread per worker, in two passes over
// the same files:
//   sequential  each worker reads consecutive frames (K per request) from a file's start: the
//               decoder's best case, one decoded frame per requested frame;
//   random      each request picks a random file and K random frames of it, as a dataset sample
//               with K cameras/timestamps would (--order uniform, with replacement), or the next K
//               frames of one shuffled list of every (file, frame) pair (--order epoch: each frame
//               once, as in a dataset's epoch over its pool; both passes then make as many requests
//               as the epoch has frames / K, at most --samples).
// --stash-bytes B gives the cache's decoders a frame stash of B bytes (Note [Frame stash]); each
// pass starts a new stash pass.
// The random pass is compared with its limit, the sequential rate / frames decoded per request
// (Note [Random access limit]).
//
//   lrs_decode_bench [--samples N] [--frames-per-sample K] [--workers W] [--threads T]
//                    [--cache C] [--seed S] [--dtype uint8|float32] [--mode both|random|sequential]
//                    [--order uniform|epoch] [--stash-bytes B] PATH...
// PATH is an mp4 file or a directory searched recursively for *.mp4 (e.g. a v3 dataset root).
// Prints one JSON object.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <libavutil/log.h>
}

#include "av/cpu_decoder.h"
#include "av/frame_stash.h"
#include "common/errors.h"
#include "decode/decoder_cache.h"

// Note [Random access limit]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// A random request must decode from the target's keyframe, so it decodes `decoded_per_requested`
// frames (1.5 on average at GOP 2). If every decoded frame cost the same, random access could reach
// sequential_rate / decoded_per_requested; that is `limit.frames_per_s` and `ratio_to_limit`. Frames
// do not cost the same: at small GOPs a keyframe is many times larger and slower than the frames
// between keyframes, and random access decodes a keyframe for every request while a sequential read
// decodes one per GOP. `limit.frame_mix` therefore prices the random pass's own mix of decoded
// frames (keyframes, other frames, conversions) at the sequential pass's measured cost per kind:
// the work random access cannot avoid. Its ratio says what seeking, flushing and bookkeeping cost.

namespace {

struct Options {
  int64_t samples = 400;
  int frames_per_sample = 1;
  int workers = 1;
  int threads = 1;
  int64_t cache = 16;
  uint64_t seed = 0;
  lrs::PixelType dtype = lrs::PixelType::kUInt8;
  std::string mode = "both";
  std::string order = "uniform";
  int64_t stash_bytes = 0;  // 0: no frame stash
  std::vector<std::string> paths;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "lrs_decode_bench: " << why
            << "\nusage: lrs_decode_bench [--samples N] [--frames-per-sample K] [--workers W] [--threads T]"
               " [--cache C] [--seed S] [--dtype uint8|float32] [--mode both|random|sequential]"
               " [--order uniform|epoch] [--stash-bytes B] PATH...\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value for " + arg);
      return argv[++i];
    };
    try {
      if (arg == "--samples") o.samples = std::stoll(value());
      else if (arg == "--frames-per-sample") o.frames_per_sample = std::stoi(value());
      else if (arg == "--workers") o.workers = std::stoi(value());
      else if (arg == "--threads") o.threads = std::stoi(value());
      else if (arg == "--cache") o.cache = std::stoll(value());
      else if (arg == "--seed") o.seed = std::stoull(value());
      else if (arg == "--mode") o.mode = value();
      else if (arg == "--order") o.order = value();
      else if (arg == "--stash-bytes") o.stash_bytes = std::stoll(value());
      else if (arg == "--dtype") {
        const std::string d = value();
        if (d != "uint8" && d != "float32") usage("--dtype must be uint8 or float32");
        o.dtype = d == "float32" ? lrs::PixelType::kFloat32 : lrs::PixelType::kUInt8;
      } else if (arg.starts_with("--")) usage("unknown option " + arg);
      else o.paths.push_back(arg);
    } catch (const std::logic_error&) {
      usage("bad value for " + arg);
    }
  }
  if (o.paths.empty()) usage("no PATH given");
  if (o.samples < 1 || o.frames_per_sample < 1 || o.workers < 1 || o.threads < 0 || o.cache < 1) {
    usage("counts must be positive");
  }
  if (o.mode != "both" && o.mode != "random" && o.mode != "sequential") usage("--mode must be both, random or sequential");
  if (o.order != "uniform" && o.order != "epoch") usage("--order must be uniform or epoch");
  if (o.stash_bytes < 0) usage("--stash-bytes must be >= 0");
  return o;
}

std::vector<std::string> find_videos(const std::vector<std::string>& roots) {
  std::vector<std::string> out;
  for (const auto& root : roots) {
    if (std::filesystem::is_directory(root)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        if (entry.is_regular_file() && entry.path().extension() == ".mp4") out.push_back(entry.path().string());
      }
    } else {
      out.push_back(root);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct PassResult {
  int64_t requests = 0;
  int64_t frames = 0;
  double seconds = 0;      // wall
  double cpu_seconds = 0;  // summed over the worker threads
  lrs::DecoderCacheStats cache;
  int64_t stash_peak_bytes = 0;

  double frames_per_s() const { return frames / seconds; }
  double frames_per_cpu_s() const { return frames / cpu_seconds; }
  double per_requested(int64_t count) const { return frames ? static_cast<double>(count) / frames : 0.0; }
  // Mean seconds per frame of a kind from this pass's decoder timers.
  double keyframe_s() const { return ratio(cache.decoder.keyframe_decode_ns, cache.decoder.keyframes_decoded); }
  double other_frame_s() const {
    return ratio(cache.decoder.decode_ns - cache.decoder.keyframe_decode_ns,
                 cache.decoder.frames_decoded - cache.decoder.keyframes_decoded);
  }
  double convert_s() const { return ratio(cache.decoder.convert_ns, cache.decoder.frames_converted); }
  static double ratio(int64_t ns, int64_t count) { return count ? static_cast<double>(ns) * 1e-9 / count : 0.0; }
};

// Runs `workers` threads; each calls next_request(worker, gen, request) until it returns false and
// decodes the request (path index + timestamps) through a fresh cache. Decoders are opened (one
// request each) before the clock starts.
PassResult run_pass(const Options& o, const std::vector<std::string>& files,
                    const std::function<bool(int, std::mt19937_64&, size_t&, std::vector<double>&)>& next_request,
                    const std::vector<std::vector<double>>& times) {
  auto stash = o.stash_bytes > 0 ? std::make_shared<lrs::av::FrameStashBudget>(o.stash_bytes) : nullptr;
  lrs::DecoderCache cache(o.cache, [&](const lrs::VideoSource& source) {
    return std::make_unique<lrs::av::CpuVideoDecoder>(source, lrs::av::CpuDecoderOptions{o.threads, stash});
  });
  for (size_t f = 0; f < files.size() && static_cast<int64_t>(f) < o.cache; ++f) {
    cache.get_frames_at(files[f], std::vector<double>{times[f].front()}, 1e-4, o.dtype);
  }
  if (stash) stash->begin_pass();  // the warm-up requests are not part of the pass
  const lrs::DecoderStats warm = cache.stats().decoder;
  std::atomic<int64_t> requests = 0;
  std::atomic<int64_t> frames = 0;
  std::vector<double> cpu(static_cast<size_t>(o.workers), 0.0);
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  for (int w = 0; w < o.workers; ++w) {
    workers.emplace_back([&, w] {
      const double cpu_start = thread_cpu_seconds();
      std::mt19937_64 gen(o.seed * 1000003 + static_cast<uint64_t>(w));
      size_t file = 0;
      std::vector<double> request;
      while (next_request(w, gen, file, request)) {
        frames += cache.get_frames_at(files[file], request, 1e-4, o.dtype).num_frames;
        ++requests;
      }
      cpu[static_cast<size_t>(w)] = thread_cpu_seconds() - cpu_start;
    });
  }
  for (auto& t : workers) t.join();
  PassResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (double c : cpu) r.cpu_seconds += c;
  r.requests = requests.load();
  r.frames = frames.load();
  r.cache = cache.stats();
  r.cache.decoder -= warm;
  r.stash_peak_bytes = stash ? stash->peak_bytes() : 0;
  return r;
}

std::string pass_json(const PassResult& r) {
  const lrs::DecoderStats& d = r.cache.decoder;
  std::ostringstream out;
  out.precision(6);
  out << "{\"requests\": " << r.requests << ", \"frames\": " << r.frames << ", \"seconds\": " << r.seconds
      << ", \"cpu_seconds\": " << r.cpu_seconds << ", \"frames_per_s\": " << r.frames_per_s()
      << ", \"frames_per_cpu_s\": " << r.frames_per_cpu_s()
      << ", \"decoded_per_requested\": " << r.per_requested(d.frames_decoded)
      << ", \"keyframes_per_requested\": " << r.per_requested(d.keyframes_decoded)
      << ", \"converted_per_requested\": " << r.per_requested(d.frames_converted)
      << ", \"seeks_per_requested\": " << r.per_requested(d.seeks)
      << ", \"flushes_per_requested\": " << r.per_requested(d.flushes)
      << ", \"forward_gop_skips\": " << d.forward_gop_skips << ", \"frames_reused\": " << d.frames_reused
      << ", \"frames_from_stash\": " << d.frames_from_stash << ", \"frames_decoded_ahead\": "
      << d.frames_decoded_ahead << ", \"stash_peak_bytes\": " << r.stash_peak_bytes
      << ", \"keyframe_decode_ms\": " << r.keyframe_s() * 1e3 << ", \"other_frame_decode_ms\": "
      << r.other_frame_s() * 1e3 << ", \"convert_ms\": " << r.convert_s() * 1e3
      << ", \"decode_s\": " << static_cast<double>(d.decode_ns) * 1e-9
      << ", \"convert_s\": " << static_cast<double>(d.convert_ns) * 1e-9
      << ", \"cache\": {\"hits\": " << r.cache.hits << ", \"misses\": " << r.cache.misses
      << ", \"evictions\": " << r.cache.evictions << ", \"open_decoders\": " << r.cache.open_decoders << "}}";
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  av_log_set_level(AV_LOG_ERROR);
  const std::vector<std::string> files = find_videos(o.paths);
  if (files.empty()) usage("no .mp4 file found");
  try {
    // Frame tables, read once up front (not timed), so requests hit real frame times.
    std::vector<std::vector<double>> times;
    for (const auto& f : files) times.push_back(lrs::av::CpuVideoDecoder(f).frame_times());
    const auto k = static_cast<size_t>(o.frames_per_sample);

    std::atomic<int64_t> issued = 0;
    // --order epoch: every (file, frame) once, shuffled; request i takes entries [i*K, i*K + K) of
    // its file's run (a request names one file: entries are grouped by file in runs of K).
    std::vector<std::pair<size_t, double>> epoch;
    if (o.order == "epoch") {
      for (size_t f = 0; f < files.size(); ++f) {
        for (double t : times[f]) epoch.emplace_back(f, t);
      }
      std::mt19937_64 shuffle_gen(o.seed);
      std::shuffle(epoch.begin(), epoch.end(), shuffle_gen);
      // Both passes request as many frames as the epoch has (at most --samples requests).
      o.samples = std::min<int64_t>(o.samples, static_cast<int64_t>(epoch.size()) / o.frames_per_sample);
    }
    std::mutex epoch_mutex;
    size_t epoch_at = 0;
    auto random_request = [&](int, std::mt19937_64& gen, size_t& file, std::vector<double>& request) {
      if (issued.fetch_add(1) >= o.samples) return false;
      if (o.order == "epoch") {
        const std::lock_guard<std::mutex> lock(epoch_mutex);
        if (epoch_at >= epoch.size()) return false;
        file = epoch[epoch_at].first;
        request.clear();
        while (request.size() < k && epoch_at < epoch.size() && epoch[epoch_at].first == file) {
          request.push_back(epoch[epoch_at++].second);
        }
        return true;
      }
      file = gen() % files.size();
      request.resize(k);
      for (double& t : request) t = times[file][gen() % times[file].size()];
      return true;
    };
    // Sequential: worker w reads files w, w + W, ... from their first frame, K frames per request.
    std::vector<size_t> cursor(static_cast<size_t>(o.workers), 0);
    std::vector<size_t> file_of(static_cast<size_t>(o.workers));
    for (int w = 0; w < o.workers; ++w) file_of[static_cast<size_t>(w)] = static_cast<size_t>(w) % files.size();
    auto sequential_request = [&](int w, std::mt19937_64&, size_t& file, std::vector<double>& request) {
      if (issued.fetch_add(1) >= o.samples) return false;
      const auto ws = static_cast<size_t>(w);
      const std::vector<double>& t = times[file_of[ws]];
      if (cursor[ws] >= t.size()) {  // next file of this worker
        file_of[ws] = (file_of[ws] + static_cast<size_t>(o.workers)) % files.size();
        cursor[ws] = 0;
      }
      file = file_of[ws];
      const std::vector<double>& ft = times[file];
      const size_t end = std::min(ft.size(), cursor[ws] + k);
      request.assign(ft.begin() + static_cast<std::ptrdiff_t>(cursor[ws]), ft.begin() + static_cast<std::ptrdiff_t>(end));
      cursor[ws] = end;
      return true;
    };

    std::ostringstream out;
    out.precision(6);
    out << "{\"files\": " << files.size() << ", \"samples\": " << o.samples << ", \"frames_per_sample\": " << k
        << ", \"workers\": " << o.workers << ", \"threads\": " << o.threads << ", \"dtype\": \""
        << lrs::pixel_type_name(o.dtype) << "\", \"order\": \"" << o.order << "\", \"stash_bytes\": " << o.stash_bytes;
    PassResult seq, rnd;
    if (o.mode != "random") {
      issued = 0;
      seq = run_pass(o, files, sequential_request, times);
      out << ", \"sequential\": " << pass_json(seq);
    }
    if (o.mode != "sequential") {
      issued = 0;
      rnd = run_pass(o, files, random_request, times);
      out << ", \"random\": " << pass_json(rnd);
    }
    if (o.mode == "both") {
      const lrs::DecoderStats& d = rnd.cache.decoder;
      const double dpr = rnd.per_requested(d.frames_decoded);
      const double limit = seq.frames_per_s() / dpr;
      const double limit_cpu = seq.frames_per_cpu_s() / dpr;
      // Note [Random access limit]: the random pass's decoded mix at the sequential cost per kind.
      const double mix_s = rnd.per_requested(d.keyframes_decoded) * seq.keyframe_s() +
                           rnd.per_requested(d.frames_decoded - d.keyframes_decoded) * seq.other_frame_s() +
                           rnd.per_requested(d.frames_converted) * seq.convert_s();
      const double mix_limit = o.workers / mix_s;
      out << ", \"limit\": {\"frames_per_s\": " << limit << ", \"ratio_to_limit\": " << rnd.frames_per_s() / limit
          << ", \"frames_per_cpu_s\": " << limit_cpu << ", \"ratio_to_limit_cpu\": "
          << rnd.frames_per_cpu_s() / limit_cpu << ", \"frame_mix\": {\"frames_per_s\": " << mix_limit
          << ", \"ratio\": " << rnd.frames_per_s() / mix_limit << "}}";
    }
    out << "}\n";
    std::fputs(out.str().c_str(), stdout);
  } catch (const lrs::Error& e) {
    std::cerr << "lrs_decode_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
