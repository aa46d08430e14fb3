// SPDX-License-Identifier: MIT
// A Listener over a capture file: the events of an earlier `nitro trace --format raw`, with the
// same filters as the live listener (applied when reading).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "listener/tcg/capture_file.h"
#include "nitro/listener.h"

namespace nitro::tcg {

class ReplayListener final : public Listener {
public:
    explicit ReplayListener(const std::string& path) : reader_(path) {}

    /// Never waits: the next recorded event that passes the filters, or End.
    Status next(Event& ev, std::chrono::milliseconds timeout) override;
    void stop() override;
    void set_traps(bool enabled) override { traps_ = enabled; }
    void add_syscall_filter(Abi abi, uint64_t nr) override;
    void remove_syscall_filter(Abi abi, uint64_t nr) override;
    void clear_syscall_filter() override;
    void set_cr3_filter(const std::vector<uint64_t>& cr3s) override { cr3s_ = cr3s; }
    /// The captures are those made while recording; a replay cannot add any.
    void set_captures(Abi, uint64_t, Direction, const std::vector<CaptureRule>&) override {}
    EndReason end_reason() const override { return end_; }
    ListenerStats stats() const override;

    const CaptureReader& reader() const { return reader_; }

private:
    bool wanted(const Event& ev) const;

    CaptureReader reader_;
    bool traps_ = true;
    bool nr_filter_ = false;
    std::array<std::vector<bool>, 2> nrs_{std::vector<bool>(NITRO_MAX_NR),
                                          std::vector<bool>(NITRO_MAX_NR)};
    std::vector<uint64_t> cr3s_;
    EndReason end_ = EndReason::None;
    uint64_t delivered_ = 0;
};

}  // namespace nitro::tcg
