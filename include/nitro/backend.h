// SPDX-License-Identifier: MIT
/// @file
/// OS backends turn a listener's Events into Syscalls: the call's name, the guest process that
/// made it and its decoded arguments (the original Nitro's Backend::process_event).
#pragma once

#include "nitro/event.h"
#include "nitro/listener.h"
#include "nitro/syscall.h"

namespace nitro {

class Backend {
  public:
    virtual ~Backend() = default;

    /// Tells the listener which argument bytes to copy at event time (asynchronous mode), so
    /// that strings and buffers can be decoded after the guest has moved on. Call once, before
    /// the first event.
    virtual void attach(Listener& listener) = 0;
    /// Decodes one event. Never throws for bad guest memory: what cannot be read is shown raw
    /// and marked (Process::valid, hex arguments).
    virtual Syscall process_event(const Event& ev) = 0;
};

}  // namespace nitro
