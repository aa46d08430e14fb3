// SPDX-License-Identifier: MIT
/// @file
/// Listeners subscribe to a VM's vCPUs and yield Events. Every event source (the TCG plugin,
/// the gdb stub, a replay) implements this interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nitro/abi.h"
#include "nitro/event.h"

namespace nitro {

/// Why a listener stopped producing events.
enum class EndReason {
    None,        ///< still running
    Stopped,     ///< stop() was called
    QemuExited,  ///< QEMU shut down (the guest powered off, or QEMU was asked to quit)
    QemuDied,    ///< QEMU disappeared without shutting down (killed, crashed)
    EndOfRecording,  ///< a replayed recording has no more events
};
const char* to_string(EndReason r);

/// How the listener and the guest synchronise.
enum class Mode {
    Async,      ///< the vCPU continues at once; lossless (waits when the ring is full)
    AsyncDrop,  ///< the vCPU continues at once; events are dropped (and counted) when full
    Sync,       ///< the vCPU waits until the consumer has processed the event
};

/// One bounded copy of guest memory the listener makes at event time (asynchronous mode).
struct CaptureRule {
    uint8_t arg;  ///< argument index 0..5 holding the address
    CaptureKind kind;
    /// Argument holding the length (BufLenArg, BufLenPtr), Deref's field, or StackAt's offset
    /// from the stack pointer in 8-byte words.
    uint8_t len_arg = 0;
    uint32_t max = 4096;  ///< byte bound
};

/// Whether a rule names arguments that exist (0..5; StackAt's len_arg is an offset).
inline bool capture_rule_valid(const CaptureRule& r) {
    return r.arg <= 5 && (r.len_arg <= 5 || r.kind == CaptureKind::StackAt);
}

/// OS facts for pairing a system call's exit with its entry, per ABI.
struct PairingHints {
    /// Calls after which the caller's thread key (address space, TLS bases) may change
    /// (execve, arch_prctl...): their return is paired by vCPU when the key misses.
    std::vector<uint64_t> rekey;
    /// Calls that create a task (fork, vfork, clone): the new task's first return (0) never
    /// takes its creator's entry, even under the same key (vfork).
    std::vector<uint64_t> fork;
    /// Calls that never return (exit, exit_group).
    std::vector<uint64_t> noreturn;
};

struct ListenerStats {
    uint64_t events = 0;   ///< events delivered
    uint64_t dropped = 0;  ///< events lost (drop mode, or a consumer that fell behind)
};

/// A single-pass range over events, `for (const Event& e : range)`: next(ev) fills the next
/// event and returns false at the end.
template <typename Next>
class EventRange {
public:
    struct Sentinel {};
    class Iterator {
    public:
        using value_type = Event;
        using difference_type = std::ptrdiff_t;
        explicit Iterator(Next next) : next_(std::move(next)) { advance(); }
        const Event& operator*() const { return ev_; }
        const Event* operator->() const { return &ev_; }
        Iterator& operator++() {
            advance();
            return *this;
        }
        bool operator==(Sentinel) const { return done_; }

    private:
        void advance() { done_ = !next_(ev_); }
        Next next_;
        Event ev_;
        bool done_ = false;
    };
    explicit EventRange(Next next) : next_(std::move(next)) {}
    Iterator begin() { return Iterator(next_); }
    Sentinel end() { return {}; }

private:
    Next next_;
};

class Listener {
public:
    enum class Status { Event, Timeout, End };

    virtual ~Listener() = default;

    /// Waits at most timeout for the next event and fills ev (its buffers are reused).
    /// In Sync mode the previous event's vCPU is resumed when next() is called again.
    virtual Status next(Event& ev, std::chrono::milliseconds timeout) = 0;
    /// Ends the listening: resumes every waiting vCPU and detaches; next() returns End.
    virtual void stop() = 0;
    virtual void set_traps(bool enabled) = 0;
    virtual void add_syscall_filter(Abi abi, uint64_t nr) = 0;
    virtual void remove_syscall_filter(Abi abi, uint64_t nr) = 0;
    /// Traces every syscall number again.
    virtual void clear_syscall_filter() = 0;
    /// Traces only these address spaces (cr3 values; PCID and KPTI bits ignored); empty = all.
    virtual void set_cr3_filter(const std::vector<uint64_t>& cr3s) = 0;
    /// Bytes to copy from guest memory at entry or exit of a syscall (asynchronous mode).
    virtual void set_captures(Abi abi, uint64_t nr, Direction dir,
                              const std::vector<CaptureRule>& rules) = 0;
    /// OS facts that let a listener pair exits with entries (PairingHints). Listeners that
    /// pair by other means ignore them.
    virtual void set_pairing_hints(Abi abi, const PairingHints& hints) {
        (void)abi;
        (void)hints;
    }
    /// At every event, read the 64-bit word at the kernel's GS base + offset into
    /// Event::context: the current task (Linux) or thread (Windows) as it was at the event,
    /// not when nitro gets to the event. False if this listener cannot (then backends read it
    /// from guest memory when they process the event).
    virtual bool set_context_word(uint64_t kernel_gs_offset) {
        (void)kernel_gs_offset;
        return false;
    }
    /// Where vCPU vcpu's context word is while its kernel GS base is kernel_gs_base: at
    /// file_offset in ram_file, the file of QEMU's memory backend. A listener that can read
    /// that file then reads the word there rather than walking page tables at each event
    /// (the TCG plugin, which checks it against a walk now and then). Others ignore it.
    virtual void set_context_in_ram(unsigned vcpu, uint64_t kernel_gs_base,
                                    const std::string& ram_file, uint64_t file_offset) {
        (void)vcpu;
        (void)kernel_gs_base;
        (void)ram_file;
        (void)file_offset;
    }
    /// The file of QEMU's memory backend (guest RAM laid out as a PC's: ram_below_4g bytes
    /// below 4 GiB, the rest from 4 GiB). A listener that maps it (the TCG plugin) reads guest
    /// memory there, argument captures included, walking the guest's page tables itself
    /// rather than through QEMU, and compares the two now and then. Others ignore it.
    virtual void set_guest_ram(const std::string& ram_file, uint64_t ram_below_4g) {
        (void)ram_file;
        (void)ram_below_4g;
    }
    /// A byte range of the object the context word points to.
    struct ContextField {
        uint32_t offset = 0;
        uint32_t len = 0;
    };
    /// With a context word: also copy these fields of the object it points to at the event
    /// (at most 4, of up to 32 bytes, 64 in all), as a CaptureKind::Context capture. Linux asks
    /// for the task's pid, name and parent, which an exec or an exit changes before an
    /// asynchronous event is handled. False if this listener cannot (or the list is too
    /// long); backends then read the object when they handle the event.
    virtual bool set_context_fields(const std::vector<ContextField>& fields) {
        (void)fields;
        return false;
    }
    /// Calls at whose return the fields are copied again although the context word is the
    /// same (Linux: exec, prctl, writes that may rename a task through /proc). A listener may
    /// otherwise copy them only when they may have changed: when the word changes (a task
    /// switch), at a new task's first return, and now and then; events between carry none,
    /// and the last copy of the same word holds for them.
    virtual void set_context_refresh(Abi abi, const std::vector<uint64_t>& nrs) {
        (void)abi;
        (void)nrs;
    }
    /// Where the objects the context word points to are in the RAM file given to
    /// set_context_in_ram: at guest-physical address - linear_base (Linux's direct map), the
    /// file laid out as a PC's RAM with ram_below_4g bytes below 4 GiB. A listener that maps
    /// that file (the TCG plugin) then copies the fields from it rather than through page
    /// walks, and compares the two now and then. Others ignore it.
    virtual void set_context_linear_map(uint64_t linear_base, uint64_t ram_below_4g) {
        (void)linear_base;
        (void)ram_below_4g;
    }
    virtual EndReason end_reason() const = 0;
    virtual ListenerStats stats() const = 0;

    /// Waits as long as it takes for the next event; false at the end.
    bool next_until_end(Event& ev) {
        for (;;) {
            auto s = next(ev, std::chrono::milliseconds(500));
            if (s == Status::Event) return true;
            if (s == Status::End) return false;
        }
    }
    struct NextEvent {
        Listener* listener;
        bool operator()(Event& ev) const { return listener->next_until_end(ev); }
    };
    using Range = EventRange<NextEvent>;
    /// A range over the events: `for (const Event& e : listener.listen()) ...` until the end.
    Range listen() { return Range(NextEvent{this}); }
};

}  // namespace nitro
