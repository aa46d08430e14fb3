// SPDX-License-Identifier: MIT
/// @file
/// The low-level event every listener yields: a vCPU entering or leaving a system call.
/// The original Nitro's NitroEvent, plus sequence numbers, pairing and captured arguments.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace nitro {

/// The instruction the guest used to enter the kernel.
enum class EventType : uint8_t { Syscall = 1, Sysenter = 2, Int80 = 3 };
/// Entering or leaving the system call.
enum class Direction : uint8_t { Enter = 0, Exit = 1 };
/// The instruction that returned to user mode (exits only).
enum class ExitInsn : uint8_t { None = 0, Sysret = 1, Sysexit = 2, Iret = 3 };

std::string_view to_string(EventType t);
std::string_view to_string(Direction d);
std::string_view to_string(ExitInsn e);

/// General-purpose registers at the event.
struct Registers {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
};

/// Special registers at the event.
struct SpecialRegisters {
    uint64_t cr0, cr3, cr4, efer;
    uint64_t fs_base, gs_base, kernel_gs_base;
    uint64_t cs, ss;
};

/// Registers by bit in EventFields::fresh (the order of the TCG plugin's records).
enum class Reg : uint8_t {
    rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15,
    rip, rflags, cs, ss, fs_base, gs_base, kernel_gs_base, cr0, cr3, cr4, efer
};
constexpr uint32_t reg_bit(Reg r) { return 1u << static_cast<unsigned>(r); }
inline constexpr uint32_t kAllRegisters = (1u << (static_cast<unsigned>(Reg::efer) + 1)) - 1;

/// What a listener copied from guest memory at the moment of the event (asynchronous mode).
enum class CaptureKind : uint8_t {
    CString = 1, BufFixed = 2, BufLenArg = 3, BufRet = 4, StrArray = 5, BufLenPtr = 6,
    /// The buffers an iovec array argument points to (the array itself is another capture of
    /// the argument): per entry a 4-byte length, a status byte, 3 bytes of padding and the
    /// bytes, padded to 8 (src/listener/tcg/ring_abi.h, NITRO_CAP_IOVEC_DATA).
    IovecData = 7,
    /// A struct msghdr and what it points to, as sections (the IovecData layout): the
    /// structure (56 bytes; 28 for a 32-bit program), up to 128 bytes at msg_name, the iovec
    /// array (its first 16 entries), the first bytes of each of those buffers (at an exit no
    /// more than the return value in all). TRUNCATED: more than 16 entries.
    Msghdr = 8,
    /// The first messages (up to 8, and no more than the return value at an exit) of a struct
    /// mmsghdr array: each as a Msghdr capture whose structure section is the whole mmsghdr
    /// (64 bytes; 32 for a 32-bit program), its buffers bounded by its msg_len.
    Mmsghdr = 9,
    /// The bytes at an address stored in the structure the argument points to: in its 64-bit
    /// field number `field` (clone3's struct clone_args: the TID the kernel wrote for the new
    /// task at parent_tid, field 3; the pidfd, field 1). Fault: no address there.
    Deref = 10,
    /// Of an exit that did not return after its entry instruction (Event::redirected): the
    /// 8-byte address it would have returned to, then the top of the user stack at the return
    /// (where Linux puts a signal frame). Not a rule: the listener adds it by itself.
    Stack = 11,
    /// The fields of the object the context word points to (Listener::set_context_fields),
    /// as they were at the event: their bytes concatenated in the order asked; `field` holds
    /// how many fields they are. Not a rule: the listener adds it to every event it can.
    Context = 12,
    /// Bytes at the event's stack pointer plus 8 x len_arg (CaptureRule::len_arg: 0..255),
    /// shown with argument arg: rt_sigreturn's signal frame (the mask it restores).
    StackAt = 13
};
/// The iovec entries whose buffers an IovecData capture holds at most.
inline constexpr std::size_t kIovecDataEntries = 16;
enum class CaptureStatus : uint8_t { Ok = 0, Fault = 1, Truncated = 2, Partial = 3 };

/// A captured argument buffer; data points into the Event's storage.
struct Capture {
    uint8_t arg;  ///< argument index 0..5
    CaptureKind kind;
    CaptureStatus status;
    std::string_view data;
    uint8_t field = 0;  ///< Deref: the structure's field that held the address
};

/// The plain fields of an Event (everything but the captured bytes).
struct EventFields {
    unsigned vcpu = 0;
    EventType type = EventType::Syscall;
    Direction direction = Direction::Enter;
    bool compat = false;  ///< 32-bit ABI (i386 numbers)
    uint64_t seq = 0;     ///< per-vCPU sequence number, from 1
    /// Exits: the paired entry's vCPU and seq (0 = no known entry, see unpaired).
    unsigned entry_vcpu = 0;
    uint64_t entry_seq = 0;
    ExitInsn exit_insn = ExitInsn::None;
    bool unpaired = false;  ///< exit without a known entry (fork child, entered before attach)
    bool fallback = false;  ///< paired by vCPU because the call changed the thread (execve)
    /// The return did not go back after the entry instruction (a signal handler runs, a new
    /// program starts): RAX may not hold the call's result (see the Stack capture).
    bool redirected = false;
    uint64_t nr = 0;        ///< system call number (exits: of the paired entry)
    std::array<uint64_t, 6> args{};  ///< arguments by ABI (exits: of the paired entry)
    Registers regs{};
    SpecialRegisters sregs{};
    /// Registers read at this event (reg_bit). The others hold what the vCPU's last event that
    /// read them found: by default the TCG listener reads only the registers that define a call
    /// (number, arguments, stack and instruction pointers, rcx/r11, the address space and TLS
    /// bases) and the rest every 256th event (TcgOptions::all_registers reads all).
    uint32_t fresh = kAllRegisters;
    uint64_t host_time_ns = 0;   ///< host CLOCK_REALTIME when the event happened
    uint64_t guest_time_ns = 0;  ///< guest (virtual) time since the vCPUs first ran; 0 = unknown
    /// The word a backend asked for with Listener::set_context_word, read at the event (for
    /// Linux the current task_struct); 0 = not asked for or unreadable.
    uint64_t context = 0;
};

/// One system-call entry or exit on one vCPU.
struct Event : EventFields {
    std::vector<Capture> captures;
    std::vector<char> capture_storage;  ///< backing bytes of captures (reused between events)

    Event() = default;
    // A copy's captures view the copy's own storage.
    Event(const Event& o) { *this = o; }
    Event& operator=(const Event& o) {
        if (this == &o) return *this;
        static_cast<EventFields&>(*this) = o;
        capture_storage = o.capture_storage;
        captures = o.captures;
        for (auto& c : captures) {
            auto off = static_cast<std::size_t>(c.data.data() - o.capture_storage.data());
            c.data = std::string_view(capture_storage.data() + off, c.data.size());
        }
        return *this;
    }
    Event(Event&&) noexcept = default;  // a moved vector keeps its buffer: views stay valid
    Event& operator=(Event&&) noexcept = default;

    /// The return value on exits (sign-extended from 32 bits for the compat ABI).
    int64_t ret() const {
        return compat ? static_cast<int32_t>(regs.rax) : static_cast<int64_t>(regs.rax);
    }
    /// The bytes captured at the argument's address (nullptr: none).
    const Capture* capture(unsigned arg) const {
        for (const auto& c : captures) {
            if (c.arg == arg && c.kind != CaptureKind::IovecData && c.kind != CaptureKind::Deref &&
                c.kind != CaptureKind::Stack && c.kind != CaptureKind::Context) {
                return &c;
            }
        }
        return nullptr;
    }
    /// What the structure argument arg pointed to through its field `field`, when captured.
    const Capture* deref(unsigned arg, unsigned field) const {
        for (const auto& c : captures) {
            if (c.arg == arg && c.kind == CaptureKind::Deref && c.field == field) return &c;
        }
        return nullptr;
    }
    /// The buffers of the iovec array argument arg, when they were captured.
    const Capture* iovec_data(unsigned arg) const {
        for (const auto& c : captures) {
            if (c.arg == arg && c.kind == CaptureKind::IovecData) return &c;
        }
        return nullptr;
    }
    /// A capture the listener added by itself (Stack, Context), if any.
    const Capture* added_capture(CaptureKind kind) const {
        for (const auto& c : captures) {
            if (c.kind == kind) return &c;
        }
        return nullptr;
    }
};

}  // namespace nitro
