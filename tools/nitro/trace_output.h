// SPDX-License-Identifier: MIT
// What `nitro trace` does with each event: write it raw (--nobackend) or decode it with the
// OS backend. The trace loop, the stop/drain and the summary are shared (trace_command.cpp).
#pragma once

#include <cstdio>
#include <memory>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "nitro/event.h"
#include "nitro/listener.h"

struct nitro_record;
namespace nitro::tcg {
class TcgListener;
}

namespace nitro::cli {

class Target;
class Progress;

class TraceOutput {
  public:
    virtual ~TraceOutput() = default;
    /// Called once the listener is attached, before the guest runs (capture tables, filters).
    virtual void attach(Listener& listener) { (void)listener; }
    virtual void handle(const Event& ev) = 0;
    /// An output that takes the plugin's records undecoded (--format raw) names the listener
    /// they come from; the loop then calls handle_record() instead of handle().
    virtual tcg::TcgListener* record_source() { return nullptr; }
    virtual void handle_record(const nitro_record* rec) { (void)rec; }
    /// Writes what is still held and completes the output (closes a JSON array).
    virtual void finish() = 0;
    virtual uint64_t records() const = 0;
    /// Extra figures for --stats.
    virtual void print_stats(std::FILE* f) const { (void)f; }
};

/// Raw events (--nobackend): text, jsonl or json, every register; or raw, a capture file.
std::unique_ptr<TraceOutput> make_raw_output(const TraceOptions& o);

/// The shared loop: until the listener ends, Ctrl-C or --duration (then traps off, drain,
/// stop), every event to out.
/// Entries counted by ABI and syscall number: a flat table for the numbers a kernel has (one
/// increment per event, no allocation), a map for the rest (numbers a hostile guest made up).
class EntryCounts {
  public:
    void add(Abi abi, uint64_t nr) {
        if (nr < kFlat) {
            flat_[(abi == Abi::I386 ? kFlat : 0) + nr]++;
        } else {
            other_[{abi, nr}]++;
        }
    }
    /// Every (ABI, number) counted at least once.
    std::map<std::pair<Abi, uint64_t>, uint64_t> all() const {
        auto m = other_;
        for (uint64_t i = 0; i < 2 * kFlat; i++) {
            if (flat_[i]) m[{i >= kFlat ? Abi::I386 : Abi::X86_64, i % kFlat}] = flat_[i];
        }
        return m;
    }

  private:
    static constexpr uint64_t kFlat = 1024;
    std::vector<uint64_t> flat_ = std::vector<uint64_t>(2 * kFlat);
    std::map<std::pair<Abi, uint64_t>, uint64_t> other_;
};

struct LoopResult {
    bool stopped_by_user = false;
    uint64_t events = 0;
    EntryCounts entries_by_nr;
};
LoopResult trace_loop(Listener& listener, TraceOutput& out, double duration);
/// --stats: figures of the loop, the listener and the output, on stderr.
void print_stats(const LoopResult& r, const Listener& listener, const TraceOutput& out,
                 double secs);
/// -e NAME,...: the numbers of each name in each ABI that has it.
std::vector<std::pair<Abi, uint64_t>> resolve_syscalls(const std::vector<std::string>& names);

/// Decoded calls with their processes (the Linux backend). Loads the kernel profile from
/// kernel_image; opens guest RAM from the target.
class DecodedOutputFactory {
  public:
    /// Loads the profile (throws nitro::Error with what the user can give instead).
    DecodedOutputFactory(const TraceOptions& o, const std::string& kernel_image,
                         Progress& progress);
    ~DecodedOutputFactory();
    /// The output, once the target's RAM is known.
    std::unique_ptr<TraceOutput> make(const Target& target);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nitro::cli
