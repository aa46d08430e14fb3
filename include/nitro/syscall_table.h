// SPDX-License-Identifier: MIT
/// @file
/// System call tables and flag/value name tables of the guest ABIs.
///
/// The data lives in data/syscalls/<abi>.spec and data/xlat/<table>.in; the build turns it
/// into constant C++ arrays (src/syscalls/gen_tables.py). Lookups by number are array
/// indexing; nothing here allocates except the format_* functions' result strings.
#pragma once

#include "nitro/abi.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "nitro/syscall_table_gen.h"  // FlagTable, generated from data/xlat/*.in

namespace nitro {

/// Number of Abi values (nitro/abi.h).
inline constexpr std::size_t kAbiCount = 2;

/// How an argument is decoded. See data/syscalls/x86_64.spec for the spec spelling.
enum class ArgType : std::uint8_t {
    None,         ///< unused argument slot
    Int,          ///< signed 32-bit integer (low half of the register)
    Uint,         ///< unsigned 32-bit integer
    Long,         ///< signed register-wide integer
    Ulong,        ///< unsigned register-wide integer
    Size,         ///< size_t
    Ssize,        ///< ssize_t
    Hex,          ///< integer best printed in hex (masks, ioctl requests)
    Ptr,          ///< opaque guest address
    Fd,           ///< file descriptor
    Dirfd,        ///< directory file descriptor; AT_FDCWD (FlagTable::AtFdcwd) is special
    Cstring,      ///< NUL-terminated string, read at entry up to a bound
    BufIn,        ///< buffer read at entry; aux = index of its length argument
    BufOut,       ///< buffer read at exit; aux = length argument or kAuxReturnValue
    IovecIn,      ///< struct iovec array read at entry; aux = index of the count argument
    IovecOut,     ///< struct iovec array read at exit; aux = index of the count argument
    Argv,         ///< NULL-terminated array of string pointers (execve)
    Sockaddr,     ///< socket address read at entry; aux = index of its length argument
    SockaddrOut,  ///< socket address read at exit; aux = index of the SocklenPtr argument
    SocklenPtr,   ///< pointer to a socklen_t, read at entry and at exit
    StructIn,     ///< kernel structure read at entry; ArgInfo::tag names it ("timespec")
    StructOut,    ///< kernel structure read at exit; ArgInfo::tag names it ("stat")
    MsghdrIn,     ///< struct msghdr read at entry (sendmsg): name, iovec array and buffers
    MsghdrOut,    ///< struct msghdr filled in by the call (recvmsg), read at exit
    Mmsghdr,      ///< struct mmsghdr array (sendmmsg), read at exit; aux = the count argument
    IntOut,       ///< pointer to an int the call writes (clone's parent_tid), "[N]" at exit
    MmsghdrOut,   ///< struct mmsghdr array filled in by the call (recvmmsg); aux = the count
    BufOutLenPtr, ///< buffer filled in by the call, as long as *lenptr says then (getsockopt)
    Pollfd,       ///< struct pollfd array (poll); aux = the count argument
    EpollEvents,  ///< struct epoll_event array filled in (epoll_wait); aux = its room
    FdSet,        ///< descriptor set (select); aux = the argument with its number of bits
    SigFrame,     ///< not a register: the signal frame at the stack pointer (rt_sigreturn)
    Flags,        ///< bit set; aux = FlagTable, print with format_flags
    Enum,         ///< one value; aux = FlagTable, print with format_enum
};

/// How a return value is printed.
enum class RetKind : std::uint8_t {
    Int,   ///< int, or -errno
    Long,  ///< long, or -errno
    Fd,    ///< a new file descriptor, or -errno
    Ptr,   ///< an address (mmap, brk), or -errno
    Size,  ///< a byte count, or -errno
    Void,  ///< does not return (exit, exit_group)
};

/// ArgInfo::aux when the type takes no parameter.
inline constexpr std::uint8_t kNoAux = 0xff;
/// ArgInfo::aux of BufOut when the length is the system call's return value (read).
inline constexpr std::uint8_t kAuxReturnValue = 0xfe;

/// The raw ArgInfo::aux value of a table.
constexpr std::uint8_t table_id(FlagTable t) { return static_cast<std::uint8_t>(t); }

/// One argument of a system call.
struct ArgInfo {
    std::string_view name;         ///< as in the man page ("pathname")
    ArgType type = ArgType::None;  ///< how to decode it
    std::uint8_t aux = kNoAux;     ///< length argument index, kAuxReturnValue or FlagTable
    std::string_view tag;          ///< structure name of StructIn/StructOut, else empty

    /// The FlagTable of a Flags or Enum argument.
    FlagTable table() const { return static_cast<FlagTable>(aux); }
    /// Index of the argument holding this one's length or count, if there is one.
    std::optional<std::size_t> length_arg() const {
        if (aux >= kAuxReturnValue || type == ArgType::Flags || type == ArgType::Enum) {
            return std::nullopt;
        }
        return aux;
    }
    /// True for a BufOut whose length is the return value.
    bool length_is_return_value() const { return aux == kAuxReturnValue; }
};

/// Maximum number of system call arguments (all passed in registers).
inline constexpr std::size_t kMaxSyscallArgs = 6;

/// One system call of one ABI.
struct SyscallInfo {
    std::uint32_t nr = 0;         ///< number in this ABI
    std::string_view name;        ///< user-visible name ("openat", "mmap2")
    std::string_view handler;     ///< kernel entry symbol, e.g. "__x64_sys_openat" (full_name)
    RetKind ret = RetKind::Long;  ///< how to print the return value
    std::uint8_t nargs = 0;       ///< number of arguments, 0..6
    std::array<ArgInfo, kMaxSyscallArgs> args{};  ///< the first nargs are used
    bool implemented = true;  ///< false: reserved number, the kernel runs sys_ni_syscall

    /// The used argument slots.
    std::span<const ArgInfo> arguments() const { return {args.data(), nargs}; }
};

/// The system call numbered `nr` in `abi`, or nullptr for an unknown number.
const SyscallInfo* lookup_syscall(Abi abi, std::uint64_t nr);

/// The number of the system call named `name` in `abi` (e.g. "openat" -> 257).
std::optional<std::uint64_t> syscall_number(Abi abi, std::string_view name);

/// Every system call of `abi`, ordered by number.
std::span<const SyscallInfo> syscall_table(Abi abi);

/// "x86_64" or "i386".
std::string_view abi_name(Abi abi);
/// The spec spelling of a type ("buf_out"); Flags and Enum give "flags" and "enum".
std::string_view arg_type_name(ArgType type);
/// The spec spelling of a return kind ("fd").
std::string_view ret_kind_name(RetKind kind);
/// True for the integer types (Int, Uint, Long, Ulong, Size, Ssize, Hex).
bool is_integer_type(ArgType type);

/// Whether a name table holds bits or values.
enum class XlatKind : std::uint8_t {
    Flags,  ///< bit set, printed "A|B|0x40"
    Enum,   ///< single value, printed "A" or as a number
};

/// The file name stem of a table ("open_flags").
std::string_view flag_table_name(FlagTable table);
/// Whether `table` holds bits or values.
XlatKind flag_table_kind(FlagTable table);
/// The table whose file is data/xlat/<name>.in.
std::optional<FlagTable> find_flag_table(std::string_view name);

/// Names the bits of `value`: "O_RDONLY|O_CLOEXEC", "PROT_READ|PROT_WRITE",
/// "CLONE_VM|SIGCHLD", "S_IFREG|0644". Bits without a name print as one hex remainder
/// ("O_RDONLY|0x40000000"); zero prints the table's zero name (PROT_NONE, F_OK) or "0".
/// An enum table is printed as by format_enum.
std::string format_flags(FlagTable table, std::uint64_t value);

/// Names a value: "SIGKILL", "SIGRTMIN+3", "AF_INET", "SEEK_END"; an unknown value prints
/// as a decimal number. Pass int arguments sign-extended from 32 bits (AT_FDCWD is -100).
/// A flags table is printed as by format_flags.
std::string format_enum(FlagTable table, std::int64_t value);

/// The name of an errno value, e.g. "ENOENT" for 2, including the kernel-internal ones
/// such as "ERESTARTSYS" (512); empty if unknown.
std::string_view errno_name(int err);

/// The name of a signal ("SIGSEGV", "SIGRTMIN+2"), or its number as text if unknown.
std::string signal_name(int sig);

}  // namespace nitro
