// SPDX-License-Identifier: MIT
#include "listener/tcg/replay_listener.h"

#include "nitro/error.h"

namespace nitro::tcg {

namespace {
// cr3 without PCID and the KPTI user/kernel bit, as the plugin compares it.
constexpr uint64_t kCr3KeyMask = ~0x1fffULL & ~(1ULL << 63);
}  // namespace

Listener::Status ReplayListener::next(Event& ev, std::chrono::milliseconds) {
    while (end_ == EndReason::None) {
        if (!reader_.next(ev)) {
            end_ = EndReason::EndOfRecording;
            break;
        }
        if (wanted(ev)) {
            delivered_++;
            return Status::Event;
        }
    }
    return Status::End;
}

bool ReplayListener::wanted(const Event& ev) const {
    if (!traps_) return false;
    if (nr_filter_) {
        const auto& set = nrs_[ev.compat ? 1 : 0];
        if (ev.nr >= set.size() || !set[ev.nr]) return false;
    }
    if (!cr3s_.empty()) {
        bool found = false;
        for (uint64_t c : cr3s_) found = found || (c & kCr3KeyMask) == (ev.sregs.cr3 & kCr3KeyMask);
        if (!found) return false;
    }
    return true;
}

void ReplayListener::stop() {
    if (end_ == EndReason::None) end_ = EndReason::Stopped;
}

void ReplayListener::add_syscall_filter(Abi abi, uint64_t nr) {
    if (nr >= NITRO_MAX_NR) fail("syscall number {} is beyond the filter range", nr);
    nrs_[abi == Abi::I386 ? 1 : 0][nr] = true;
    nr_filter_ = true;
}

void ReplayListener::remove_syscall_filter(Abi abi, uint64_t nr) {
    if (nr < NITRO_MAX_NR) nrs_[abi == Abi::I386 ? 1 : 0][nr] = false;
}

void ReplayListener::clear_syscall_filter() {
    for (auto& s : nrs_) s.assign(NITRO_MAX_NR, false);
    nr_filter_ = false;
}

ListenerStats ReplayListener::stats() const {
    ListenerStats s;
    s.events = delivered_;
    s.dropped = reader_.header().dropped;
    return s;
}

}  // namespace nitro::tcg
