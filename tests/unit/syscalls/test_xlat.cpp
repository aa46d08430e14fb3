// SPDX-License-Identifier: MIT
// Flag and value names as nitro prints them; the expected strings are what strace prints for
// the same values, since strace is the oracle of the guest tests.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "nitro/syscall_table.h"

namespace nitro {
namespace {

TEST(SyscallXlat, OpenFlags) {
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 0), "O_RDONLY");
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 0x80000), "O_RDONLY|O_CLOEXEC");
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 0x241), "O_WRONLY|O_CREAT|O_TRUNC");
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 02 | 0x40000000), "O_RDWR|0x40000000");
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 0x80000 | 0x40000000 | 0x80000000),
              "O_RDONLY|O_CLOEXEC|0xc0000000");
    // Multi-bit names take their bits first; a lone part keeps its own name.
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 04010000), "O_RDONLY|O_SYNC");
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 010000), "O_RDONLY|O_DSYNC");
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 020200002), "O_RDWR|O_TMPFILE");
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 0200000 | 0x80000),
              "O_RDONLY|O_CLOEXEC|O_DIRECTORY");
    // Access mode 3 has no name: printed as a number, not as O_WRONLY|O_RDWR.
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 3), "0x3");
    EXPECT_EQ(format_flags(FlagTable::OpenFlags, 3 | 0100), "0x3|O_CREAT");
}

TEST(SyscallXlat, ProtAndMap) {
    EXPECT_EQ(format_flags(FlagTable::Prot, 0), "PROT_NONE");
    EXPECT_EQ(format_flags(FlagTable::Prot, 3), "PROT_READ|PROT_WRITE");
    EXPECT_EQ(format_flags(FlagTable::Prot, 5), "PROT_READ|PROT_EXEC");
    EXPECT_EQ(format_flags(FlagTable::Prot, 0x11), "PROT_READ|0x10");
    EXPECT_EQ(format_flags(FlagTable::MapFlags, 0x22), "MAP_PRIVATE|MAP_ANONYMOUS");
    EXPECT_EQ(format_flags(FlagTable::MapFlags, 0x812), "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE");
    EXPECT_EQ(format_flags(FlagTable::MapFlags, 0x1), "MAP_SHARED");
    EXPECT_EQ(format_flags(FlagTable::MapFlags, 0x20), "MAP_ANONYMOUS");  // no type: nothing
    EXPECT_EQ(format_flags(FlagTable::MapFlags, 0), "0");
    EXPECT_EQ(format_flags(FlagTable::MapFlags, 0x7), "0x7");
}

TEST(SyscallXlat, CloneFlagsWithExitSignal) {
    // What glibc's fork() passes: the exit signal comes last, as strace prints it.
    EXPECT_EQ(format_flags(FlagTable::CloneFlags, 0x01200011),
              "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD");
    EXPECT_EQ(format_flags(FlagTable::CloneFlags, 0x3d0f00),
              "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|"
              "CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID");
    EXPECT_EQ(format_flags(FlagTable::CloneFlags, 0x4111), "CLONE_VM|CLONE_VFORK|SIGCHLD");
    EXPECT_EQ(format_flags(FlagTable::CloneFlags, 0x100000000ULL), "CLONE_CLEAR_SIGHAND");
    EXPECT_EQ(format_flags(FlagTable::CloneFlags, 0), "0");
    EXPECT_EQ(format_flags(FlagTable::CloneFlags, 0x100 | 34), "CLONE_VM|SIGRTMIN+2");
    EXPECT_EQ(format_flags(FlagTable::CloneFlags, 0x100 | 0x7f), "CLONE_VM|0x7f");
}

TEST(SyscallXlat, Signals) {
    EXPECT_EQ(format_enum(FlagTable::Signal, 9), "SIGKILL");
    EXPECT_EQ(format_enum(FlagTable::Signal, 1), "SIGHUP");
    EXPECT_EQ(format_enum(FlagTable::Signal, 31), "SIGSYS");
    EXPECT_EQ(format_enum(FlagTable::Signal, 32), "SIGRTMIN");
    EXPECT_EQ(format_enum(FlagTable::Signal, 35), "SIGRTMIN+3");
    EXPECT_EQ(format_enum(FlagTable::Signal, 64), "SIGRTMIN+32");
    EXPECT_EQ(format_enum(FlagTable::Signal, 65), "65");
    EXPECT_EQ(format_enum(FlagTable::Signal, 0), "0");
    EXPECT_EQ(format_enum(FlagTable::Signal, -1), "-1");
    EXPECT_EQ(signal_name(11), "SIGSEGV");
    EXPECT_EQ(signal_name(17), "SIGCHLD");
    EXPECT_EQ(signal_name(100), "100");
}

TEST(SyscallXlat, ErrnoNames) {
    EXPECT_EQ(errno_name(2), "ENOENT");
    EXPECT_EQ(errno_name(1), "EPERM");
    EXPECT_EQ(errno_name(11), "EAGAIN");
    EXPECT_EQ(errno_name(38), "ENOSYS");
    EXPECT_EQ(errno_name(133), "EHWPOISON");
    EXPECT_EQ(errno_name(512), "ERESTARTSYS");
    EXPECT_EQ(errno_name(516), "ERESTART_RESTARTBLOCK");
    EXPECT_EQ(errno_name(0), "");
    EXPECT_EQ(errno_name(41), "");  // unused number
    EXPECT_EQ(errno_name(134), "");
    EXPECT_EQ(errno_name(-2), "");
    for (int e = 1; e <= 133; ++e) {
        if (e != 41 && e != 58) {
            EXPECT_FALSE(errno_name(e).empty()) << e;
        }
    }
}

TEST(SyscallXlat, Sockets) {
    EXPECT_EQ(format_enum(FlagTable::Af, 1), "AF_UNIX");
    EXPECT_EQ(format_enum(FlagTable::Af, 2), "AF_INET");
    EXPECT_EQ(format_enum(FlagTable::Af, 10), "AF_INET6");
    EXPECT_EQ(format_enum(FlagTable::Af, 16), "AF_NETLINK");
    EXPECT_EQ(format_enum(FlagTable::Af, 99), "99");
    EXPECT_EQ(format_flags(FlagTable::SockType, 1), "SOCK_STREAM");
    EXPECT_EQ(format_flags(FlagTable::SockType, 0x80802), "SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK");
    EXPECT_EQ(format_flags(FlagTable::SockFlags, 0x80000), "SOCK_CLOEXEC");
    EXPECT_EQ(format_flags(FlagTable::SockFlags, 0), "0");
    EXPECT_EQ(format_flags(FlagTable::MsgFlags, 0x4040), "MSG_DONTWAIT|MSG_NOSIGNAL");
}

TEST(SyscallXlat, WaitAccessAt) {
    EXPECT_EQ(format_flags(FlagTable::WaitOptions, 0), "0");
    EXPECT_EQ(format_flags(FlagTable::WaitOptions, 0x40000001), "WNOHANG|__WALL");
    EXPECT_EQ(format_flags(FlagTable::AccessMode, 0), "F_OK");
    EXPECT_EQ(format_flags(FlagTable::AccessMode, 6), "R_OK|W_OK");
    EXPECT_EQ(format_flags(FlagTable::AccessMode, 1), "X_OK");
    EXPECT_EQ(format_flags(FlagTable::AtFlags, 0x100), "AT_SYMLINK_NOFOLLOW");
    EXPECT_EQ(format_flags(FlagTable::AtFlags, 0x1200), "AT_REMOVEDIR|AT_EMPTY_PATH");
    EXPECT_EQ(format_flags(FlagTable::FaccessatFlags, 0x200), "AT_EACCESS");
    EXPECT_EQ(format_enum(FlagTable::AtFdcwd, -100), "AT_FDCWD");
    EXPECT_EQ(format_enum(FlagTable::AtFdcwd, 3), "3");
    EXPECT_EQ(format_flags(FlagTable::StatxMask, 0x7ff), "STATX_BASIC_STATS");
    EXPECT_EQ(format_flags(FlagTable::StatxMask, 0xfff), "STATX_ALL");  // strace names it
    EXPECT_EQ(format_flags(FlagTable::StatxMask, 0x3), "STATX_TYPE|STATX_MODE");
    EXPECT_EQ(format_enum(FlagTable::Whence, 2), "SEEK_END");
    EXPECT_EQ(format_enum(FlagTable::Whence, 7), "7");
    EXPECT_EQ(format_enum(FlagTable::ArchPrctlCode, 0x1002), "ARCH_SET_FS");
}

TEST(SyscallXlat, Mode) {
    EXPECT_EQ(format_flags(FlagTable::Mode, 0644), "0644");
    EXPECT_EQ(format_flags(FlagTable::Mode, 0755), "0755");
    EXPECT_EQ(format_flags(FlagTable::Mode, 0), "000");
    EXPECT_EQ(format_flags(FlagTable::Mode, 07), "007");
    EXPECT_EQ(format_flags(FlagTable::Mode, 04755), "04755");
    EXPECT_EQ(format_flags(FlagTable::Mode, 0100644), "S_IFREG|0644");
    EXPECT_EQ(format_flags(FlagTable::Mode, 0040755), "S_IFDIR|0755");
    EXPECT_EQ(format_flags(FlagTable::Mode, 0020000), "S_IFCHR|000");
    EXPECT_EQ(format_flags(FlagTable::Mode, 0170644), "0170000|0644");
}

TEST(SyscallXlat, TableMetadata) {
    EXPECT_EQ(flag_table_name(FlagTable::OpenFlags), "open_flags");
    EXPECT_EQ(flag_table_name(FlagTable::Mode), "mode_t");
    EXPECT_EQ(flag_table_kind(FlagTable::OpenFlags), XlatKind::Flags);
    EXPECT_EQ(flag_table_kind(FlagTable::Signal), XlatKind::Enum);
    EXPECT_EQ(find_flag_table("prot"), FlagTable::Prot);
    EXPECT_EQ(find_flag_table("no_such_table"), std::nullopt);
    for (std::size_t i = 0; i < kFlagTableCount; ++i) {
        auto t = static_cast<FlagTable>(i);
        EXPECT_EQ(find_flag_table(flag_table_name(t)), t) << i;
    }
}

TEST(SyscallXlat, KindMismatchAndBadTableIdsDoNotCrash) {
    // A caller holding the wrong function still gets the table's own formatting.
    EXPECT_EQ(format_flags(FlagTable::Signal, 9), "SIGKILL");
    EXPECT_EQ(format_enum(FlagTable::Prot, 3), "PROT_READ|PROT_WRITE");
    auto bogus = static_cast<FlagTable>(200);
    EXPECT_EQ(format_flags(bogus, 0x10), "0x10");
    EXPECT_EQ(format_enum(bogus, -5), "-5");
    EXPECT_EQ(flag_table_name(bogus), "");
}

}  // namespace
}  // namespace nitro
