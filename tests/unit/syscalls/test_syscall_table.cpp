// SPDX-License-Identifier: MIT
// Invariants of the generated system call tables, and anchors that pin them to the kernel's
// numbering. A broken spec line fails here with the syscall's name in the message.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>

#include "nitro/syscall_table.h"

namespace nitro {
namespace {

constexpr Abi kAbis[] = {Abi::X86_64, Abi::I386};

std::string describe(Abi abi, const SyscallInfo& sc) {
    return std::string(abi_name(abi)) + " " + std::string(sc.name);
}

TEST(SyscallTable, NumbersAreSortedUniqueAndFoundByLookup) {
    for (Abi abi : kAbis) {
        auto table = syscall_table(abi);
        ASSERT_FALSE(table.empty()) << abi_name(abi);
        for (std::size_t i = 0; i < table.size(); ++i) {
            const SyscallInfo& sc = table[i];
            if (i > 0) {
                EXPECT_LT(table[i - 1].nr, sc.nr) << describe(abi, sc);
            }
            EXPECT_EQ(lookup_syscall(abi, sc.nr), &sc) << describe(abi, sc);
            EXPECT_EQ(syscall_number(abi, sc.name), std::optional<std::uint64_t>(sc.nr))
                << describe(abi, sc);
        }
    }
}

TEST(SyscallTable, NamesAreUniquePerAbi) {
    for (Abi abi : kAbis) {
        std::set<std::string_view> names;
        for (const SyscallInfo& sc : syscall_table(abi)) {
            EXPECT_FALSE(sc.name.empty()) << abi_name(abi) << " " << sc.nr;
            EXPECT_TRUE(names.insert(sc.name).second) << describe(abi, sc) << " repeats";
        }
    }
}

// x86-64 numbers run 0..334 and 424..450; 335..423 are skipped so that new calls share
// numbers with the 32-bit table.
TEST(SyscallTable, X86_64IsDenseWhereTheKernelIs) {
    for (std::uint64_t nr = 0; nr <= 450; ++nr) {
        bool expected = nr <= 334 || nr >= 424;
        EXPECT_EQ(lookup_syscall(Abi::X86_64, nr) != nullptr, expected) << "x86_64 " << nr;
    }
    EXPECT_EQ(syscall_table(Abi::X86_64).size(), 362u);
}

TEST(SyscallTable, I386IsDenseExceptTheKernelsHoles) {
    const std::set<std::uint64_t> holes = {222, 223, 251, 285, 387, 388, 389, 390, 391, 392, 415};
    for (std::uint64_t nr = 0; nr <= 450; ++nr) {
        EXPECT_EQ(lookup_syscall(Abi::I386, nr) != nullptr, !holes.contains(nr)) << "i386 " << nr;
    }
    EXPECT_EQ(syscall_table(Abi::I386).size(), 440u);
}

TEST(SyscallTable, ArgumentsAreWellFormed) {
    for (Abi abi : kAbis) {
        for (const SyscallInfo& sc : syscall_table(abi)) {
            SCOPED_TRACE(describe(abi, sc));
            ASSERT_LE(sc.nargs, kMaxSyscallArgs);
            EXPECT_EQ(sc.arguments().size(), sc.nargs);
            std::set<std::string_view> arg_names;
            for (std::size_t i = 0; i < kMaxSyscallArgs; ++i) {
                const ArgInfo& a = sc.args[i];
                if (i >= sc.nargs) {
                    EXPECT_EQ(a.type, ArgType::None) << "slot " << i << " beyond nargs";
                    continue;
                }
                SCOPED_TRACE(std::string(a.name));
                EXPECT_NE(a.type, ArgType::None);
                EXPECT_FALSE(a.name.empty());
                EXPECT_TRUE(arg_names.insert(a.name).second) << "argument name repeats";
                bool struct_type = a.type == ArgType::StructIn || a.type == ArgType::StructOut;
                EXPECT_EQ(!a.tag.empty(), struct_type) << "tag only on structures";
                switch (a.type) {
                    case ArgType::BufOut:
                        if (a.length_is_return_value()) {
                            break;
                        }
                        [[fallthrough]];
                    case ArgType::BufIn:
                    case ArgType::IovecIn:
                    case ArgType::IovecOut:
                    case ArgType::Mmsghdr:
                    case ArgType::MmsghdrOut:
                    case ArgType::Pollfd:
                    case ArgType::EpollEvents:
                    case ArgType::FdSet:
                    case ArgType::Sockaddr: {
                        auto len = a.length_arg();
                        ASSERT_TRUE(len.has_value());
                        ASSERT_LT(*len, sc.nargs);
                        EXPECT_NE(*len, i);
                        EXPECT_TRUE(is_integer_type(sc.args[*len].type))
                            << "length " << sc.args[*len].name << " is "
                            << arg_type_name(sc.args[*len].type);
                        break;
                    }
                    case ArgType::SockaddrOut:
                    case ArgType::BufOutLenPtr: {
                        auto len = a.length_arg();
                        ASSERT_TRUE(len.has_value());
                        ASSERT_LT(*len, sc.nargs);
                        EXPECT_EQ(sc.args[*len].type, ArgType::SocklenPtr);
                        break;
                    }
                    case ArgType::Flags:
                    case ArgType::Enum:
                        ASSERT_LT(a.aux, kFlagTableCount) << "flag table does not exist";
                        EXPECT_EQ(flag_table_kind(a.table()),
                                  a.type == ArgType::Flags ? XlatKind::Flags : XlatKind::Enum);
                        EXPECT_FALSE(a.length_arg().has_value());
                        break;
                    default:
                        EXPECT_EQ(a.aux, kNoAux) << arg_type_name(a.type) << " has no aux";
                        EXPECT_FALSE(a.length_arg().has_value());
                        break;
                }
            }
        }
    }
}

TEST(SyscallTable, HandlersFollowTheKernelConvention) {
    for (const SyscallInfo& sc : syscall_table(Abi::X86_64)) {
        EXPECT_TRUE(sc.handler.starts_with("__x64_sys_")) << sc.name << ": " << sc.handler;
        EXPECT_EQ(sc.implemented, sc.handler != "__x64_sys_ni_syscall") << sc.name;
    }
    for (const SyscallInfo& sc : syscall_table(Abi::I386)) {
        EXPECT_TRUE(sc.handler.starts_with("__ia32_sys_") ||
                    sc.handler.starts_with("__ia32_compat_sys_"))
            << sc.name << ": " << sc.handler;
        EXPECT_EQ(sc.implemented, sc.handler != "__ia32_sys_ni_syscall") << sc.name;
    }
    EXPECT_EQ(lookup_syscall(Abi::X86_64, 257)->handler, "__x64_sys_openat");
    EXPECT_EQ(lookup_syscall(Abi::X86_64, 4)->handler, "__x64_sys_newstat");
    EXPECT_EQ(lookup_syscall(Abi::X86_64, 63)->handler, "__x64_sys_newuname");
    EXPECT_FALSE(lookup_syscall(Abi::X86_64, 134)->implemented);  // uselib
    EXPECT_EQ(lookup_syscall(Abi::I386, 3)->handler, "__ia32_sys_read");
    EXPECT_EQ(lookup_syscall(Abi::I386, 5)->handler, "__ia32_compat_sys_open");
    EXPECT_EQ(lookup_syscall(Abi::I386, 192)->handler, "__ia32_sys_mmap_pgoff");
    EXPECT_EQ(lookup_syscall(Abi::I386, 180)->handler, "__ia32_sys_ia32_pread64");
    EXPECT_FALSE(lookup_syscall(Abi::I386, 17)->implemented);  // break
}

struct Anchor {
    std::uint64_t nr;
    std::string_view name;
};

TEST(SyscallTable, X86_64Anchors) {
    const Anchor anchors[] = {
        {0, "read"},     {1, "write"},    {2, "open"},      {39, "getpid"},
        {59, "execve"},  {60, "exit"},    {110, "getppid"}, {231, "exit_group"},
        {257, "openat"}, {435, "clone3"}, {437, "openat2"}, {450, "set_mempolicy_home_node"}};
    for (const auto& a : anchors) {
        const SyscallInfo* sc = lookup_syscall(Abi::X86_64, a.nr);
        ASSERT_NE(sc, nullptr) << a.nr;
        EXPECT_EQ(sc->name, a.name);
        EXPECT_EQ(syscall_number(Abi::X86_64, a.name), a.nr);
    }
}

TEST(SyscallTable, I386Anchors) {
    const Anchor anchors[] = {{1, "exit"},      {3, "read"},         {5, "open"},
                              {11, "execve"},   {20, "getpid"},      {64, "getppid"},
                              {140, "_llseek"}, {102, "socketcall"}, {192, "mmap2"},
                              {195, "stat64"},  {295, "openat"},     {435, "clone3"}};
    for (const auto& a : anchors) {
        const SyscallInfo* sc = lookup_syscall(Abi::I386, a.nr);
        ASSERT_NE(sc, nullptr) << a.nr;
        EXPECT_EQ(sc->name, a.name);
        EXPECT_EQ(syscall_number(Abi::I386, a.name), a.nr);
    }
}

TEST(SyscallTable, UnknownNumbersAndNames) {
    EXPECT_EQ(lookup_syscall(Abi::X86_64, 335), nullptr);
    EXPECT_EQ(lookup_syscall(Abi::X86_64, 451), nullptr);
    EXPECT_EQ(lookup_syscall(Abi::X86_64, 0x40000000), nullptr);  // x32 bit
    EXPECT_EQ(lookup_syscall(Abi::X86_64, std::numeric_limits<std::uint64_t>::max()), nullptr);
    EXPECT_EQ(lookup_syscall(Abi::I386, 222), nullptr);
    EXPECT_EQ(syscall_number(Abi::X86_64, "mmap2"), std::nullopt);
    EXPECT_EQ(syscall_number(Abi::X86_64, ""), std::nullopt);
    EXPECT_EQ(syscall_number(Abi::I386, "newfstatat"), std::nullopt);
    EXPECT_EQ(syscall_number(Abi::I386, "zzz"), std::nullopt);
}

// Argument types as "name:type" joined by spaces, for compact expectations.
std::string signature(Abi abi, std::string_view name) {
    auto nr = syscall_number(abi, name);
    if (!nr) {
        return "<missing>";
    }
    const SyscallInfo* sc = lookup_syscall(abi, *nr);
    std::string out;
    for (const ArgInfo& a : sc->arguments()) {
        if (!out.empty()) {
            out += ' ';
        }
        out += std::string(a.name) + ':';
        if (a.type == ArgType::Flags || a.type == ArgType::Enum) {
            out += flag_table_name(a.table());
        } else {
            out += arg_type_name(a.type);
        }
        if (a.length_is_return_value()) {
            out += "(ret)";
        } else if (auto len = a.length_arg()) {
            out += "(" + std::string(sc->args[*len].name) + ")";
        } else if (!a.tag.empty()) {
            out += "(" + std::string(a.tag) + ")";
        }
    }
    return out + " -> " + std::string(ret_kind_name(sc->ret));
}

TEST(SyscallTable, TypedFamiliesX86_64) {
    const Abi x = Abi::X86_64;
    EXPECT_EQ(signature(x, "read"), "fd:fd buf:buf_out(ret) count:size -> size");
    EXPECT_EQ(signature(x, "write"), "fd:fd buf:buf_in(count) count:size -> size");
    EXPECT_EQ(signature(x, "openat"),
              "dirfd:dirfd pathname:cstring flags:open_flags mode:mode_t -> fd");
    EXPECT_EQ(signature(x, "openat2"),
              "dirfd:dirfd pathname:cstring how:struct_in(open_how) size:size -> fd");
    EXPECT_EQ(signature(x, "newfstatat"),
              "dirfd:dirfd pathname:cstring statbuf:struct_out(stat) flags:at_flags -> int");
    EXPECT_EQ(signature(x, "execve"), "pathname:cstring argv:argv envp:argv -> int");
    EXPECT_EQ(signature(x, "mmap"),
              "addr:ptr length:size prot:prot flags:map_flags fd:fd offset:hex -> ptr");
    EXPECT_EQ(signature(x, "clone"),
              "flags:clone_flags stack:ptr parent_tid:int_out child_tid:ptr tls:ulong -> int");
    EXPECT_EQ(signature(x, "kill"), "pid:int sig:signal -> int");
    EXPECT_EQ(signature(x, "socket"), "domain:af type:sock_type protocol:int -> fd");
    EXPECT_EQ(signature(x, "connect"), "sockfd:fd addr:sockaddr(addrlen) addrlen:int -> int");
    EXPECT_EQ(signature(x, "accept4"),
              "sockfd:fd addr:sockaddr_out(addrlen) addrlen:socklen_ptr flags:sock_flags -> fd");
    EXPECT_EQ(signature(x, "readv"), "fd:fd iov:iovec_out(iovcnt) iovcnt:int -> size");
    EXPECT_EQ(signature(x, "wait4"),
              "pid:int wstatus:struct_out(wait_status) options:wait_options "
              "rusage:struct_out(rusage) -> int");
    EXPECT_EQ(signature(x, "exit_group"), "status:int -> void");
    EXPECT_EQ(signature(x, "getpid"), " -> int");
    EXPECT_EQ(signature(x, "faccessat2"),
              "dirfd:dirfd pathname:cstring mode:access_mode flags:faccessat_flags -> int");
}

TEST(SyscallTable, TypedFamiliesI386) {
    const Abi x = Abi::I386;
    EXPECT_EQ(signature(x, "mmap2"),
              "addr:ptr length:size prot:prot flags:map_flags fd:fd pgoffset:ulong -> ptr");
    EXPECT_EQ(signature(x, "_llseek"),
              "fd:fd offset_high:ulong offset_low:ulong result:struct_out(loff_t) "
              "whence:whence -> int");
    EXPECT_EQ(signature(x, "socketcall"), "call:int args:ptr -> int");
    EXPECT_EQ(signature(x, "pread64"),
              "fd:fd buf:buf_out(ret) count:size offset_low:uint offset_high:uint -> size");
    EXPECT_EQ(signature(x, "clone"),
              "flags:clone_flags stack:ptr parent_tid:int_out tls:ulong child_tid:ptr -> int");
    EXPECT_EQ(signature(x, "stat64"), "pathname:cstring statbuf:struct_out(stat64) -> int");
}

// Every family the decoders print in detail exists under its name in both ABIs.
TEST(SyscallTable, FamiliesExist) {
    const std::string_view common[] = {"open",         "openat",
                                       "openat2",      "creat",
                                       "stat",         "lstat",
                                       "fstat",        "statx",
                                       "access",       "faccessat",
                                       "faccessat2",   "unlink",
                                       "unlinkat",     "rename",
                                       "renameat",     "renameat2",
                                       "mkdir",        "mkdirat",
                                       "rmdir",        "chdir",
                                       "readlink",     "readlinkat",
                                       "execve",       "execveat",
                                       "read",         "write",
                                       "pread64",      "pwrite64",
                                       "readv",        "writev",
                                       "close",        "dup",
                                       "dup2",         "dup3",
                                       "clone",        "clone3",
                                       "fork",         "vfork",
                                       "exit",         "exit_group",
                                       "wait4",        "kill",
                                       "tgkill",       "getpid",
                                       "getppid",      "gettid",
                                       "mprotect",     "munmap",
                                       "brk",          "socket",
                                       "connect",      "bind",
                                       "listen",       "accept4",
                                       "sendto",       "recvfrom",
                                       "ioctl",        "lseek",
                                       "pipe",         "pipe2",
                                       "arch_prctl",   "set_tid_address",
                                       "rt_sigaction", "rt_sigprocmask",
                                       "nanosleep",    "getrandom",
                                       "uname"};
    for (auto name : common) {
        EXPECT_TRUE(syscall_number(Abi::X86_64, name).has_value()) << "x86_64 " << name;
        EXPECT_TRUE(syscall_number(Abi::I386, name).has_value()) << "i386 " << name;
    }
    for (auto name : {"mmap", "newfstatat", "accept"}) {
        EXPECT_TRUE(syscall_number(Abi::X86_64, name).has_value()) << name;
    }
    for (auto name : {"mmap2", "_llseek", "socketcall", "stat64", "fstatat64", "waitpid"}) {
        EXPECT_TRUE(syscall_number(Abi::I386, name).has_value()) << name;
    }
}

}  // namespace
}  // namespace nitro
