// SPDX-License-Identifier: MIT
/// @file
/// OS backends turn a listener's Events into Syscalls: the call's name, the guest process that
/// made it and its decoded arguments (the original Nitro's Backend::process_event), and run
/// the hooks defined for them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "nitro/event.h"
#include "nitro/hooks.h"
#include "nitro/listener.h"
#include "nitro/syscall.h"

namespace nitro {

/// What a backend did since it was made.
struct BackendStats {
    std::uint64_t events = 0;            ///< events processed
    std::uint64_t hooks_run = 0;         ///< hook callbacks run
    std::uint64_t decode_errors = 0;     ///< arguments whose guest memory could not be read
                                         ///< (a non-NULL string or buffer shown as an address)
    std::uint64_t process_errors = 0;    ///< events whose process could not be read
    std::uint64_t unknown_syscalls = 0;  ///< events with a number not in nitro's tables
};

class Backend {
  public:
    virtual ~Backend() = default;

    /// Tells the listener which argument bytes to copy at event time (asynchronous mode), so
    /// that strings and buffers can be decoded after the guest has moved on. Call once, before
    /// the first event.
    virtual void attach(Listener& listener) = 0;
    /// Decodes one event and runs the hook defined for its call and direction, if any. Never
    /// throws for bad guest memory: what cannot be read is shown raw and marked
    /// (Process::valid, hex arguments). Exceptions a hook throws reach the caller.
    virtual Syscall process_event(const Event& ev) = 0;

    /// Runs @p callback for every call named @p name (both ABIs) in @p direction, with the
    /// decoded call and its arguments. Replaces an earlier hook of that name and direction.
    /// Throws nitro::Error for a name no ABI knows.
    void define_hook(std::string_view name, HookCallback callback,
                     Direction direction = Direction::Enter) {
        hooks_.define(name, std::move(callback), direction);
    }
    /// Removes a hook; false when there was none.
    bool undefine_hook(std::string_view name, Direction direction = Direction::Enter) {
        return hooks_.undefine(name, direction);
    }
    const HookTable& hooks() const { return hooks_; }

    /// Whether hooks may write guest memory: only when the guest waits at each event
    /// (synchronous mode), with guest RAM mapped writable. @p refused_reason is the error hooks
    /// get otherwise (empty: writes allowed). By default they are refused.
    void set_memory_writes(std::string refused_reason) {
        writes_refused_ = std::move(refused_reason);
    }
    const std::string& memory_writes_refused() const { return writes_refused_; }

    const BackendStats& stats() const { return stats_; }

  protected:
    HookTable hooks_;
    BackendStats stats_;
    std::string writes_refused_ =
        "argument writes need synchronous mode (Mode::Sync): in asynchronous mode the guest has "
        "already moved on";
};

}  // namespace nitro
