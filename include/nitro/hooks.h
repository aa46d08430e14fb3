// SPDX-License-Identifier: MIT
/// @file
/// Hooks: callbacks a Backend runs for chosen system calls, at entry or at exit (the original
/// Nitro's `backend.define_hook(name, callback, direction)`), and the argument accessor they
/// receive, which reads and writes a call's arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nitro/abi.h"
#include "nitro/event.h"
#include "nitro/memory.h"
#include "nitro/syscall.h"

namespace nitro {

struct SyscallInfo;

/// A hook's view of the arguments of the call it was run for.
///
/// Reads come from the bytes the listener captured at the event when there are some (in
/// asynchronous mode the guest has moved on since), else from guest memory now, through the
/// event's page tables. Guest memory is untrusted: reads are bounded and return nothing (or a
/// fault) when the memory is unreadable.
///
/// Writes change guest memory that an argument points to (a path, a buffer). They take effect
/// only when the guest waits for nitro at the event, that is in synchronous mode (Mode::Sync),
/// and need guest RAM mapped writable; otherwise they throw nitro::Error saying so. Writes go
/// to the physical page behind the address, read-only mappings included (a string literal in a
/// program's read-only data is in the page cache of its file: every process mapping that file
/// sees the change). Register writes (set(), set_return()) always throw: QEMU 10.0's plugin
/// API (version 4) cannot write guest registers.
class ArgumentMap {
  public:
    /// @p info may be null (unknown call: six raw arguments). @p writes_refused is empty when
    /// memory writes are allowed, else the reason they are not (the message of the Error).
    ArgumentMap(const Event& ev, const SyscallInfo* info, AddressSpace& space,
                std::string writes_refused);

    /// Number of arguments of the call (6 for an unknown call).
    std::size_t size() const { return count_; }
    /// The raw value of argument @p i (the low 32 bits for a 32-bit program); throws
    /// nitro::Error when @p i >= size().
    std::uint64_t operator[](std::size_t i) const { return value(i); }
    std::uint64_t value(std::size_t i) const;
    /// The event this hook runs for (registers, captures, direction).
    const Event& event() const { return *ev_; }

    /// The NUL-terminated string argument @p i points to, at most @p max_len bytes, or nothing
    /// when the pointer is NULL or the memory unreadable. A string cut by the bound or by
    /// unreadable memory is returned as far as it was read.
    std::optional<std::string> read_string(std::size_t i, std::size_t max_len = 4096);
    /// @p len bytes at the address in argument @p i (all of them, or the fault).
    Result<std::vector<std::byte>, MemFault> read_bytes(std::size_t i, std::size_t len);
    /// @p len bytes at any address of the calling process.
    Result<std::vector<std::byte>, MemFault> read_memory(GuestVirt va, std::size_t len);

    /// Replaces the string argument @p i points to with @p s (and its NUL). Throws nitro::Error
    /// when writes are refused (see the class comment), when the pointer is NULL or unreadable,
    /// when @p s is longer than the string there now (it would overwrite what follows it) or
    /// when the write faults.
    void write_string(std::size_t i, std::string_view s);
    /// Writes @p data at the address in argument @p i plus @p offset. Throws nitro::Error when
    /// writes are refused or the write faults part-way (the bytes before the fault are written).
    void write_bytes(std::size_t i, std::span<const std::byte> data, std::uint64_t offset = 0);
    /// Writes @p data at any address of the calling process; same rules as write_bytes().
    void write_memory(GuestVirt va, std::span<const std::byte> data);

    /// Always throws nitro::Error: argument registers cannot be written through QEMU's plugin
    /// API (version 4, QEMU 10.0).
    [[noreturn]] void set(std::size_t i, std::uint64_t value);
    /// Always throws nitro::Error, as set().
    [[noreturn]] void set_return(std::int64_t value);

  private:
    GuestVirt pointer(std::size_t i) const;
    void check_writes() const;
    void prepare_space();

    const Event* ev_;
    const SyscallInfo* info_;
    AddressSpace* space_;
    std::string writes_refused_;
    std::size_t count_;
    bool space_ready_ = false;
};

/// A hook: runs with the decoded call (which it may annotate) and its arguments.
using HookCallback = std::function<void(Syscall& syscall, ArgumentMap& args)>;

/// The hooks of a backend: at most one callback per system-call name and direction (defining
/// one again replaces it). Names are the short names of nitro's tables ("openat"); a name
/// selects that call in every ABI that has it (openat is 257 for 64-bit programs and 295 for
/// 32-bit ones).
class HookTable {
  public:
    /// Throws nitro::Error when no ABI has a call named @p name, or @p callback is empty.
    void define(std::string_view name, HookCallback callback, Direction direction);
    /// Removes the hook; false when there was none.
    bool undefine(std::string_view name, Direction direction);
    void clear();

    bool empty() const { return by_nr_.empty(); }
    /// The hook for a call and direction, or null. The hook stays alive while the pointer is
    /// held, even if it is undefined or replaced meanwhile (a hook may undefine itself).
    std::shared_ptr<const HookCallback> find(Abi abi, std::uint64_t nr,
                                             Direction direction) const;
    /// (ABI, number) of every hooked call, either direction, sorted.
    std::vector<std::pair<Abi, std::uint64_t>> numbers() const;
    /// Changes with every define() and undefine() (for listeners' filters to follow).
    std::uint64_t generation() const { return generation_; }

  private:
    static std::uint64_t key(Abi abi, std::uint64_t nr, Direction direction) {
        return (static_cast<std::uint64_t>(abi) << 40) |
               (static_cast<std::uint64_t>(direction) << 32) | (nr & 0xffffffffULL);
    }
    // Callbacks by name and direction; by_nr_ maps each (ABI, number, direction) to one of
    // them.
    std::map<std::pair<std::string, Direction>, std::shared_ptr<const HookCallback>> by_name_;
    std::map<std::uint64_t, std::shared_ptr<const HookCallback>> by_nr_;
    std::uint64_t generation_ = 0;
};

}  // namespace nitro
