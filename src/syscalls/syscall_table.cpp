// SPDX-License-Identifier: MIT
#include "nitro/syscall_table.h"

#include <algorithm>
#include <iterator>

#include "syscall_data.h"

namespace nitro {
namespace {

const detail::AbiTableData& abi_table(Abi abi) {
    auto i = static_cast<std::size_t>(abi);
    // An out-of-range Abi can only come from a cast; fall back rather than read past the end.
    return detail::kAbiTables[i < kAbiCount ? i : 0];
}

// Spec spellings, indexed by enum value.
constexpr std::string_view kArgTypeNames[] = {
    "none",         "int",         "uint",      "long",       "ulong", "size",
    "ssize",        "hex",         "ptr",       "fd",         "dirfd", "cstring",
    "buf_in",       "buf_out",     "iovec_in",  "iovec_out",  "argv",  "sockaddr",
    "sockaddr_out", "socklen_ptr", "struct_in", "struct_out", "msghdr_in", "msghdr_out",
    "mmsghdr",      "int_out",     "mmsghdr_out", "buf_out_lenptr", "pollfd", "epoll_events", "fd_set", "sigframe", "flags", "enum"};
static_assert(std::size(kArgTypeNames) == static_cast<std::size_t>(ArgType::Enum) + 1);

constexpr std::string_view kRetKindNames[] = {"int", "long", "fd", "ptr", "size", "void"};
static_assert(std::size(kRetKindNames) == static_cast<std::size_t>(RetKind::Void) + 1);

}  // namespace

const SyscallInfo* lookup_syscall(Abi abi, std::uint64_t nr) {
    const auto& t = abi_table(abi);
    // The number comes straight from a guest register: anything is possible.
    if (nr >= t.index.size()) {
        return nullptr;
    }
    std::uint16_t pos = t.index[nr];
    return pos == detail::kNoSyscall ? nullptr : &t.syscalls[pos];
}

std::optional<std::uint64_t> syscall_number(Abi abi, std::string_view name) {
    const auto& t = abi_table(abi);
    auto it =
        std::lower_bound(t.by_name.begin(), t.by_name.end(), name,
                         [](const detail::NameIndex& e, std::string_view n) { return e.name < n; });
    if (it == t.by_name.end() || it->name != name) {
        return std::nullopt;
    }
    return it->nr;
}

std::span<const SyscallInfo> syscall_table(Abi abi) { return abi_table(abi).syscalls; }

std::string_view abi_name(Abi abi) { return abi_table(abi).name; }

std::string_view arg_type_name(ArgType type) {
    auto i = static_cast<std::size_t>(type);
    return i < std::size(kArgTypeNames) ? kArgTypeNames[i] : "?";
}

std::string_view ret_kind_name(RetKind kind) {
    auto i = static_cast<std::size_t>(kind);
    return i < std::size(kRetKindNames) ? kRetKindNames[i] : "?";
}

bool is_integer_type(ArgType type) {
    switch (type) {
        case ArgType::Int:
        case ArgType::Uint:
        case ArgType::Long:
        case ArgType::Ulong:
        case ArgType::Size:
        case ArgType::Ssize:
        case ArgType::Hex:
            return true;
        default:
            return false;
    }
}

}  // namespace nitro
