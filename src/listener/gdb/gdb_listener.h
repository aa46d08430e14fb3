// SPDX-License-Identifier: MIT
// The gdb listener: system-call events from QEMU's gdbstub, with breakpoints at the Linux
// kernel's system-call entry points and return instructions. It needs no plugin and works with
// KVM on a stock host (hardware breakpoints through KVM_SET_GUEST_DEBUG) as well as with TCG.
// Same Event and contract as the TCG listener (docs/listener.md); how it works:
// docs/gdb-listener.md.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "listener/gdb/gdb_client.h"
#include "nitro/listener.h"
#include "nitro/memory.h"

namespace nitro::linux_os {
class Kallsyms;
struct LoadedKernel;
}  // namespace nitro::linux_os

namespace nitro::gdb {

/// Link-time addresses of the kernel symbols the listener traps at, and the banner that
/// identifies the kernel in guest memory (to find the KASLR slide).
struct KernelTrapSymbols {
    std::map<std::string, std::uint64_t, std::less<>> link;
    std::string banner;  ///< linux_banner's text, "Linux version ..."

    /// The symbols the listener uses, from the kernel's symbol table.
    static KernelTrapSymbols from_kallsyms(const linux_os::Kallsyms& symbols, std::string banner);
    /// The names of the symbols the listener uses.
    static std::vector<std::string_view> names();
    std::optional<std::uint64_t> get(std::string_view name) const;
};

/// What a trap is for (the listener's breakpoints, in priority order).
enum class TrapKind : std::uint8_t {
    Syscall64,      ///< entry_SYSCALL_64
    Sysretq,        ///< the sysretq path at the end of entry_SYSCALL_64 (after its swapgs)
    Iret,           ///< the return-to-user path after its swapgs (or native_irq_return_iret)
    Int80,          ///< entry_INT80_compat or asm_int80_emulation (returns through Iret)
    Sysenter,       ///< entry_SYSENTER_compat
    Sysretl,        ///< the sysretl at the end of entry_SYSCALL_compat (compat fast returns)
    SyscallCompat,  ///< entry_SYSCALL_compat (32-bit syscall; AMD CPUs)
};
std::string_view to_string(TrapKind k);

struct Trap {
    TrapKind kind;
    std::uint64_t address = 0;  ///< runtime (KASLR applied)
    std::string where;          ///< symbol+offset, for messages
    bool inserted = false;
    /// The address of the instruction after the trapped one when it is one of the few that the
    /// listener can decode (never a sysret or iret: stepping over one of those would let the vCPU
    /// run in user mode with the trap out), for stepping over the breakpoint with a temporary
    /// breakpoint instead of a single step.
    std::optional<std::uint64_t> next;
    /// When the trapped instruction is a direct jump: its target. Stepping over it is then just
    /// setting rip, with no extra stop (the trap on the return-to-user path is one).
    std::optional<std::uint64_t> jump;
};

/// Length of the instruction at code[0] when it is one that starts the kernel's entry code
/// (endbr64, swapgs, push, cld, clac, nop forms) and does not jump; nullopt otherwise.
std::optional<std::size_t> simple_insn_length(std::span<const std::uint8_t> code);

/// A sysret and the swapgs before it.
struct SysretPath {
    std::uint64_t after_swapgs = 0;  ///< the instruction after the swapgs (user gs, IF still 0)
    std::uint64_t sysret = 0;        ///< the sysretq/sysretl
};
/// The sysret that follows a swapgs in `code` (starting at `base`), skipping a short jump over
/// CLEAR_CPU_BUFFERS (verw) and nops: the unique sysretq (q64) or sysretl, and where the
/// instructions between them start.
std::optional<SysretPath> find_sysret_path(std::span<const std::uint8_t> code, std::uint64_t base,
                                           bool q64);
/// find_sysret_path()'s sysret address.
std::optional<std::uint64_t> find_sysret(std::span<const std::uint8_t> code, std::uint64_t base,
                                         bool q64);

/// Finds the unique occurrence of `pattern` in `code` (which starts at `base`) and returns the
/// address of pattern[at]; nullopt when absent, throws nitro::Error when ambiguous.
std::optional<std::uint64_t> find_unique(std::span<const std::uint8_t> code, std::uint64_t base,
                                         std::span<const std::uint8_t> pattern, std::size_t at);

/// The candidate KASLR slides (2 MiB steps over the x86-64 kernel image region) for a kernel
/// whose text is linked at [text, etext); those consistent with `hint` (a runtime address known
/// to be in the kernel's text) first.
std::vector<std::int64_t> kaslr_candidates(std::uint64_t text, std::uint64_t etext,
                                           std::optional<std::uint64_t> hint);

/// Reads guest virtual memory at a stop: returns the bytes read before the first fault.
class GuestReader {
  public:
    virtual ~GuestReader() = default;
    virtual std::size_t read(std::uint64_t va, std::span<std::uint8_t> out) = 0;
};

/// Copies the bytes the consumer asked for (set_captures) into ev.captures, like the TCG
/// plugin does: bounded, page by page, never failing the event.
void capture_arguments(GuestReader& mem, const std::vector<CaptureRule>& rules, Event& ev);

/// Pending system-call entries by guest thread (cr3 without PCID/KPTI bits, fs_base, gs_base),
/// so that each return is paired with its own entry even when it comes on another vCPU.
class PendingCalls {
  public:
    struct Key {
        std::uint64_t cr3 = 0, fs = 0, gs = 0;
        bool operator==(const Key&) const = default;
    };
    struct Entry {
        Key key;
        unsigned vcpu = 0;
        std::uint64_t seq = 0;
        std::uint64_t nr = 0;
        std::array<std::uint64_t, 6> args{};
        EventType type = EventType::Syscall;
        bool compat = false;
        bool traced = false;
        bool rekey = false;  ///< a call that may change the thread's key (execve, arch_prctl)
        std::uint64_t stamp = 0;
    };
    static constexpr std::uint64_t kCr3KeyMask = ~0x1fffULL & ~(1ULL << 63);
    static Key key_of(std::uint64_t cr3, std::uint64_t fs, std::uint64_t gs) {
        return {cr3 & kCr3KeyMask, fs, gs};
    }

    explicit PendingCalls(std::size_t capacity = 8192) : capacity_(capacity) {}
    /// Records an entry; replaces the thread's previous one (a call that never returned).
    void put(Entry e);
    std::optional<Entry> take(const Key& k);
    /// Removes the entry with this vCPU and seq if it is still pending.
    std::optional<Entry> take_exact(const Key& k, unsigned vcpu, std::uint64_t seq);
    /// The identity-changing call a return whose key matches nothing most likely ends (see
    /// docs/listener.md): same address space first; for a fresh image (TLS bases zero) one that
    /// entered on this vCPU, else the oldest.
    std::optional<Entry> take_rekey(std::uint64_t cr3_key, bool fresh, unsigned vcpu);
    std::size_t size() const { return map_.size(); }

  private:
    struct KeyHash {
        std::size_t operator()(const Key& k) const {
            std::uint64_t h = (k.cr3 >> 12) * 0x9e3779b97f4a7c15ULL ^ k.fs * 0xc2b2ae3d27d4eb4fULL ^
                              k.gs;
            return static_cast<std::size_t>(h ^ (h >> 29));
        }
    };
    std::size_t capacity_;
    std::uint64_t stamp_ = 0;
    std::size_t rekey_count_ = 0;
    std::unordered_map<Key, Entry, KeyHash> map_;
};

struct GdbListenerOptions {
    /// Async: the vCPU is resumed before next() returns the event (captures are copied at the
    /// stop). Sync: the vCPU (and, in all-stop mode, the whole VM) waits until the next call.
    /// AsyncDrop behaves as Async (nothing is ever dropped: the VM waits for nitro).
    Mode mode = Mode::Async;
    ClientOptions client{};
    /// Start with traps on.
    bool traps = true;
    /// Z0 software breakpoints (int3 written into guest memory, visible to the guest) instead of
    /// Z1 hardware breakpoints. Only for stubs without hardware breakpoints.
    bool software_breakpoints = false;
    /// How a vCPU gets off a breakpoint: a temporary breakpoint on the next instruction with
    /// only that vCPU running (default), or a single step (vCont;s).
    enum class StepOver { TemporaryBreakpoint, SingleStep } step_over = StepOver::TemporaryBreakpoint;
    /// At most this many breakpoints (0: as many as the stub accepts; KVM offers 4).
    unsigned max_breakpoints = 0;
    /// How long to wait for the kernel to appear in memory (attaching at boot).
    std::chrono::milliseconds kernel_timeout{60000};
    /// Guest RAM (QEMU's shared memory-backend file); null: memory is read through the stub.
    std::shared_ptr<PhysicalMemory> memory;
    /// Called after detaching (e.g. to stop a gdbstub started through QMP).
    std::function<void()> after_detach;
};

/// What the gdb listener did, beyond ListenerStats.
struct GdbStats {
    std::uint64_t stops = 0;            ///< breakpoint stops handled
    std::uint64_t filtered = 0;         ///< entries and exits not delivered (filters, traps)
    std::uint64_t kernel_irets = 0;     ///< iret stops that returned to kernel mode
    std::uint64_t interrupt_irets = 0;  ///< iret stops to user mode that ended no syscall
    std::uint64_t steps = 0;            ///< single steps over a breakpoint
    std::uint64_t memory_reads = 0;     ///< guest memory reads (captures, frames, arguments)
    bool memory_through_stub = false;   ///< no shared memory file: 'm' packets (slower)
    std::int64_t kaslr_slide = 0;
    unsigned breakpoints = 0;  ///< inserted
};

class GdbListener final : public Listener {
  public:
    /// Takes a connected, handshaken client. Finds the kernel (KASLR slide) in guest memory,
    /// waiting for it to boot if needed, inserts the breakpoints and lets the guest run.
    /// Throws nitro::Error with what went wrong.
    GdbListener(std::unique_ptr<GdbClient> client, KernelTrapSymbols symbols,
                GdbListenerOptions options = {});
    /// Connects to "unix:/path" (or host:port) first.
    static std::unique_ptr<GdbListener> connect(const std::string& endpoint,
                                                KernelTrapSymbols symbols,
                                                GdbListenerOptions options = {});
    ~GdbListener() override;
    GdbListener(const GdbListener&) = delete;
    GdbListener& operator=(const GdbListener&) = delete;

    Status next(Event& ev, std::chrono::milliseconds timeout) override;
    void stop() override;
    void set_traps(bool enabled) override;
    void add_syscall_filter(Abi abi, uint64_t nr) override;
    void remove_syscall_filter(Abi abi, uint64_t nr) override;
    void clear_syscall_filter() override;
    void set_cr3_filter(const std::vector<uint64_t>& cr3s) override;
    void set_captures(Abi abi, uint64_t nr, Direction dir,
                      const std::vector<CaptureRule>& rules) override;
    EndReason end_reason() const override { return end_; }
    ListenerStats stats() const override;

    /// Calls that may change the calling thread's key (execve, arch_prctl...); by default the
    /// Linux ones.
    void set_rekey_syscalls(Abi abi, const std::vector<uint64_t>& nrs);
    void set_pairing_hints(Abi abi, const PairingHints& hints) override {
        set_rekey_syscalls(abi, hints.rekey);
    }
    const GdbStats& gdb_stats() const { return gstats_; }
    const std::vector<Trap>& traps() const { return traps_; }
    unsigned vcpu_count() const { return static_cast<unsigned>(threads_.size()); }
    /// Why the listener ended when it was not a clean exit (the stub's error), else empty.
    const std::string& error() const { return error_; }

  private:
    struct Regs;
    class StubReader;
    class SharedReader;

    void find_kernel();
    bool try_find_kernel();
    void place_traps();
    bool insert_trap(Trap& t);
    void remove_traps();
    void refresh_threads();
    unsigned vcpu_of(const StopReply& stop);
    Regs read_regs(const ThreadId& thread);
    GuestReader& reader_for(const Regs& r);
    // Handles a stop: true (and ev filled) when it produced an event.
    bool handle_stop(const StopReply& stop, Event& ev);
    bool on_entry(const Trap& t, unsigned vcpu, const Regs& r, Event& ev);
    bool on_exit(const Trap& t, unsigned vcpu, const Regs& r, Event& ev);
    void fill_event(Event& ev, unsigned vcpu, const Regs& r);
    // Steps the stopped vCPU off its breakpoint and resumes every vCPU.
    void resume_from(const ThreadId& thread);
    // Steps over with a temporary breakpoint at the next instruction, only that vCPU running;
    // false when that cannot be done (the caller single-steps instead).
    bool step_over_with_breakpoint(const ThreadId& thread);
    void resume_all();
    // Stops a running target (for changes that need the stub); false if it has ended.
    bool halt();
    void end_with(EndReason reason, std::string error);
    void detach();
    bool nr_traced(bool compat, std::uint64_t nr) const;
    bool cr3_traced(std::uint64_t cr3) const;

    std::unique_ptr<GdbClient> client_;
    KernelTrapSymbols symbols_;
    GdbListenerOptions options_;
    std::unique_ptr<GuestReader> stub_reader_;
    std::unique_ptr<SharedReader> shared_reader_;
    std::int64_t slide_ = 0;
    std::vector<Trap> traps_;
    std::vector<ThreadId> threads_;
    struct VcpuState {
        std::uint64_t seq = 0;
        std::optional<PendingCalls::Entry> last;  // for the rekey fallback
        unsigned returns_since_entry = 0;
    };
    std::vector<VcpuState> vcpus_;
    PendingCalls pending_;
    bool traps_on_ = true;
    bool breakpoints_in_ = false;
    // Filters (applied at the stop, before anything is built)
    bool nr_filter_ = false;
    std::array<std::vector<bool>, 2> nr_allowed_;  // [compat]
    std::vector<std::uint64_t> cr3_filter_;
    std::array<std::vector<bool>, 2> rekey_;
    std::map<std::tuple<bool, std::uint64_t, int>, std::vector<CaptureRule>> captures_;
    // A stop seen while halting the target for a change, handled by the next next().
    std::optional<StopReply> deferred_stop_;
    // Sync mode: the vCPU that waits for the consumer.
    std::optional<ThreadId> held_;
    // How to get off a breakpoint: a single step (QEMU's TCG), or remove, step, reinsert.
    enum class StepOver { Unknown, Step, Reinsert } step_over_ = StepOver::Unknown;
    bool stop_selects_thread_ = true;  // QEMU points Hg at the vCPU that stopped
    std::optional<ThreadId> selected_;
    bool on_trap_ = false;  // the stopped vCPU sits on one of our breakpoints
    const Trap* trap_at_ = nullptr;      // ...this one
    std::optional<std::uint64_t> next_ip_;  // ...and will go on here
    bool temp_breakpoints_ = true;  // step over with temporary breakpoints (see resume_from)
    EndReason end_ = EndReason::None;
    std::string error_;
    std::uint64_t delivered_ = 0;
    GdbStats gstats_;
};

/// The listener for a Linux guest: trap symbols from the kernel image's profile, guest RAM from
/// the shared memory file when given (else through the stub).
std::unique_ptr<GdbListener> make_gdb_listener(const std::string& endpoint,
                                               const linux_os::LoadedKernel& kernel,
                                               std::shared_ptr<PhysicalMemory> memory,
                                               GdbListenerOptions options = {});

}  // namespace nitro::gdb
