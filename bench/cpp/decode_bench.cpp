// lrs_decode_bench: times random-access decode of a dataset's videos through the C++ core only
// (no Python): the DecoderCache + CpuVideoDecoder path the dataset uses, one thread per worker.
//
//   lrs_decode_bench [--samples N] [--frames-per-sample K] [--workers W] [--threads T]
//                    [--cache C] [--seed S] PATH...
// PATH is an mp4 file or a directory searched recursively for *.mp4 (e.g. a v3 dataset root).
// Each sample picks a random file and K random frames of it (one random-access request), as a
// dataset sample with K cameras/timestamps would. Prints one JSON object.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <libavutil/log.h>
}

#include "av/cpu_decoder.h"
#include "common/errors.h"
#include "decode/decoder_cache.h"

namespace {

struct Options {
  int64_t samples = 400;
  int frames_per_sample = 1;
  int workers = 1;
  int threads = 1;
  int64_t cache = 16;
  uint64_t seed = 0;
  std::vector<std::string> paths;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "lrs_decode_bench: " << why
            << "\nusage: lrs_decode_bench [--samples N] [--frames-per-sample K] [--workers W] [--threads T]"
               " [--cache C] [--seed S] PATH...\n";
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
      else if (arg.starts_with("--")) usage("unknown option " + arg);
      else o.paths.push_back(arg);
    } catch (const std::logic_error&) {
      usage("bad value for " + arg);
    }
  }
  if (o.paths.empty()) usage("no PATH given");
  if (o.samples < 1 || o.frames_per_sample < 1 || o.workers < 1 || o.threads < 0 || o.cache < 1) {
    usage("counts must be positive");
  }
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

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  av_log_set_level(AV_LOG_ERROR);
  const std::vector<std::string> files = find_videos(o.paths);
  if (files.empty()) usage("no .mp4 file found");
  try {
    // Frame tables, read once up front (not timed), so requests hit real frame times.
    std::vector<std::vector<double>> times;
    for (const auto& f : files) times.push_back(lrs::av::CpuVideoDecoder(f).frame_times());

    lrs::DecoderCache cache(o.cache, [&](const lrs::VideoSource& source) {
      return std::make_unique<lrs::av::CpuVideoDecoder>(source, lrs::av::CpuDecoderOptions{o.threads});
    });
    std::atomic<int64_t> next_sample = 0;
    std::atomic<int64_t> frames = 0;
    std::vector<std::thread> workers;
    const auto start = std::chrono::steady_clock::now();
    for (int w = 0; w < o.workers; ++w) {
      workers.emplace_back([&, w] {
        std::mt19937_64 gen(o.seed * 1000003 + static_cast<uint64_t>(w));
        while (next_sample.fetch_add(1) < o.samples) {
          const size_t file = gen() % files.size();
          std::vector<double> request(static_cast<size_t>(o.frames_per_sample));
          for (double& t : request) t = times[file][gen() % times[file].size()];
          frames += cache.get_frames_at(files[file], request, 1e-4).num_frames;
        }
      });
    }
    for (auto& t : workers) t.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const lrs::DecoderCacheStats s = cache.stats();
    std::printf(
        "{\"files\": %zu, \"samples\": %lld, \"frames\": %lld, \"workers\": %d, \"threads\": %d, "
        "\"seconds\": %.4f, \"frames_per_s\": %.2f, \"samples_per_s\": %.2f, "
        "\"cache\": {\"hits\": %lld, \"misses\": %lld, \"evictions\": %lld, \"open_decoders\": %lld}}\n",
        files.size(), static_cast<long long>(o.samples), static_cast<long long>(frames.load()), o.workers, o.threads,
        seconds, frames.load() / seconds, o.samples / seconds, static_cast<long long>(s.hits),
        static_cast<long long>(s.misses), static_cast<long long>(s.evictions), static_cast<long long>(s.open_decoders));
  } catch (const lrs::Error& e) {
    std::cerr << "lrs_decode_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
