// SPDX-License-Identifier: MIT
// The argument printers: strace's quoting, truncation, flags, errno, structures and raw
// addresses, from captures or from (fake) guest memory, including hostile input.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "../guest_bytes.h"
#include "decode/decode.h"

namespace nitro::decode {
namespace {

const SyscallInfo& call(std::string_view name, Abi abi = Abi::X86_64) {
    for (std::uint64_t nr = 0; nr < 1024; ++nr) {
        const SyscallInfo* info = lookup_syscall(abi, nr);
        if (info && info->name == name) return *info;
    }
    throw std::runtime_error("no such call");
}

Capture cap(unsigned arg, CaptureKind kind, std::string_view data,
            CaptureStatus status = CaptureStatus::Ok) {
    return Capture{static_cast<std::uint8_t>(arg), kind, status, data};
}

TEST(Quote, EscapesLikeStrace) {
    EXPECT_EQ(quote("Hello World!", 32), "\"Hello World!\"");
    EXPECT_EQ(quote("a\nb\tc\"d\\e", 32), "\"a\\nb\\tc\\\"d\\\\e\"");
    // Non-printable bytes in octal, as short as possible unless an octal digit follows (8 and
    // 9 cannot continue an octal escape: strace prints "\18").
    EXPECT_EQ(quote(std::string_view("\x01\0\xff", 3), 32), "\"\\1\\0\\377\"");
    EXPECT_EQ(quote(std::string_view("\x01" "7\0" "0", 4), 32), "\"\\0017\\0000\"");
    EXPECT_EQ(quote(std::string_view("\x01" "8\0" "9", 4), 32), "\"\\18\\09\"");
    EXPECT_EQ(quote("\x7f\r\v\f", 32), "\"\\177\\r\\v\\f\"");
    EXPECT_EQ(quote("", 32), "\"\"");
    // Random bytes: every byte in hex, printable or not.
    EXPECT_EQ(quote("U>\x01", 32, false, true), "\"\\x55\\x3e\\x01\"");
}

TEST(Quote, TruncatesAfterLimit) {
    std::string s(40, 'x');
    EXPECT_EQ(quote(s, 32), "\"" + std::string(32, 'x') + "\"...");
    EXPECT_EQ(quote(std::string(32, 'x'), 32), "\"" + std::string(32, 'x') + "\"");
    // The source was cut (capture bound): "..." even below the limit.
    EXPECT_EQ(quote("abc", 32, true), "\"abc\"...");
}

TEST(Errno, NamesAndMessages) {
    EXPECT_EQ(format_errno(2), "ENOENT (No such file or directory)");
    EXPECT_EQ(format_errno(512), "ERESTARTSYS (To be restarted if SA_RESTART is set)");
    EXPECT_EQ(format_errno(100000), "100000");
}

TEST(Return, ErrorsAndKinds) {
    const auto& openat = call("openat");
    EXPECT_EQ(format_return(&openat, 3, false).text, "3");
    auto r = format_return(&openat, -2, false);
    EXPECT_EQ(r.text, "-1 ENOENT (No such file or directory)");
    EXPECT_EQ(r.errno_name, "ENOENT");
    EXPECT_EQ(format_return(&call("mmap"), 0x7f0000001000, false).text, "0x7f0000001000");
    EXPECT_EQ(format_return(&call("exit_group"), 0, false).text, "?");
    EXPECT_EQ(format_return(nullptr, 5, false).text, "5");
}

TEST(Args, OpenatWithCapturedPath) {
    const auto& openat = call("openat");
    ArgContext ctx;
    ctx.args = {static_cast<std::uint64_t>(-100), 0x1000, 02000000 /* O_CLOEXEC */, 0, 0, 0};
    EXPECT_EQ(format_arg(openat, 0, ctx), "AT_FDCWD");
    Capture c = cap(1, CaptureKind::CString, "/etc/passwd");
    ctx.capture = &c;
    EXPECT_EQ(format_arg(openat, 1, ctx), "\"/etc/passwd\"");
    ctx.capture = nullptr;
    EXPECT_EQ(format_arg(openat, 2, ctx), "O_RDONLY|O_CLOEXEC");
    // The mode is shown only when a file may be created.
    EXPECT_EQ(printed_args(openat, ctx.args), 3u);
    ctx.args[2] = 0101;  // O_WRONLY|O_CREAT
    ctx.args[3] = 0644;
    EXPECT_EQ(printed_args(openat, ctx.args), 4u);
    EXPECT_EQ(format_arg(openat, 3, ctx), "0644");
    ctx.args[0] = 3;
    EXPECT_EQ(format_arg(openat, 0, ctx), "3");
}

TEST(Args, MissingOrFaultedCaptureIsTheAddress) {
    const auto& openat = call("openat");
    ArgContext ctx;
    ctx.args = {3, 0x7ffc1234, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(openat, 1, ctx), "0x7ffc1234");
    Capture c = cap(1, CaptureKind::CString, "", CaptureStatus::Fault);
    ctx.capture = &c;
    EXPECT_EQ(format_arg(openat, 1, ctx), "0x7ffc1234");
    ctx.args[1] = 0;
    EXPECT_EQ(format_arg(openat, 1, ctx), "NULL");
    // A string cut by the bound is marked.
    ctx.args[1] = 0x7ffc1234;
    Capture t = cap(1, CaptureKind::CString, "/very/long", CaptureStatus::Truncated);
    ctx.capture = &t;
    EXPECT_EQ(format_arg(openat, 1, ctx), "\"/very/long\"...");
}

TEST(Args, WriteAndReadBuffers) {
    const auto& write = call("write");
    ArgContext ctx;
    ctx.args = {1, 0x1000, 12, 0, 0, 0};
    Capture c = cap(1, CaptureKind::BufLenArg, "Hello World!");
    ctx.capture = &c;
    EXPECT_EQ(format_arg(write, 1, ctx), "\"Hello World!\"");
    EXPECT_EQ(format_arg(write, 2, ctx), "12");
    std::string big(100, 'a');
    Capture b = cap(1, CaptureKind::BufLenArg, big);
    ctx.capture = &b;
    EXPECT_EQ(format_arg(write, 1, ctx), "\"" + std::string(32, 'a') + "\"...");

    const auto& read = call("read");
    ctx.args = {0, 0x2000, 4096, 0, 0, 0};
    Capture r = cap(1, CaptureKind::BufRet, "ls\n");
    ctx.capture = &r;
    EXPECT_EQ(format_arg(read, 1, ctx), "0x2000");  // at entry: not filled yet
    ctx.ret = 3;
    EXPECT_EQ(format_arg(read, 1, ctx), "\"ls\\n\"");
    ctx.ret = -11;  // EAGAIN: strace shows the address
    EXPECT_EQ(format_arg(read, 1, ctx), "0x2000");
}

TEST(Args, ExecveArgvAndEnvironment) {
    const auto& execve = call("execve");
    ArgContext ctx;
    ctx.args = {0x1000, 0x2000, 0x3000, 0, 0, 0};
    std::string argv("ls\0-l\0", 6);
    Capture a = cap(1, CaptureKind::StrArray, argv);
    ctx.capture = &a;
    EXPECT_EQ(format_arg(execve, 1, ctx), "[\"ls\", \"-l\"]");
    std::string env("A=1\0B=2\0C=3\0", 12);
    Capture e = cap(2, CaptureKind::StrArray, env);
    ctx.capture = &e;
    EXPECT_EQ(format_arg(execve, 2, ctx), "0x3000 /* 3 vars */");
    Capture cut =
        cap(1, CaptureKind::StrArray, std::string_view("ls\0-", 4), CaptureStatus::Truncated);
    ctx.capture = &cut;
    EXPECT_EQ(format_arg(execve, 1, ctx), "[\"ls\", \"-\"..., ...]");
}

TEST(Args, SockaddrUnixAndInet) {
    const auto& connect = call("connect");
    ArgContext ctx;
    ctx.args = {3, 0x1000, 16, 0, 0, 0};
    std::string un("\x01\x00/dev/log\0", 11);
    Capture u = cap(1, CaptureKind::BufLenArg, un);
    ctx.capture = &u;
    EXPECT_EQ(format_arg(connect, 1, ctx), "{sa_family=AF_UNIX, sun_path=\"/dev/log\"}");
    std::string in("\x02\x00\x00\x50\x0a\x00\x00\x01", 8);
    Capture i = cap(1, CaptureKind::BufLenArg, in);
    ctx.capture = &i;
    EXPECT_EQ(format_arg(connect, 1, ctx),
              "{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr(\"10.0.0.1\")}");
    // Netlink: the port id and the groups as C's %#08x prints them; the protocol by name.
    const std::pair<std::uint32_t, std::string_view> groups[] = {{0x11, "0x000011"}, {0, "00000000"}};
    for (const auto& [bits, text] : groups) {
        const std::string nl = std::string("\x10\x00\x00\x00", 4) + test_bytes::le32(1234) + test_bytes::le32(bits);
        Capture n = cap(1, CaptureKind::BufLenArg, nl);
        ctx.capture = &n;
        EXPECT_EQ(format_arg(connect, 1, ctx), "{sa_family=AF_NETLINK, nl_pid=1234, nl_groups=" + std::string(text) + "}");
    }
    for (const auto& [protocol, text] : {std::pair<std::uint64_t, std::string_view>{0, "NETLINK_ROUTE"}, {99, "0x63 /* NETLINK_??? */"}}) {
        ctx.args = {16, 3, protocol, 0, 0, 0};
        EXPECT_EQ(format_arg(call("socket"), 2, ctx), text);
    }
}

TEST(Args, CompatUsesLowHalves) {
    const auto& write = call("write");
    ArgContext ctx;
    ctx.compat = true;
    ctx.args = {0xdead000000000001ULL, 0, 0xffffffff00000005ULL, 0, 0, 0};
    EXPECT_EQ(format_arg(write, 0, ctx), "1");
    EXPECT_EQ(format_arg(write, 1, ctx), "NULL");
    EXPECT_EQ(format_arg(write, 2, ctx), "5");
}

TEST(CapturePlan, MatchesArgumentTypes) {
    auto open = capture_plan(call("openat"));
    ASSERT_EQ(open.enter.size(), 1u);
    EXPECT_EQ(open.enter[0].arg, 1);
    EXPECT_EQ(open.enter[0].kind, CaptureKind::CString);
    EXPECT_EQ(open.enter[0].max, kCaptureMax);
    // The path again at the exit, for a page the entry could not read.
    ASSERT_EQ(open.exit.size(), 1u);
    EXPECT_EQ(open.exit[0].arg, 1);
    EXPECT_EQ(open.exit[0].kind, CaptureKind::CString);
    auto write = capture_plan(call("write"));
    ASSERT_EQ(write.enter.size(), 1u);
    EXPECT_EQ(write.enter[0].kind, CaptureKind::BufLenArg);
    EXPECT_EQ(write.enter[0].len_arg, 2);
    auto read = capture_plan(call("read"));
    EXPECT_TRUE(read.enter.empty());
    ASSERT_EQ(read.exit.size(), 1u);
    EXPECT_EQ(read.exit[0].kind, CaptureKind::BufRet);
    auto execve = capture_plan(call("execve"));
    ASSERT_EQ(execve.enter.size(), 3u);
    EXPECT_EQ(execve.enter[1].kind, CaptureKind::StrArray);
    EXPECT_TRUE(execve.exit.empty());  // its exit runs in the new program
    EXPECT_TRUE(capture_plan(call("getpid")).enter.empty());
}

// Guest memory for the decoders: byte regions at addresses; everything else is unreadable.
class FakeMemory final : public MemoryReader {
  public:
    void map(std::uint64_t addr, std::string bytes) { regions_[addr] = std::move(bytes); }
    std::size_t read(std::uint64_t addr, char* out, std::size_t len) const override {
        std::size_t done = 0;
        while (done < len) {
            auto it = regions_.upper_bound(addr + done);
            if (it == regions_.begin()) break;
            --it;
            const std::uint64_t off = addr + done - it->first;
            if (off >= it->second.size()) break;
            const std::size_t n = std::min<std::size_t>(len - done, it->second.size() - off);
            std::memcpy(out + done, it->second.data() + off, n);
            done += n;
        }
        return done;
    }

  private:
    std::map<std::uint64_t, std::string> regions_;
};

using test_bytes::le32;
using test_bytes::le64;
using test_bytes::msghdr64;

// Decoding with guest memory and these register values.
ArgContext with_memory(const FakeMemory& mem, const std::array<std::uint64_t, 6>& args) {
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = args;
    return ctx;
}

// clone and clone3 at the exit: what the kernel wrote at parent_tid (and at pidfd), as strace
// prints it; from the captures taken at the exit, else from memory; the address when neither.
TEST(Args, CloneParentTidAtTheExit) {
    const auto& clone = call("clone");
    ArgContext ctx;
    ctx.args = {0x00100000 | 17, 0, 0x7000, 0, 0, 0};  // CLONE_PARENT_SETTID|SIGCHLD
    EXPECT_EQ(format_arg(clone, 2, ctx), "parent_tid=0x7000");  // going in: the address
    ctx.ret = 1234;
    Capture tid = cap(2, CaptureKind::BufFixed, le32(1234));
    ctx.capture = &tid;
    EXPECT_EQ(format_arg(clone, 2, ctx), "parent_tid=[1234]");
    ctx.capture = nullptr;
    FakeMemory mem;
    mem.map(0x7000, le32(77));
    ctx.memory = &mem;
    EXPECT_EQ(format_arg(clone, 2, ctx), "parent_tid=[77]");
    ctx.args[2] = 0x9000;  // unreadable
    EXPECT_EQ(format_arg(clone, 2, ctx), "parent_tid=0x9000");
    ctx.args[0] = 17;  // neither CLONE_PARENT_SETTID nor CLONE_PIDFD: not shown
    EXPECT_EQ(format_arg(clone, 2, ctx), "");
    EXPECT_TRUE(decoded_at_exit(clone.args[2]));
    const auto plan = capture_plan(clone);
    ASSERT_EQ(plan.exit.size(), 1u);
    EXPECT_EQ(plan.exit[0].kind, CaptureKind::BufFixed);
    EXPECT_EQ(plan.exit[0].max, 4u);
}

TEST(Args, Clone3WrittenThroughItsStructure) {
    const auto& clone3 = call("clone3");
    ArgContext ctx;
    ctx.args = {0x4000, 88, 0, 0, 0, 0};
    std::string ca(88, '\0');
    ca.replace(0, 8, le64(0x00100000 | 0x1000));  // CLONE_PARENT_SETTID|CLONE_PIDFD
    ca.replace(8, 8, le64(0x6000));                // pidfd
    ca.replace(24, 8, le64(0x7000));               // parent_tid
    ca.replace(32, 8, le64(17));
    const std::string entry =
        "{flags=CLONE_PIDFD|CLONE_PARENT_SETTID, pidfd=0x6000, parent_tid=0x7000, "
        "exit_signal=SIGCHLD, stack=NULL, stack_size=0}";
    Capture in = cap(0, CaptureKind::BufFixed, ca);
    ctx.capture = &in;
    ASSERT_EQ(format_arg(clone3, 0, ctx), entry);

    // The exit: the structure again, then what the kernel wrote through it.
    ctx.ret = 1234;
    ctx.entry_text = entry;
    const std::string tid = le32(1234), fd = le32(3);
    std::vector<Capture> all = {cap(0, CaptureKind::BufFixed, ca),
                                Capture{0, CaptureKind::Deref, CaptureStatus::Ok, fd, 1},
                                Capture{0, CaptureKind::Deref, CaptureStatus::Ok, tid, 3}};
    ctx.capture = &all[0];
    ctx.event_captures = &all;
    EXPECT_EQ(format_arg(clone3, 0, ctx), entry + " => {pidfd=[3], parent_tid=[1234]}");

    // Without those captures (the gdb listener), from memory; unreadable: the address.
    std::vector<Capture> struct_only = {all[0]};
    ctx.event_captures = &struct_only;
    FakeMemory mem;
    mem.map(0x7000, le32(1234));
    ctx.memory = &mem;
    EXPECT_EQ(format_arg(clone3, 0, ctx), entry + " => {pidfd=0x6000, parent_tid=[1234]}");
    // A capture of another argument's structure does not count.
    std::vector<Capture> other = {all[0], Capture{1, CaptureKind::Deref, CaptureStatus::Ok, fd, 1}};
    ctx.event_captures = &other;
    EXPECT_EQ(format_arg(clone3, 0, ctx), entry + " => {pidfd=0x6000, parent_tid=[1234]}");
    // The address was not readable when the plugin followed it.
    std::vector<Capture> fault = {all[0], Capture{0, CaptureKind::Deref, CaptureStatus::Fault, {}, 3}};
    ctx.event_captures = &fault;
    ctx.memory = nullptr;
    EXPECT_EQ(format_arg(clone3, 0, ctx), entry + " => {pidfd=0x6000, parent_tid=0x7000}");

    // A failed call wrote nothing: the structure as it went in.
    ctx.ret = -22;
    EXPECT_EQ(format_arg(clone3, 0, ctx), entry);
    // Neither flag: nothing was written.
    ctx.ret = 1234;
    std::string plain = ca;
    plain.replace(0, 8, le64(0x100));
    Capture p = cap(0, CaptureKind::BufFixed, plain);
    ctx.capture = &p;
    EXPECT_EQ(format_arg(clone3, 0, ctx), entry);
    // Too few bytes of the structure at the exit: as it went in.
    Capture cut = cap(0, CaptureKind::BufFixed, ca.substr(0, 20), CaptureStatus::Partial);
    ctx.capture = &cut;
    EXPECT_EQ(format_arg(clone3, 0, ctx), entry);

    EXPECT_TRUE(decoded_at_exit(clone3.args[0]));
    const auto plan = capture_plan(clone3);
    ASSERT_EQ(plan.exit.size(), 3u);
    EXPECT_EQ(plan.exit[1].kind, CaptureKind::Deref);
    EXPECT_EQ(plan.exit[1].len_arg, 1u);
    EXPECT_EQ(plan.exit[2].kind, CaptureKind::Deref);
    EXPECT_EQ(plan.exit[2].len_arg, 3u);
}

TEST(Signals, StraceNames) {
    EXPECT_EQ(format_signal(9), "SIGKILL");
    EXPECT_EQ(format_signal(32), "SIGRTMIN");
    EXPECT_EQ(format_signal(35), "SIGRT_3");
    EXPECT_EQ(format_signal(64), "SIGRT_32");
    EXPECT_EQ(format_signal(0), "0");
    EXPECT_EQ(format_signal(77), "77");
    EXPECT_EQ(format_signal(-1), "-1");
}

TEST(Signals, Sets) {
    EXPECT_EQ(format_sigset(le64(0)), "[]");
    EXPECT_EQ(format_sigset(le64(1ULL << 11 | 1ULL << 14)), "[USR2 TERM]");
    EXPECT_EQ(format_sigset(le64(1ULL << 11 | 1ULL << 34)), "[USR2 RT_3]");
    EXPECT_EQ(format_sigset(le64(~0ULL)), "~[]");
    EXPECT_EQ(format_sigset(le64(~(1ULL << 8))), "~[KILL]");
    // Short or empty input never reads past its end.
    EXPECT_EQ(format_sigset(std::string_view("\x01", 1)), "[HUP]");
    EXPECT_EQ(format_sigset(""), "[]");
}

TEST(Args, StatStructuresAtExit) {
    const auto& fstat = call("fstat");
    ArgContext ctx;
    ctx.args = {3, 0x1000, 0, 0, 0, 0};
    std::string st(144, '\0');
    st.replace(24, 4, le32(0100644));
    st.replace(48, 8, le64(7));
    Capture c = cap(1, CaptureKind::BufFixed, st);
    ctx.capture = &c;
    EXPECT_EQ(format_arg(fstat, 1, ctx), "0x1000");  // entry: not filled in yet
    ctx.ret = 0;
    EXPECT_EQ(format_arg(fstat, 1, ctx), "{st_mode=S_IFREG|0644, st_size=7, ...}");
    st.replace(24, 4, le32(0020600));
    st.replace(40, 8, le64(0x501));
    Capture dev = cap(1, CaptureKind::BufFixed, st);
    ctx.capture = &dev;
    EXPECT_EQ(format_arg(fstat, 1, ctx), "{st_mode=S_IFCHR|0600, st_rdev=makedev(0x5, 0x1), ...}");
    st.replace(40, 8, le64(0xfc00));  // a zero minor prints as C's %#x does: "0"
    Capture rtc = cap(1, CaptureKind::BufFixed, st);
    ctx.capture = &rtc;
    EXPECT_EQ(format_arg(fstat, 1, ctx), "{st_mode=S_IFCHR|0600, st_rdev=makedev(0xfc, 0), ...}");
    st.replace(24, 4, le32(0041777));  // /tmp: the sticky bit by name
    Capture tmp = cap(1, CaptureKind::BufFixed, st);
    ctx.capture = &tmp;
    EXPECT_EQ(format_arg(fstat, 1, ctx).substr(0, 31), "{st_mode=S_IFDIR|S_ISVTX|0777, ");
    // Too few bytes (a capture cut by an unreadable page) or a failed call: the address.
    Capture shortc = cap(1, CaptureKind::BufFixed, st.substr(0, 30), CaptureStatus::Partial);
    ctx.capture = &shortc;
    EXPECT_EQ(format_arg(fstat, 1, ctx), "0x1000");
    ctx.capture = &dev;
    ctx.ret = -2;
    EXPECT_EQ(format_arg(fstat, 1, ctx), "0x1000");

    const auto& statx = call("statx");
    ctx.args = {static_cast<std::uint64_t>(-100), 0x2000, 0x100, 0x7ff, 0x3000, 0};
    ctx.ret = 0;
    std::string sx(256, '\0');
    sx.replace(0, 4, le32(0x17ff));
    sx.replace(28, 2, le32(0040755).substr(0, 2));
    sx.replace(40, 8, le64(60));
    Capture x = cap(4, CaptureKind::BufFixed, sx);
    ctx.capture = &x;
    EXPECT_EQ(format_arg(statx, 2, ctx), "AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW");
    EXPECT_EQ(format_arg(statx, 3, ctx), "STATX_BASIC_STATS");
    EXPECT_EQ(format_arg(statx, 4, ctx),
              "{stx_mask=STATX_BASIC_STATS|STATX_MNT_ID, stx_attributes=0, "
              "stx_mode=S_IFDIR|0755, stx_size=60, ...}");
}

TEST(Args, Openat2AndClone3Structures) {
    const auto& openat2 = call("openat2");
    ArgContext ctx;
    ctx.args = {3, 0x1000, 0x2000, 24, 0, 0};
    std::string how = le64(02000000) + le64(0) + le64(8);
    Capture c = cap(2, CaptureKind::BufFixed, how);
    ctx.capture = &c;
    EXPECT_EQ(format_arg(openat2, 2, ctx), "{flags=O_RDONLY|O_CLOEXEC, resolve=RESOLVE_BENEATH}");
    std::string create = le64(0101) + le64(0640) + le64(0);
    Capture cr = cap(2, CaptureKind::BufFixed, create);
    ctx.capture = &cr;
    EXPECT_EQ(format_arg(openat2, 2, ctx), "{flags=O_WRONLY|O_CREAT, mode=0640, resolve=0}");
    ctx.args[3] = 16;  // smaller than any struct open_how: not decoded
    EXPECT_EQ(format_arg(openat2, 2, ctx), "0x2000");

    const auto& clone3 = call("clone3");
    ctx.args = {0x4000, 88, 0, 0, 0, 0};
    std::string ca(88, '\0');
    ca.replace(32, 8, le64(17));
    Capture a = cap(0, CaptureKind::BufFixed, ca);
    ctx.capture = &a;
    EXPECT_EQ(format_arg(clone3, 0, ctx), "{flags=0, exit_signal=SIGCHLD, stack=NULL, stack_size=0}");
    ca.replace(0, 8, le64(0x00100000 | 0x00080000 | 0x100));  // PARENT_SETTID|SETTLS|VM
    ca.replace(24, 8, le64(0x7000));
    ca.replace(40, 8, le64(0x8000));
    ca.replace(48, 8, le64(0x10000));
    ca.replace(56, 8, le64(0x9000));
    Capture t = cap(0, CaptureKind::BufFixed, ca);
    ctx.capture = &t;
    EXPECT_EQ(format_arg(clone3, 0, ctx),
              "{flags=CLONE_VM|CLONE_SETTLS|CLONE_PARENT_SETTID, parent_tid=0x7000, "
              "exit_signal=SIGCHLD, stack=0x8000, stack_size=0x10000, tls=0x9000}");
    ctx.args[1] = 8;  // absurd size: the address
    EXPECT_EQ(format_arg(clone3, 0, ctx), "0x4000");
}

TEST(Args, SignalsAndSigaction) {
    const auto& sa = call("rt_sigaction");
    ArgContext ctx;
    ctx.args = {10, 0x1000, 0x2000, 8, 0, 0};
    EXPECT_EQ(format_arg(sa, 0, ctx), "SIGUSR1");
    std::string act = le64(1) + le64(0x10000000) + le64(0) + le64(1ULL << 11 | 1ULL << 14);
    Capture c = cap(1, CaptureKind::BufFixed, act);
    ctx.capture = &c;
    EXPECT_EQ(format_arg(sa, 1, ctx), "{sa_handler=SIG_IGN, sa_mask=[USR2 TERM], sa_flags=SA_RESTART}");
    std::string handler = le64(0x401000) + le64(0x04000004) + le64(0x402000) + le64(0);
    Capture h = cap(1, CaptureKind::BufFixed, handler);
    ctx.capture = &h;
    EXPECT_EQ(format_arg(sa, 1, ctx),
              "{sa_handler=0x401000, sa_mask=[], sa_flags=SA_RESTORER|SA_SIGINFO, "
              "sa_restorer=0x402000}");
    ctx.args[1] = 0;
    EXPECT_EQ(format_arg(sa, 1, ctx), "NULL");

    const auto& mask = call("rt_sigprocmask");
    ctx.args = {7, 0x1000, 0, 8, 0, 0};
    EXPECT_EQ(format_arg(mask, 0, ctx), "0x7 /* SIG_??? */");
    const std::string all = le64(~0ULL);
    Capture m = cap(1, CaptureKind::BufFixed, all);
    ctx.capture = &m;
    EXPECT_EQ(format_arg(mask, 1, ctx), "~[]");
    ctx.args[3] = 16;  // not the kernel's set size: strace shows the address
    EXPECT_EQ(format_arg(mask, 1, ctx), "0x1000");
    ArgContext kill_ctx;
    kill_ctx.args = {1, 35, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("kill"), 1, kill_ctx), "SIGRT_3");

    // The other calls that take a set: rt_sigsuspend, rt_sigpending (at the exit), signalfd4
    // (whose size argument is named sizemask).
    const std::string usr1 = le64(1ULL << 9);  // SIGUSR1 (10) is bit 9
    Capture u = cap(0, CaptureKind::BufFixed, usr1);
    ArgContext set_ctx;
    set_ctx.capture = &u;
    set_ctx.args = {0x2000, 8, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("rt_sigsuspend"), 0, set_ctx), "[USR1]");
    set_ctx.ret = 0;
    EXPECT_EQ(format_arg(call("rt_sigpending"), 0, set_ctx), "[USR1]");
    set_ctx.ret.reset();
    set_ctx.args = {static_cast<std::uint64_t>(-1), 0x2000, 8, 0x80800, 0, 0};
    set_ctx.capture = nullptr;
    EXPECT_EQ(format_arg(call("signalfd4"), 3, set_ctx), "SFD_CLOEXEC|SFD_NONBLOCK");
    Capture u1 = cap(1, CaptureKind::BufFixed, usr1);
    set_ctx.capture = &u1;
    EXPECT_EQ(format_arg(call("signalfd4"), 1, set_ctx), "[USR1]");
    set_ctx.args[2] = 128;
    EXPECT_EQ(format_arg(call("signalfd4"), 1, set_ctx), "0x2000");
}

TEST(Args, WaitStatusPipeAndRlimit) {
    const auto& wait4 = call("wait4");
    ArgContext ctx;
    ctx.args = {5, 0x1000, 0, 0, 0, 0};
    ctx.ret = 5;
    std::string bytes;
    auto status = [&](std::uint32_t s) {
        bytes = le32(s);
        Capture c = cap(1, CaptureKind::BufFixed, bytes);
        ctx.capture = &c;
        return format_arg(wait4, 1, ctx);
    };
    EXPECT_EQ(status(3 << 8), "[{WIFEXITED(s) && WEXITSTATUS(s) == 3}]");
    EXPECT_EQ(status(9), "[{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}]");
    EXPECT_EQ(status(11 | 0x80), "[{WIFSIGNALED(s) && WTERMSIG(s) == SIGSEGV && WCOREDUMP(s)}]");
    EXPECT_EQ(status(19 << 8 | 0x7f), "[{WIFSTOPPED(s) && WSTOPSIG(s) == SIGSTOP}]");
    EXPECT_EQ(status(0xffff), "[{WIFCONTINUED(s)}]");
    ctx.ret = 0;  // WNOHANG, nothing changed: nothing was stored
    EXPECT_EQ(status(0), "0x1000");
    EXPECT_EQ(format_arg(wait4, 3, ctx), "NULL");

    const auto& pipe2 = call("pipe2");
    ctx.args = {0x2000, 04000 | 02000000, 0, 0, 0, 0};
    ctx.ret = 0;
    const std::string fds = le32(3) + le32(4);
    Capture p = cap(0, CaptureKind::BufFixed, fds);
    ctx.capture = &p;
    EXPECT_EQ(format_arg(pipe2, 0, ctx), "[3, 4]");
    EXPECT_EQ(format_arg(pipe2, 1, ctx), "O_NONBLOCK|O_CLOEXEC");

    const auto& prlimit = call("prlimit64");
    ctx.args = {0, 3, 0, 0x3000, 0, 0};
    const std::string lim = le64(8192 * 1024) + le64(~0ULL);
    Capture r = cap(3, CaptureKind::BufFixed, lim);
    ctx.capture = &r;
    EXPECT_EQ(format_arg(prlimit, 1, ctx), "RLIMIT_STACK");
    EXPECT_EQ(format_arg(prlimit, 2, ctx), "NULL");
    EXPECT_EQ(format_arg(prlimit, 3, ctx), "{rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}");
    const std::string lim2 = le64(1000) + le64(0);
    Capture r2 = cap(3, CaptureKind::BufFixed, lim2);
    ctx.capture = &r2;
    EXPECT_EQ(format_arg(prlimit, 3, ctx), "{rlim_cur=1000, rlim_max=0}");
    ctx.args[1] = 99;
    EXPECT_EQ(format_arg(prlimit, 1, ctx), "0x63 /* RLIMIT_??? */");
    // 1024 itself stays a number, as strace prints it; getrlimit's structure is the same.
    const std::string lim3 = le64(1024) + le64(4096);
    Capture r3 = cap(1, CaptureKind::BufFixed, lim3);
    ArgContext get_ctx;
    get_ctx.args = {7, 0x3000, 0, 0, 0, 0};
    get_ctx.ret = 0;
    get_ctx.capture = &r3;
    EXPECT_EQ(format_arg(call("getrlimit"), 0, get_ctx), "RLIMIT_NOFILE");
    EXPECT_EQ(format_arg(call("getrlimit"), 1, get_ctx), "{rlim_cur=1024, rlim_max=4*1024}");
}

// CPU sets (sched_setaffinity, sched_getaffinity) as the CPUs they name, only as many bytes as
// the call's length (set) or the kernel wrote (get, its return value).
TEST(Args, CpuSets) {
    std::string mask(128, '\0');
    mask[0] = 0x0d;  // CPUs 0, 2, 3
    mask[1] = 0x01;  // CPU 8
    mask[16] = 0x01; // CPU 128: beyond an 8-byte length
    Capture c = cap(2, CaptureKind::BufFixed, mask);
    ArgContext ctx;
    ctx.capture = &c;
    ctx.args = {0, 8, 0x7000, 0, 0, 0};
    EXPECT_EQ(format_arg(call("sched_setaffinity"), 2, ctx), "[0 2 3 8]");
    ctx.args[1] = 1;
    EXPECT_EQ(format_arg(call("sched_setaffinity"), 2, ctx), "[0 2 3]");
    ctx.args = {0, 8192, 0x7000, 0, 0, 0};
    ctx.ret = 8;
    EXPECT_EQ(format_arg(call("sched_getaffinity"), 2, ctx), "[0 2 3 8]");
    ctx.ret = 32;
    EXPECT_EQ(format_arg(call("sched_getaffinity"), 2, ctx), "[0 2 3 8 128]");
    ctx.ret = -22;  // EINVAL: nothing written, the address
    EXPECT_EQ(format_arg(call("sched_getaffinity"), 2, ctx), "0x7000");
    const std::string none(128, '\0');
    Capture empty = cap(2, CaptureKind::BufFixed, none);
    ctx.capture = &empty;
    ctx.ret = 8;
    EXPECT_EQ(format_arg(call("sched_getaffinity"), 2, ctx), "[]");
}

// personality: the domain and its flags, the query's 0xffffffff as a number, the previous
// personality after the return value.
TEST(Args, Personality) {
    ArgContext ctx;
    ctx.args = {8, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("personality"), 0, ctx), "PER_LINUX32");
    ctx.args[0] = 0x40000;
    EXPECT_EQ(format_arg(call("personality"), 0, ctx), "PER_LINUX|ADDR_NO_RANDOMIZE");
    ctx.args[0] = 0xffffffff;
    EXPECT_EQ(format_arg(call("personality"), 0, ctx), "0xffffffff");
    ctx.ret = 0;
    EXPECT_EQ(return_detail(call("personality"), ctx), "PER_LINUX");
    ctx.ret = 0x400008;
    EXPECT_EQ(return_detail(call("personality"), ctx), "PER_LINUX32|READ_IMPLIES_EXEC");
    EXPECT_EQ(format_return(&call("personality"), 0x400008, false).text, "0x400008");
    EXPECT_EQ(format_return(&call("personality"), 0, false).text, "0");
}

// The namespaces unshare and setns take, by name.
TEST(Args, NamespaceFlags) {
    ArgContext ctx;
    ctx.args = {0x4000000, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("unshare"), 0, ctx), "CLONE_NEWUTS");
    ctx.args = {0x20000 | 0x20000000, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("unshare"), 0, ctx), "CLONE_NEWNS|CLONE_NEWPID");
    ctx.args = {3, 0x4000000, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("setns"), 1, ctx), "CLONE_NEWUTS");
    ctx.args = {3, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("setns"), 1, ctx), "0");
}

// mount's and umount2's flags, whose priority (get/setpriority, ioprio_get/set).
TEST(Args, MountFlagsAndPriorityTargets) {
    ArgContext ctx;
    ctx.args = {0x1000, 0x2000, 0x3000, 0x8000, 0, 0};
    EXPECT_EQ(format_arg(call("mount"), 3, ctx), "MS_SILENT");
    ctx.args[3] = 0xc0ed0000 | 0x1 | 0x20;
    EXPECT_EQ(format_arg(call("mount"), 3, ctx), "MS_MGC_VAL|MS_RDONLY|MS_REMOUNT");
    ctx.args[3] = 0x4000 | 0x1000 | 0x8000000;
    EXPECT_EQ(format_arg(call("mount"), 3, ctx), "MS_BIND|MS_REC|0x8000000");
    ctx.args = {0x1000, 2, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("umount2"), 1, ctx), "MNT_DETACH");
    ctx.args = {0, 1, 5, 0, 0, 0};
    EXPECT_EQ(format_arg(call("setpriority"), 0, ctx), "PRIO_PROCESS");
    ctx.args[0] = 2;
    EXPECT_EQ(format_arg(call("getpriority"), 0, ctx), "PRIO_USER");
    ctx.args = {1, 1, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("ioprio_get"), 0, ctx), "IOPRIO_WHO_PROCESS");
    ctx.args[0] = 7;
    EXPECT_EQ(format_arg(call("ioprio_get"), 0, ctx), "0x7 /* IOPRIO_WHO_??? */");
    // The priority itself: set, and returned (after the value, as strace adds it).
    ctx.args = {1, 0, (2 << 13) | 4, 0, 0, 0};
    EXPECT_EQ(format_arg(call("ioprio_set"), 2, ctx), "IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 4)");
    ctx.ret = 0;
    EXPECT_EQ(return_detail(call("ioprio_get"), ctx), "IOPRIO_PRIO_VALUE(IOPRIO_CLASS_NONE, 0)");
    ctx.ret = (3 << 13) | 7;
    EXPECT_EQ(return_detail(call("ioprio_get"), ctx), "IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 7)");
    ctx.ret = -3;
    EXPECT_EQ(return_detail(call("ioprio_get"), ctx), "");
}

TEST(Args, TimespecAndRusage) {
    const auto& nanosleep = call("nanosleep");
    ArgContext ctx;
    ctx.args = {0x1000, 0x2000, 0, 0, 0, 0};
    const std::string req = le64(1) + le64(500000000);
    Capture c = cap(0, CaptureKind::BufFixed, req);
    ctx.capture = &c;
    EXPECT_EQ(format_arg(nanosleep, 0, ctx), "{tv_sec=1, tv_nsec=500000000}");
    // The time left: only when a signal cut the sleep short; else the address.
    const std::string left = le64(0) + le64(250);
    Capture r = cap(1, CaptureKind::BufFixed, left);
    ctx.capture = &r;
    ctx.ret = 0;
    EXPECT_EQ(format_arg(nanosleep, 1, ctx), "0x2000");
    ctx.ret = -4;  // EINTR
    EXPECT_EQ(format_arg(nanosleep, 1, ctx), "{tv_sec=0, tv_nsec=250}");
    ctx.ret = -22;  // EINVAL: nothing written
    EXPECT_EQ(format_arg(nanosleep, 1, ctx), "0x2000");
    // A short capture (an unreadable page) falls back to the address.
    const std::string half = le64(3);
    Capture h = cap(0, CaptureKind::BufFixed, half);
    ctx.capture = &h;
    EXPECT_EQ(format_arg(nanosleep, 0, ctx), "0x1000");

    const auto& gettime = call("clock_gettime");
    ctx.args = {1, 0x3000, 0, 0, 0, 0};
    ctx.ret = 0;
    const std::string now = le64(12) + le64(345);
    Capture t = cap(1, CaptureKind::BufFixed, now);
    ctx.capture = &t;
    EXPECT_EQ(format_arg(gettime, 0, ctx), "CLOCK_MONOTONIC");
    EXPECT_EQ(format_arg(gettime, 1, ctx), "{tv_sec=12, tv_nsec=345}");
    ctx.ret = -14;  // EFAULT
    EXPECT_EQ(format_arg(gettime, 1, ctx), "0x3000");

    const auto& wait4 = call("wait4");
    ctx.args = {5, 0, 0, 0x4000, 0, 0};
    ctx.ret = 5;
    std::string ru = le64(1) + le64(20) + le64(0) + le64(1953) + std::string(112, '\x7f');
    Capture u = cap(3, CaptureKind::BufFixed, ru);
    ctx.capture = &u;
    EXPECT_EQ(format_arg(wait4, 3, ctx),
              "{ru_utime={tv_sec=1, tv_usec=20}, ru_stime={tv_sec=0, tv_usec=1953}, ...}");
    ctx.ret = -10;  // ECHILD
    EXPECT_EQ(format_arg(wait4, 3, ctx), "0x4000");
}

TEST(Args, SocketsAndAddressLengths) {
    const auto& socket = call("socket");
    ArgContext ctx;
    ctx.args = {2, 1, 6, 0, 0, 0};
    EXPECT_EQ(format_arg(socket, 2, ctx), "IPPROTO_TCP");
    ctx.args = {1, 0x80001, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(socket, 1, ctx), "SOCK_STREAM|SOCK_CLOEXEC");
    EXPECT_EQ(format_arg(socket, 2, ctx), "0");
    ctx.args = {12345, 1, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(socket, 0, ctx), "0x3039 /* AF_??? */");

    const auto& accept = call("accept");
    ctx.args = {3, 0x1000, 0x2000, 0, 0, 0};
    const std::string n110 = le32(110), n2 = le32(2);
    Capture in = cap(2, CaptureKind::BufFixed, n110);
    ctx.capture = &in;
    const std::string entry = format_arg(accept, 2, ctx);
    EXPECT_EQ(entry, "[110]");
    ctx.ret = 5;
    ctx.entry_text = entry;
    Capture out = cap(2, CaptureKind::BufFixed, n2);
    ctx.capture = &out;
    EXPECT_EQ(format_arg(accept, 2, ctx), "[110 => 2]");
    Capture same = cap(2, CaptureKind::BufFixed, n110);
    ctx.capture = &same;
    EXPECT_EQ(format_arg(accept, 2, ctx), "[110]");
    ctx.ret = -22;
    EXPECT_EQ(format_arg(accept, 2, ctx), "[110]");
    EXPECT_EQ(format_arg(accept, 1, ctx), "0x1000");
    ctx.ret = 5;
    Capture unnamed = cap(1, CaptureKind::BufLenPtr, std::string_view("\x01\x00", 2));
    ctx.capture = &unnamed;
    EXPECT_EQ(format_arg(accept, 1, ctx), "{sa_family=AF_UNIX}");

    const auto& bind = call("bind");
    ctx.args = {3, 0x1000, 28, 0, 0, 0};
    std::string in6("\x0a\x00\x17\x70", 4);
    in6 += le32(0) + std::string(15, '\0') + "\x01" + le32(0);
    Capture c6 = cap(1, CaptureKind::BufLenArg, in6);
    ctx.capture = &c6;
    EXPECT_EQ(format_arg(bind, 1, ctx),
              "{sa_family=AF_INET6, sin6_port=htons(6000), sin6_flowinfo=htonl(0), "
              "inet_pton(AF_INET6, \"::1\", &sin6_addr), sin6_scope_id=0}");
    std::string abstract("\x01\x00\x00" "corpus", 9);
    Capture ab = cap(1, CaptureKind::BufLenArg, abstract);
    ctx.capture = &ab;
    EXPECT_EQ(format_arg(bind, 1, ctx), "{sa_family=AF_UNIX, sun_path=@\"corpus\"}");
    // Hostile: a family with too few bytes for its address.
    Capture cut = cap(1, CaptureKind::BufLenArg, std::string_view("\x0a\x00\x17", 3));
    ctx.capture = &cut;
    EXPECT_EQ(format_arg(bind, 1, ctx), "{sa_family=AF_INET6, ...}");
}

TEST(Args, CloneFcntlAndIntegers) {
    const auto& clone = call("clone");
    ArgContext ctx;
    ctx.args = {17, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(clone, 0, ctx), "flags=SIGCHLD");
    EXPECT_EQ(format_arg(clone, 1, ctx), "child_stack=NULL");
    EXPECT_EQ(format_arg(clone, 3, ctx), "");  // child_tid unused without the flags
    ctx.args = {0x01200000 | 17, 0, 0, 0x7000, 0, 0};
    EXPECT_EQ(format_arg(clone, 0, ctx), "flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD");
    EXPECT_EQ(format_arg(clone, 3, ctx), "child_tidptr=0x7000");
    const auto order = text_order(clone, clone.nargs);
    ASSERT_GE(order.size(), 2u);
    EXPECT_EQ(clone.args[order[0]].name, "stack");
    EXPECT_EQ(clone.args[order[1]].name, "flags");

    const auto& fcntl = call("fcntl");
    ctx.args = {3, 3 /* F_GETFL */, 0x1234, 0, 0, 0};
    EXPECT_EQ(printed_args(fcntl, ctx.args), 2u);
    EXPECT_EQ(format_return(&fcntl, 0x802, false, &ctx.args).text, "0x802 (flags O_RDWR|O_NONBLOCK)");
    ctx.args = {3, 4 /* F_SETFL */, 02000 | 04000, 0, 0, 0};
    EXPECT_EQ(printed_args(fcntl, ctx.args), 3u);
    EXPECT_EQ(format_arg(fcntl, 2, ctx), "O_RDONLY|O_APPEND|O_NONBLOCK");
    ctx.args = {3, 2 /* F_SETFD */, 1, 0, 0, 0};
    EXPECT_EQ(format_arg(fcntl, 2, ctx), "FD_CLOEXEC");
    ctx.args = {3, 0x4242, 5, 0, 0, 0};
    EXPECT_EQ(format_arg(fcntl, 1, ctx), "0x4242 /* F_??? */");

    // C's %#x: zero is "0".
    ctx.args = {0x1002, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("arch_prctl"), 1, ctx), "0");
    EXPECT_EQ(format_arg(call("mmap"), 5, ctx), "0");
    // A mode with O_CREAT, even zero, prints in octal with three digits.
    ctx.args = {static_cast<std::uint64_t>(-100), 0x1000, 0100, 0, 0, 0};
    EXPECT_EQ(format_arg(call("openat"), 3, ctx), "000");
}

TEST(Memory, ReadsWhatWasNotCaptured) {
    FakeMemory mem;
    mem.map(0x1000, std::string("/etc/passwd\0", 12));
    mem.map(0x2000, "unterminated");  // ends at an unreadable page
    mem.map(0x3000, std::string(10000, 'x'));
    const auto& openat = call("openat");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {static_cast<std::uint64_t>(-100), 0x1000, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(openat, 1, ctx), "\"/etc/passwd\"");
    ctx.args[1] = 0x2000;
    EXPECT_EQ(format_arg(openat, 1, ctx), "\"unterminated\"...");
    ctx.args[1] = 0x3000;  // longer than the bound: cut and marked
    EXPECT_EQ(format_arg(openat, 1, ctx), quote(std::string(kCaptureMax, 'x'), kCaptureMax, true));
    ctx.args[1] = 0x9000;  // unreadable
    EXPECT_EQ(format_arg(openat, 1, ctx), "0x9000");
    ctx.args[1] = 0;
    EXPECT_EQ(format_arg(openat, 1, ctx), "NULL");

    // An absurd length reads at most the bound.
    const auto& write = call("write");
    ctx.args = {1, 0x3000, ~0ULL >> 1, 0, 0, 0};
    EXPECT_EQ(format_arg(write, 1, ctx), "\"" + std::string(32, 'x') + "\"...");
    // A buffer running into unreadable memory.
    ctx.args = {1, 0x2000, 100, 0, 0, 0};
    EXPECT_EQ(format_arg(write, 1, ctx), "\"unterminated\"...");
}

TEST(Memory, Iovecs) {
    FakeMemory mem;
    mem.map(0x1000, "one two\n");
    mem.map(0x5000, le64(0x1000) + le64(4) + le64(0x1004) + le64(4) + le64(0x9000) + le64(3));
    const auto& writev = call("writev");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {3, 0x5000, 2, 0, 0, 0};
    EXPECT_EQ(format_arg(writev, 1, ctx),
              "[{iov_base=\"one \", iov_len=4}, {iov_base=\"two\\n\", iov_len=4}]");
    // An unreadable buffer is its address.
    ctx.args[2] = 3;
    EXPECT_EQ(format_arg(writev, 1, ctx),
              "[{iov_base=\"one \", iov_len=4}, {iov_base=\"two\\n\", iov_len=4}, "
              "{iov_base=0x9000, iov_len=3}]");
    // An absurd count: what could be read, then "...".
    ctx.args[2] = 1000000;
    const std::string many = format_arg(writev, 1, ctx);
    EXPECT_NE(many.find("iov_len=3}, ...]"), std::string::npos) << many;
    // readv shows only what the call read (its return value).
    const auto& readv = call("readv");
    ctx.args = {3, 0x5000, 2, 0, 0, 0};
    EXPECT_EQ(format_arg(readv, 1, ctx), "0x5000");  // entry
    ctx.ret = 6;
    EXPECT_EQ(format_arg(readv, 1, ctx),
              "[{iov_base=\"one \", iov_len=4}, {iov_base=\"tw\", iov_len=4}]");
    ctx.ret = -14;
    EXPECT_EQ(format_arg(readv, 1, ctx), "0x5000");
    ctx.ret.reset();
    ctx.args = {3, 0x7000, 2, 0, 0, 0};  // the array itself unreadable
    EXPECT_EQ(format_arg(writev, 1, ctx), "0x7000");
    // The array from the listener's capture, the buffers from memory; without memory, the
    // buffers' addresses.
    const std::string arr = le64(0x1000) + le64(4);
    Capture c = cap(1, CaptureKind::BufFixed, arr);
    ctx.capture = &c;
    ctx.args = {3, 0x6000, 1, 0, 0, 0};
    EXPECT_EQ(format_arg(writev, 1, ctx), "[{iov_base=\"one \", iov_len=4}]");
    ctx.memory = nullptr;
    EXPECT_EQ(format_arg(writev, 1, ctx), "[{iov_base=0x1000, iov_len=4}]");
}

// One buffer of an IovecData capture: its length, status, padding, bytes padded to 8.
std::string iov_entry(std::string_view bytes, CaptureStatus st = CaptureStatus::Ok) {
    std::string e = le32(static_cast<std::uint32_t>(bytes.size()));
    e += static_cast<char>(st);
    e += std::string(3, '\0');
    e += bytes;
    e += std::string((8 - bytes.size() % 8) % 8, '\0');
    return e;
}

// The buffers as the plugin copied them at the event: what memory holds now does not matter.
TEST(Memory, IovecBuffersCapturedAtTheEvent) {
    FakeMemory mem;
    mem.map(0x1000, "changed!");
    const std::string arr = le64(0x1000) + le64(4) + le64(0x1004) + le64(4) + le64(0) + le64(2);
    Capture array = cap(1, CaptureKind::BufFixed, arr);
    const std::string bufs = iov_entry("one ") + iov_entry("two\n") + iov_entry("");
    Capture data = cap(1, CaptureKind::IovecData, bufs);
    const auto& writev = call("writev");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.capture = &array;
    ctx.iovec_data = &data;
    ctx.args = {3, 0x5000, 3, 0, 0, 0};
    EXPECT_EQ(format_arg(writev, 1, ctx),
              "[{iov_base=\"one \", iov_len=4}, {iov_base=\"two\\n\", iov_len=4}, "
              "{iov_base=NULL, iov_len=2}]");
    // A buffer cut at the bound, and one that was unreadable at the event.
    const std::string cut = iov_entry("0123", CaptureStatus::Truncated) +
                            iov_entry("", CaptureStatus::Fault);
    Capture data2 = cap(1, CaptureKind::IovecData, cut);
    ctx.iovec_data = &data2;
    ctx.args[2] = 2;
    EXPECT_EQ(format_arg(writev, 1, ctx),
              "[{iov_base=\"0123\"..., iov_len=4}, {iov_base=0x1004, iov_len=4}]");
    // Hostile captures: a length beyond the data, a bad status, a short header. The entries
    // before the bad one are used; the rest come from memory.
    for (const std::string& bad :
         {iov_entry("one ") + le64(1000), iov_entry("one ") + std::string("\x04\0\0\0\x09\0\0\0two\n", 12),
          iov_entry("one ") + std::string(5, '\x01')}) {
        Capture d = cap(1, CaptureKind::IovecData, bad);
        ctx.iovec_data = &d;
        EXPECT_EQ(format_arg(writev, 1, ctx),
                  "[{iov_base=\"one \", iov_len=4}, {iov_base=\"ged!\", iov_len=4}]");
    }
    // A 32-bit program's struct iovec has 4-byte fields.
    const std::string arr32 = le32(0x1000) + le32(4) + le32(0x1004) + le32(4);
    Capture array32 = cap(1, CaptureKind::BufFixed, arr32);
    ctx.capture = &array32;
    ctx.iovec_data = &data;
    ctx.compat = true;
    ctx.args = {3, 0x5000, 2, 0, 0, 0};
    EXPECT_EQ(format_arg(call("writev", Abi::I386), 1, ctx),
              "[{iov_base=\"one \", iov_len=4}, {iov_base=\"two\\n\", iov_len=4}]");
    ctx.compat = false;
    ctx.capture = &array;
    // readv: the exit's capture holds only what the call read.
    const auto& readv = call("readv");
    const std::string got = iov_entry("one ") + iov_entry("tw");
    Capture read = cap(1, CaptureKind::IovecData, got);
    ctx.iovec_data = &read;
    ctx.ret = 6;
    EXPECT_EQ(format_arg(readv, 1, ctx),
              "[{iov_base=\"one \", iov_len=4}, {iov_base=\"tw\", iov_len=4}]");
}

// sendmsg/recvmsg as strace 6.1 prints them (its output for the same calls, on this machine).
TEST(Memory, Msghdr) {
    FakeMemory mem;
    mem.map(0x1000, "hello msg\n");
    mem.map(0x2000, le64(0x1000) + le64(6) + le64(0x1006) + le64(4));  // "hello ", "msg\n"
    // AF_INET 127.0.0.1:5454
    mem.map(0x3000, std::string("\x02\x00\x15\x4e\x7f\x00\x00\x01", 8) + std::string(8, '\0'));
    mem.map(0x5000, msghdr64(0, 0, 0x2000, 2, 0, 0, 0));
    mem.map(0x6000, msghdr64(0x3000, 16, 0x2000, 1, 0, 0, 0));
    const auto& sendmsg = call("sendmsg");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {3, 0x5000, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(sendmsg, 1, ctx),
              "{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"hello \", iov_len=6}, "
              "{iov_base=\"msg\\n\", iov_len=4}], msg_iovlen=2, msg_controllen=0, msg_flags=0}");
    ctx.args = {5, 0x6000, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(sendmsg, 1, ctx),
              "{msg_name={sa_family=AF_INET, sin_port=htons(5454), sin_addr=inet_addr(\"127.0.0.1\")}, "
              "msg_namelen=16, msg_iov=[{iov_base=\"hello \", iov_len=6}], msg_iovlen=1, "
              "msg_controllen=0, msg_flags=0}");
    EXPECT_EQ(format_arg(sendmsg, 2, ctx), "0");
    ctx.args[2] = 0x40;
    EXPECT_EQ(format_arg(sendmsg, 2, ctx), "MSG_DONTWAIT");
    ctx.args = {5, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(sendmsg, 1, ctx), "NULL");
    ctx.args = {5, 0x9000, 0, 0, 0, 0};  // unreadable
    EXPECT_EQ(format_arg(sendmsg, 1, ctx), "0x9000");

    // recvmsg: msg_namelen going in at the entry; at the exit the structure as the call left
    // it, the buffers up to what it read, and the length change.
    const auto& recvmsg = call("recvmsg");
    mem.map(0x7000, msghdr64(0x3000, 20, 0x2000, 2, 0, 0, 0x20));
    ctx.args = {5, 0x7000, 0, 0, 0, 0};
    const std::string entry = format_arg(recvmsg, 1, ctx);
    EXPECT_EQ(entry, "{msg_namelen=20}");
    mem.map(0x7000, msghdr64(0x3000, 16, 0x2000, 2, 0, 0, 0x20));
    ctx.entry_text = entry;
    ctx.ret = 8;
    EXPECT_EQ(format_arg(recvmsg, 1, ctx),
              "{msg_name={sa_family=AF_INET, sin_port=htons(5454), sin_addr=inet_addr(\"127.0.0.1\")}, "
              "msg_namelen=20 => 16, msg_iov=[{iov_base=\"hello \", iov_len=6}, "
              "{iov_base=\"ms\", iov_len=4}], msg_iovlen=2, msg_controllen=0, msg_flags=MSG_TRUNC}");
    ctx.ret = -11;  // EAGAIN: what went in
    EXPECT_EQ(format_arg(recvmsg, 1, ctx), "{msg_namelen=20}");

    // Control data is shown as its address; absurd counts are cut at 16 entries.
    mem.map(0x8000, msghdr64(0, 0, 0x2000, 1000000, 0x4000, 24, 0));
    ctx.ret.reset();
    ctx.entry_text = {};
    ctx.args = {3, 0x8000, 0, 0, 0, 0};
    const std::string big = format_arg(sendmsg, 1, ctx);
    EXPECT_NE(big.find("iov_len=4}, ...], msg_iovlen=1000000, msg_control=0x4000, msg_controllen=24"),
              std::string::npos)
        << big;

    // The same structure from the listener's capture (sections), memory changed since.
    const std::string sections = iov_entry(msghdr64(0, 0, 0x2000, 2, 0, 0, 0)) + iov_entry("") +
                                 iov_entry(le64(0x1000) + le64(6) + le64(0x1006) + le64(4)) +
                                 iov_entry("HELLO ") + iov_entry("MSG\n");
    Capture c = cap(1, CaptureKind::Msghdr, sections);
    ctx.capture = &c;
    ctx.args = {3, 0x5000, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(sendmsg, 1, ctx),
              "{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"HELLO \", iov_len=6}, "
              "{iov_base=\"MSG\\n\", iov_len=4}], msg_iovlen=2, msg_controllen=0, msg_flags=0}");
    // Hostile: a structure section too short, or missing sections: the address.
    const std::string shortened = iov_entry("abc") + iov_entry("") + iov_entry("");
    Capture bad = cap(1, CaptureKind::Msghdr, shortened);
    ctx.capture = &bad;
    EXPECT_EQ(format_arg(sendmsg, 1, ctx), "0x5000");
    const std::string one = iov_entry(msghdr64(0, 0, 0x2000, 2, 0, 0, 0));
    Capture partial = cap(1, CaptureKind::Msghdr, one);
    ctx.capture = &partial;
    EXPECT_EQ(format_arg(sendmsg, 1, ctx), "0x5000");

    // A 32-bit program's struct msghdr: 4-byte fields, 28 bytes.
    ctx.capture = nullptr;
    ctx.compat = true;
    mem.map(0xa000, le32(0) + le32(0) + le32(0xb000) + le32(1) + le32(0) + le32(0) + le32(0));
    mem.map(0xb000, le32(0x1000) + le32(5));
    ctx.args = {3, 0xa000, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("sendmsg", Abi::I386), 1, ctx),
              "{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"hello\", iov_len=5}], "
              "msg_iovlen=1, msg_controllen=0, msg_flags=0}");
}

// sendmmsg as strace prints it at the exit: the messages sent, each with its msg_len.
TEST(Memory, Mmsghdr) {
    FakeMemory mem;
    mem.map(0x1000, "firstsecond");
    mem.map(0x2000, le64(0x1000) + le64(5));
    mem.map(0x2100, le64(0x1005) + le64(6));
    mem.map(0x3000, std::string("\x02\x00\x15\x4f\x7f\x00\x00\x01", 8) + std::string(8, '\0'));
    // Two struct mmsghdr: a msghdr, msg_len, 4 bytes of padding.
    mem.map(0x5000, msghdr64(0x3000, 16, 0x2000, 1, 0, 0, 0) + le32(5) + le32(0) +
                        msghdr64(0, 0, 0x2100, 1, 0, 0, 0) + le32(6) + le32(0));
    const auto& sendmmsg = call("sendmmsg");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {3, 0x5000, 2, 0x4000, 0, 0};
    EXPECT_EQ(format_arg(sendmmsg, 1, ctx), "0x5000");  // the entry: decoded at the exit
    ctx.ret = 2;
    const std::string both =
        "[{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(5455), "
        "sin_addr=inet_addr(\"127.0.0.1\")}, msg_namelen=16, msg_iov=[{iov_base=\"first\", "
        "iov_len=5}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=5}, "
        "{msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"second\", iov_len=6}], "
        "msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=6}]";
    EXPECT_EQ(format_arg(sendmmsg, 1, ctx), both);
    EXPECT_EQ(format_arg(sendmmsg, 3, ctx), "MSG_NOSIGNAL");
    ctx.ret = 1;  // only the first was sent
    EXPECT_EQ(format_arg(sendmmsg, 1, ctx), both.substr(0, both.find("}, {msg_hdr")) + "}]");
    ctx.ret = -11;
    EXPECT_EQ(format_arg(sendmmsg, 1, ctx), "0x5000");
    // The listener's capture of the same (memory changed since); a count beyond it.
    ctx.ret = 2;
    const std::string sections =
        iov_entry(msghdr64(0, 0, 0x2000, 1, 0, 0, 0) + le32(5) + le32(0)) + iov_entry("") +
        iov_entry(le64(0x1000) + le64(5)) + iov_entry("FIRST") +
        iov_entry(msghdr64(0, 0, 0x2100, 1, 0, 0, 0) + le32(6) + le32(0)) + iov_entry("") +
        iov_entry(le64(0x1005) + le64(6)) + iov_entry("SECOND");
    Capture c = cap(1, CaptureKind::Mmsghdr, sections);
    ctx.capture = &c;
    const std::string got = format_arg(sendmmsg, 1, ctx);
    EXPECT_NE(got.find("iov_base=\"FIRST\""), std::string::npos) << got;
    EXPECT_NE(got.find("iov_base=\"SECOND\", iov_len=6}], msg_iovlen=1, msg_controllen=0, "
                       "msg_flags=0}, msg_len=6}]"),
              std::string::npos)
        << got;
    ctx.args[2] = ctx.ret.emplace(20);  // more messages than the capture holds
    EXPECT_NE(format_arg(sendmmsg, 1, ctx).find("msg_len=6}, ...]"), std::string::npos);
    // Hostile: a first structure cut short prints the address.
    const std::string cut = iov_entry("short");
    Capture bad = cap(1, CaptureKind::Mmsghdr, cut);
    ctx.capture = &bad;
    EXPECT_EQ(format_arg(sendmmsg, 1, ctx), "0x5000");
}

// An array argument with a count far beyond what it holds is cut after nitro's bound ("...");
// an array at an unreadable address prints as the address.
void expect_cut_or_address(const SyscallInfo& info, std::size_t arg, ArgContext ctx,
                           const std::array<std::uint64_t, 6>& huge_count,
                           const std::array<std::uint64_t, 6>& unreadable, const std::string& address) {
    ctx.ret.reset();
    ctx.entry_text = {};
    ctx.args = huge_count;
    const std::string many = format_arg(info, arg, ctx);
    ASSERT_GE(many.size(), 6u);
    EXPECT_EQ(many.substr(many.size() - 6), ", ...]") << many;
    ctx.args = unreadable;
    EXPECT_EQ(format_arg(info, arg, ctx), address);
}

// recvmmsg: each message's room for the sender's address going in; at the exit the messages
// received (the return value), each with its msg_len and the length change, as strace.
TEST(Memory, RecvmmsgMessagesReceived) {
    FakeMemory mem;
    mem.map(0x1000, "firstsecond.....");
    mem.map(0x2000, le64(0x1000) + le64(8));
    mem.map(0x2100, le64(0x1005) + le64(8));
    const std::string inet = std::string("\x02\x00\x15\x4f\x7f\x00\x00\x01", 8) + std::string(8, '\0');
    mem.map(0x3000, inet);
    mem.map(0x3100, inet);
    auto array = [&](std::uint32_t n0, std::uint32_t n1, std::uint32_t l0, std::uint32_t l1) {
        return msghdr64(0x3000, n0, 0x2000, 1, 0, 0, 0) + le32(l0) + le32(0) +
               msghdr64(0x3100, n1, 0x2100, 1, 0, 0, 0) + le32(l1) + le32(0) +
               msghdr64(0, 0, 0, 0, 0, 0, 0) + le32(0) + le32(0);
    };
    mem.map(0x5000, array(20, 16, 0, 0));
    const auto& recvmmsg = call("recvmmsg");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {3, 0x5000, 3, 0x10000, 0, 0};
    const std::string entry = format_arg(recvmmsg, 1, ctx);
    EXPECT_EQ(entry, "[{msg_hdr={msg_namelen=20}}, {msg_hdr={msg_namelen=16}}, {msg_hdr={msg_namelen=0}}]");
    EXPECT_EQ(format_arg(recvmmsg, 3, ctx), "MSG_WAITFORONE");
    EXPECT_EQ(format_arg(recvmmsg, 4, ctx), "NULL");
    mem.map(0x5000, array(16, 16, 5, 6));  // what the call left
    ctx.ret = 2;
    ctx.entry_text = entry;
    const std::string sin = "{sa_family=AF_INET, sin_port=htons(5455), sin_addr=inet_addr(\"127.0.0.1\")}";
    EXPECT_EQ(format_arg(recvmmsg, 1, ctx),
              "[{msg_hdr={msg_name=" + sin + ", msg_namelen=20 => 16, msg_iov=[{iov_base=\"first\", "
              "iov_len=8}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=5}, "
              "{msg_hdr={msg_name=" + sin + ", msg_namelen=16, msg_iov=[{iov_base=\"second\", "
              "iov_len=8}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=6}]");
    ctx.ret = -11;  // EAGAIN: the address, as strace
    EXPECT_EQ(format_arg(recvmmsg, 1, ctx), "0x5000");
    ctx.ret = 0;  // a timeout: nothing received
    EXPECT_EQ(format_arg(recvmmsg, 1, ctx), "[]");
    // Hostile: an entry text that is not nitro's, a count beyond the array, an unreadable one.
    ctx.ret = 1;
    ctx.entry_text = "msg_namelen=99999999999999999999";
    EXPECT_NE(format_arg(recvmmsg, 1, ctx).find("msg_namelen=16, msg_iov"), std::string::npos);
    expect_cut_or_address(recvmmsg, 1, ctx, {3, 0x5000, 1000000, 0, 0, 0}, {3, 0x9000, 2, 0, 0, 0}, "0x9000");
    const auto plan = capture_plan(recvmmsg);
    ASSERT_FALSE(plan.enter.empty());
    EXPECT_EQ(plan.enter[0].kind, CaptureKind::BufFixed);
    ASSERT_FALSE(plan.exit.empty());
    EXPECT_EQ(plan.exit[0].kind, CaptureKind::Mmsghdr);
}

// Control messages of sendmsg/recvmsg as strace prints them (SCM_RIGHTS, SCM_CREDENTIALS,
// unknown levels), from memory and from the listener's capture; hostile lengths.
TEST(Memory, MsghdrControlMessages) {
    FakeMemory mem;
    mem.map(0x1000, "x");
    mem.map(0x2000, le64(0x1000) + le64(1));
    auto cmsg = [](std::uint64_t len, std::int32_t level, std::int32_t type, std::string data) {
        std::string c = le64(len) + le32(static_cast<std::uint32_t>(level)) + le32(static_cast<std::uint32_t>(type)) + data;
        c.resize((c.size() + 7) & ~std::size_t{7}, '\0');
        return c;
    };
    const std::string rights = cmsg(24, 1, 1, le32(4) + le32(5));
    const std::string creds = cmsg(28, 1, 2, le32(123) + le32(0) + le32(1000));
    mem.map(0x4000, rights + creds);
    const std::uint64_t controllen = rights.size() + creds.size();
    mem.map(0x5000, msghdr64(0, 0, 0x2000, 1, 0x4000, controllen, 0));
    const auto& sendmsg = call("sendmsg");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {3, 0x5000, 0, 0, 0, 0};
    const std::string both =
        "[{cmsg_len=24, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[4, 5]}, "
        "{cmsg_len=28, cmsg_level=SOL_SOCKET, cmsg_type=SCM_CREDENTIALS, cmsg_data={pid=123, uid=0, gid=1000}}]";
    EXPECT_EQ(format_arg(sendmsg, 1, ctx),
              "{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"x\", iov_len=1}], msg_iovlen=1, "
              "msg_control=" + both + ", msg_controllen=" + std::to_string(controllen) + ", msg_flags=0}");

    // The listener's capture: the sections of the structure, then the control bytes last.
    const std::string sections = iov_entry(msghdr64(0, 0, 0x2000, 1, 0x4000, controllen, 0)) +
                                 iov_entry("") + iov_entry(le64(0x1000) + le64(1)) + iov_entry("x") +
                                 iov_entry(rights + creds);
    Capture c = cap(1, CaptureKind::Msghdr, sections);
    ctx.capture = &c;
    ctx.memory = nullptr;
    EXPECT_NE(format_arg(sendmsg, 1, ctx).find("msg_control=" + both), std::string::npos);
    // A capture without the control section (record ABI 7, or a buffer missing): the address.
    const std::string old = sections.substr(0, sections.size() - iov_entry(rights + creds).size());
    Capture c7 = cap(1, CaptureKind::Msghdr, old);
    ctx.capture = &c7;
    EXPECT_NE(format_arg(sendmsg, 1, ctx).find("msg_control=0x4000, msg_controllen="), std::string::npos);
    ctx.capture = nullptr;
    ctx.memory = &mem;

    // An unknown level, a cmsg_len past the end, a zero cmsg_len, fewer bytes than controllen.
    mem.map(0x4000, cmsg(20, 6, 9, le32(7)));
    mem.map(0x5000, msghdr64(0, 0, 0x2000, 1, 0x4000, 24, 0));
    EXPECT_NE(format_arg(sendmsg, 1, ctx).find("msg_control=[{cmsg_len=20, cmsg_level=SOL_TCP, cmsg_type=0x9}]"),
              std::string::npos);
    mem.map(0x4000, cmsg(~std::uint64_t{0}, 1, 1, le32(3)));
    // (the whole rest is the message: the descriptor and the padding)
    EXPECT_NE(format_arg(sendmsg, 1, ctx).find("cmsg_type=SCM_RIGHTS, cmsg_data=[3, 0]}]"), std::string::npos)
        << format_arg(sendmsg, 1, ctx);
    mem.map(0x4000, cmsg(0, 1, 1, le32(3)));
    EXPECT_NE(format_arg(sendmsg, 1, ctx).find("cmsg_type=SCM_RIGHTS}, ... /* 0x4010 */]"), std::string::npos)
        << format_arg(sendmsg, 1, ctx);
    mem.map(0x5000, msghdr64(0, 0, 0x2000, 1, 0x4000, 4096, 0));  // only 24 bytes readable
    EXPECT_NE(format_arg(sendmsg, 1, ctx).find("msg_control=0x4000, msg_controllen=4096"), std::string::npos);
    mem.map(0x5000, msghdr64(0, 0, 0x2000, 1, 0x4000, 8, 0));  // less than a header
    EXPECT_NE(format_arg(sendmsg, 1, ctx).find("msg_control=0x4000, msg_controllen=8"), std::string::npos);
}

// setsockopt/getsockopt as strace prints them: the name by level, an int value as "[1]",
// struct linger and ucred, other values as strings; getsockopt's value and length at the exit.
TEST(Memory, SocketOptions) {
    FakeMemory mem;
    mem.map(0x1000, le32(1));
    mem.map(0x2000, le32(1) + le32(5));
    mem.map(0x3000, "eth0");
    const auto& setsockopt = call("setsockopt");
    ArgContext ctx;
    ctx.memory = &mem;
    auto set = [&](std::uint64_t level, std::uint64_t name, std::uint64_t val, std::uint64_t len) {
        ctx.args = {3, level, name, val, len, 0};
        std::string out;
        for (std::size_t i = 0; i < 5; ++i) out += (i ? ", " : "") + format_arg(setsockopt, i, ctx);
        return out;
    };
    EXPECT_EQ(set(1, 2, 0x1000, 4), "3, SOL_SOCKET, SO_REUSEADDR, [1], 4");
    EXPECT_EQ(set(1, 13, 0x2000, 8), "3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=5}, 8");
    EXPECT_EQ(set(1, 13, 0x2000, 4), "3, SOL_SOCKET, SO_LINGER, 0x2000, 4");  // too short
    EXPECT_EQ(set(1, 2, 0x1000, 2), "3, SOL_SOCKET, SO_REUSEADDR, 0x1000, 2");
    EXPECT_EQ(set(1, 25, 0x3000, 4), "3, SOL_SOCKET, SO_BINDTODEVICE, [812151909], 4");
    EXPECT_EQ(set(1, 25, 0x3000, 3), "3, SOL_SOCKET, SO_BINDTODEVICE, \"eth\", 3");
    EXPECT_EQ(set(6, 1, 0x1000, 4), "3, SOL_TCP, TCP_NODELAY, [1], 4");
    EXPECT_EQ(set(41, 26, 0x1000, 4), "3, SOL_IPV6, IPV6_V6ONLY, [1], 4");
    EXPECT_EQ(set(0, 2, 0x1000, 4), "3, SOL_IP, IP_TTL, [1], 4");
    EXPECT_EQ(set(1, 999, 0x1000, 4), "3, SOL_SOCKET, 0x3e7 /* SO_??? */, [1], 4");
    EXPECT_EQ(set(9999, 7, 0x1000, 4), "3, 0x270f /* SOL_??? */, 7, [1], 4");
    EXPECT_EQ(set(1, 2, 0, 4), "3, SOL_SOCKET, SO_REUSEADDR, NULL, 4");
    EXPECT_EQ(set(1, 2, 0x9000, 4), "3, SOL_SOCKET, SO_REUSEADDR, 0x9000, 4");  // unreadable

    // getsockopt: the value and the length as the call left them.
    const auto& getsockopt = call("getsockopt");
    mem.map(0x4000, le32(212992));
    mem.map(0x5000, le32(4));
    ctx.args = {3, 1, 8, 0x4000, 0x5000, 0};
    EXPECT_EQ(format_arg(getsockopt, 3, ctx), "0x4000");  // going in
    const std::string len_in = format_arg(getsockopt, 4, ctx);
    EXPECT_EQ(len_in, "[4]");
    ctx.ret = 0;
    ctx.entry_text = len_in;
    EXPECT_EQ(format_arg(getsockopt, 2, ctx), "SO_RCVBUF");
    EXPECT_EQ(format_arg(getsockopt, 3, ctx), "[212992]");
    EXPECT_EQ(format_arg(getsockopt, 4, ctx), "[4]");
    mem.map(0x4000, le32(77) + le32(0) + le32(0));
    mem.map(0x5000, le32(12));
    ctx.args = {3, 1, 17, 0x4000, 0x5000, 0};
    EXPECT_EQ(format_arg(getsockopt, 3, ctx), "{pid=77, uid=0, gid=0}");
    // From the listener's captures: the value (arg 3) and the length written back (arg 4).
    ctx.memory = nullptr;
    const std::string value = le32(9), length = le32(4);
    std::vector<Capture> caps = {cap(3, CaptureKind::BufLenPtr, value), cap(4, CaptureKind::BufFixed, length)};
    ctx.event_captures = &caps;
    ctx.capture = &caps[0];
    ctx.args = {3, 1, 7, 0x4000, 0x5000, 0};
    EXPECT_EQ(format_arg(getsockopt, 3, ctx), "[9]");
    ctx.ret = -92;  // ENOPROTOOPT
    EXPECT_EQ(format_arg(getsockopt, 3, ctx), "0x4000");
}

// poll: the array going in, and what strace adds after the return value from the revents the
// call set ("1 ([{fd=3, revents=POLLIN}])", "0 (Timeout)").
TEST(Memory, PollEventsAndTheirDetail) {
    FakeMemory mem;
    auto pollfd = [](std::int32_t fd, std::uint16_t events, std::uint16_t revents) {
        return le32(static_cast<std::uint32_t>(fd)) + le32(events | (std::uint32_t{revents} << 16));
    };
    mem.map(0x1000, pollfd(3, 1, 0) + pollfd(-1, 1, 0) + pollfd(4, 4 | 2, 0));
    const auto& poll = call("poll");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {0x1000, 3, 1000, 0, 0, 0};
    EXPECT_EQ(format_arg(poll, 0, ctx), "[{fd=3, events=POLLIN}, {fd=-1}, {fd=4, events=POLLPRI|POLLOUT}]");
    EXPECT_EQ(return_detail(poll, ctx), "");  // the entry: nothing yet
    mem.map(0x1000, pollfd(3, 1, 1) + pollfd(-1, 1, 0) + pollfd(4, 6, 4));
    ctx.ret = 2;
    EXPECT_EQ(return_detail(poll, ctx), "[{fd=3, revents=POLLIN}, {fd=4, revents=POLLOUT}]");
    ctx.ret = 0;
    EXPECT_EQ(return_detail(poll, ctx), "Timeout");
    ctx.ret = -4;
    EXPECT_EQ(return_detail(poll, ctx), "");
    // From the exit's capture of the array (memory changed since).
    ctx.ret = 1;
    const std::string exit_array = pollfd(3, 1, 0x10) + pollfd(-1, 1, 0) + pollfd(4, 6, 0);
    std::vector<Capture> caps = {cap(0, CaptureKind::BufFixed, exit_array)};
    ctx.event_captures = &caps;
    EXPECT_EQ(return_detail(poll, ctx), "[{fd=3, revents=POLLHUP}]");
    ctx.event_captures = nullptr;
    // Hostile: a count beyond the array, an unreadable one.
    expect_cut_or_address(poll, 0, ctx, {0x1000, 1000000, 0, 0, 0, 0}, {0x9000, 2, 0, 0, 0, 0}, "0x9000");
    ctx.args = {0x9000, 2, 0, 0, 0, 0};
    ctx.ret = 1;
    EXPECT_EQ(return_detail(poll, ctx), "");
    ctx.args = {0, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(poll, 0, ctx), "NULL");
    // recvmmsg that received nothing before its timeout.
    ctx.ret = 0;
    EXPECT_EQ(return_detail(call("recvmmsg"), ctx), "Timeout");
    EXPECT_EQ(return_detail(call("read"), ctx), "");
}

// epoll: the event epoll_ctl registers, the events epoll_wait reports (as many as it returns).
TEST(Memory, EpollEvents) {
    FakeMemory mem;
    auto event = [](std::uint32_t events, std::uint64_t data) { return le32(events) + le64(data); };
    mem.map(0x1000, event(1, 4));
    const auto& ctl = call("epoll_ctl");
    ArgContext ctx = with_memory(mem, {3, 1, 4, 0x1000, 0, 0});
    EXPECT_EQ(format_arg(ctl, 1, ctx), "EPOLL_CTL_ADD");
    EXPECT_EQ(format_arg(ctl, 3, ctx), "{events=EPOLLIN, data={u32=4, u64=4}}");
    ctx.args = {3, 2, 4, 0, 0, 0};
    EXPECT_EQ(format_arg(ctl, 3, ctx), "NULL");
    ArgContext flags;
    flags.args = {0x80000, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("epoll_create1"), 0, flags), "EPOLL_CLOEXEC");

    const auto& wait = call("epoll_wait");
    mem.map(0x2000, event(1 | 0x10, 0x123456789aULL) + event(4, 7) + event(1, 9));
    ctx.args = {3, 0x2000, 8, 0, 0, 0};
    EXPECT_EQ(format_arg(wait, 1, ctx), "0x2000");  // going in
    ctx.ret = 2;
    EXPECT_EQ(format_arg(wait, 1, ctx),
              "[{events=EPOLLIN|EPOLLHUP, data={u32=878082202, u64=78187493530}}, "
              "{events=EPOLLOUT, data={u32=7, u64=7}}]");
    ctx.ret = 0;
    EXPECT_EQ(format_arg(wait, 1, ctx), "[]");
    ctx.ret = -4;
    EXPECT_EQ(format_arg(wait, 1, ctx), "0x2000");
    // Hostile: a return value beyond the room and the array, an unreadable array.
    ctx.ret = 1000;
    ctx.args = {3, 0x2000, 1000, 0, 0, 0};
    const std::string cut = format_arg(wait, 1, ctx);
    EXPECT_EQ(cut.substr(cut.size() - 6), ", ...]") << cut;
    ctx.args = {3, 0x9000, 8, 0, 0, 0};
    EXPECT_EQ(format_arg(wait, 1, ctx), "0x9000");
    // From the capture taken at the exit (memory changed since).
    const std::string exit_bytes = event(8, 1);
    Capture c = cap(1, CaptureKind::BufFixed, exit_bytes);
    ctx.capture = &c;
    ctx.ret = 1;
    EXPECT_EQ(format_arg(wait, 1, ctx), "[{events=EPOLLERR, data={u32=1, u64=1}}]");
}

// The flags of the calls that make descriptors of the kernel's own kinds, in strace's order.
TEST(Args, DescriptorKindsFlags) {
    auto flags = [](std::string_view name, std::size_t arg, std::uint64_t v) {
        ArgContext ctx;
        ctx.args[arg] = v;
        return format_arg(call(name), arg, ctx);
    };
    EXPECT_EQ(flags("memfd_create", 1, 3), "MFD_CLOEXEC|MFD_ALLOW_SEALING");
    EXPECT_EQ(flags("memfd_create", 1, 0x43), "MFD_CLOEXEC|MFD_ALLOW_SEALING|0x40");
    EXPECT_EQ(flags("eventfd2", 1, 02004001), "EFD_SEMAPHORE|EFD_CLOEXEC|EFD_NONBLOCK");
    EXPECT_EQ(flags("timerfd_create", 1, 02004000), "TFD_CLOEXEC|TFD_NONBLOCK");
    EXPECT_EQ(flags("inotify_init1", 0, 02004000), "IN_NONBLOCK|IN_CLOEXEC");
    EXPECT_EQ(flags("inotify_add_watch", 2, 0x01000300), "IN_CREATE|IN_DELETE|IN_ONLYDIR");
}

// The arguments strace would print for the call, joined.
std::string shown(const SyscallInfo& info, const ArgContext& ctx) {
    std::string out;
    const std::size_t n = printed_args(info, ctx.args);
    for (std::size_t i = 0; i < n; ++i) out += (i ? ", " : "") + format_arg(info, i, ctx);
    return out;
}

// ptrace and prctl as strace prints them: only the arguments the request uses, by name.
TEST(Memory, PtraceAndPrctl) {
    const auto& ptrace = call("ptrace");
    ArgContext ctx;
    ctx.args = {0, 0, 0, 0, 0, 0};
    EXPECT_EQ(shown(ptrace, ctx), "PTRACE_TRACEME");
    ctx.args = {16, 123, 0, 0, 0, 0};
    EXPECT_EQ(shown(ptrace, ctx), "PTRACE_ATTACH, 123");
    ctx.args = {7, 123, 0, 19, 0, 0};
    EXPECT_EQ(shown(ptrace, ctx), "PTRACE_CONT, 123, NULL, SIGSTOP");
    ctx.args = {0x4206, 123, 0, 0x100001, 0, 0};
    EXPECT_EQ(shown(ptrace, ctx), "PTRACE_SEIZE, 123, NULL, PTRACE_O_TRACESYSGOOD|PTRACE_O_EXITKILL");
    ctx.args = {0x7777, 1, 0x1000, 0x2000, 0, 0};
    EXPECT_EQ(shown(ptrace, ctx), "0x7777 /* PTRACE_??? */, 1, 0x1000, 0x2000");

    const auto& prctl = call("prctl");
    FakeMemory mem;
    mem.map(0x1000, std::string("kworker/0:1\0", 12));
    ctx.memory = &mem;
    ctx.args = {15, 0x1000, 0, 0, 0, 0};
    EXPECT_EQ(shown(prctl, ctx), "PR_SET_NAME, \"kworker/0:1\"");
    ctx.args = {16, 0x1000, 0, 0, 0, 0};
    EXPECT_EQ(shown(prctl, ctx), "PR_GET_NAME, 0x1000");  // going in
    EXPECT_TRUE(decoded_at_exit(prctl, 1, ctx.args));
    ctx.ret = 0;
    EXPECT_EQ(shown(prctl, ctx), "PR_GET_NAME, \"kworker/0:1\"");
    ctx.ret.reset();
    ctx.args = {1, 15, 0, 0, 0, 0};
    EXPECT_EQ(shown(prctl, ctx), "PR_SET_PDEATHSIG, SIGTERM");
    EXPECT_FALSE(decoded_at_exit(prctl, 1, ctx.args));
    ctx.args = {38, 1, 0, 0, 0, 0};
    EXPECT_EQ(shown(prctl, ctx), "PR_SET_NO_NEW_PRIVS, 0x1, 0, 0, 0");
    // A name the entry could not read and the exit cannot either: what the entry showed.
    ctx.args = {15, 0x9000, 0, 0, 0, 0};
    ctx.ret = 0;
    ctx.entry_text = "0x9000";
    EXPECT_EQ(format_arg(prctl, 1, ctx), "0x9000");
}

// Modes as strace prints them: a number where a call creates a file or sets a mode or mask
// (even with file-type bits, as gzip passes a whole st_mode), symbolic for mknod; umask's
// previous mask in octal.
TEST(Memory, ModesAndMasks) {
    ArgContext ctx;
    ctx.args = {static_cast<std::uint64_t>(-100), 0x1000, 0301, 0100644, 0, 0};
    EXPECT_EQ(format_arg(call("openat"), 3, ctx), "0100644");
    ctx.args = {0x1000, 04755, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("chmod"), 1, ctx), "04755");
    ctx.args = {static_cast<std::uint64_t>(-100), 0x1000, 0022600, 0x501, 0, 0};
    EXPECT_EQ(format_arg(call("mknodat"), 2, ctx), "S_IFCHR|S_ISGID|0600");
    // A device's number as strace prints it; a FIFO's (and a file's) is not printed at all.
    EXPECT_EQ(format_arg(call("mknodat"), 3, ctx), "makedev(0x5, 0x1)");
    ctx.args[3] = 0x700;
    EXPECT_EQ(format_arg(call("mknodat"), 3, ctx), "makedev(0x7, 0)");
    ctx.args[3] = 0x501;
    ctx.args[3] = 0x10010203;  // major 0x102, minor 0x10003 (the high minor bits above the major)
    EXPECT_EQ(format_arg(call("mknodat"), 3, ctx), "makedev(0x102, 0x10003)");
    EXPECT_EQ(printed_args(call("mknodat"), ctx.args), 4u);
    ctx.args[2] = 0010666;  // S_IFIFO
    EXPECT_EQ(printed_args(call("mknodat"), ctx.args), 3u);
    EXPECT_EQ(printed_args(call("mknod"), {0x1000, 0060600, 0x801, 0, 0, 0}), 3u);
    EXPECT_EQ(printed_args(call("mknod"), {0x1000, 0100600, 0, 0, 0, 0}), 2u);
    ctx.args = {022, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("umask"), 0, ctx), "022");
    EXPECT_EQ(format_return(&call("umask"), 0, false).text, "000");
    EXPECT_EQ(format_return(&call("umask"), 022, false).text, "022");
}

// size bytes of zeros with little-endian fields {offset, value, width} written in.
struct Field {
    std::size_t offset;
    std::uint64_t value;
    std::size_t width;
};
std::string image(std::size_t size, std::initializer_list<Field> fields) {
    std::string out(size, '\0');
    for (const Field& f : fields) {
        for (std::size_t b = 0; b < f.width; ++b) out[f.offset + b] = static_cast<char>(f.value >> (8 * b));
    }
    return out;
}

// File times, file systems, the system's state and groups as strace prints them.
TEST(Memory, TimesFileSystemsAndGroups) {
    ArgContext ctx;
    ctx.args = {static_cast<std::uint64_t>(-100), 0x1000, 0x2000, 0x100, 0, 0};
    std::string times = le64(1700000000) + le64(5) + le64(0) + le64((1 << 30) - 2);
    Capture t = cap(2, CaptureKind::BufFixed, times);
    ctx.capture = &t;
    const auto& utimensat = call("utimensat");
    EXPECT_EQ(format_arg(utimensat, 2, ctx),
              "[{tv_sec=1700000000, tv_nsec=5} /* 2023-11-14T22:13:20.000000005+0000 */, UTIME_OMIT]");
    EXPECT_EQ(format_arg(utimensat, 3, ctx), "AT_SYMLINK_NOFOLLOW");
    times = le64(86400) + le64(0) + le64(-1) + le64(2000000000);  // the second: no valid time
    Capture t2 = cap(2, CaptureKind::BufFixed, times);
    ctx.capture = &t2;
    EXPECT_EQ(format_arg(utimensat, 2, ctx),
              "[{tv_sec=86400, tv_nsec=0} /* 1970-01-02T00:00:00+0000 */, {tv_sec=-1, tv_nsec=2000000000}]");

    std::string sfs = image(120, {{0, 0x9fa0, 8}, {8, 4096, 8}, {56, 0xa0352f5e, 4}, {64, 255, 8}, {80, 0x1020, 8}});
    Capture f = cap(1, CaptureKind::BufFixed, sfs);
    ctx.capture = &f;
    ctx.args = {3, 0x1000, 0, 0, 0, 0};
    ctx.ret = 0;
    EXPECT_EQ(format_arg(call("fstatfs"), 1, ctx),
              "{f_type=PROC_SUPER_MAGIC, f_bsize=4096, f_blocks=0, f_bfree=0, f_bavail=0, f_files=0, "
              "f_ffree=0, f_fsid={val=[0xa0352f5e, 0]}, f_namelen=255, f_frsize=0, "
              "f_flags=ST_VALID|ST_RELATIME}");
    sfs.replace(0, 8, le64(0x12345678));
    Capture f2 = cap(1, CaptureKind::BufFixed, sfs);
    ctx.capture = &f2;
    EXPECT_EQ(format_arg(call("fstatfs"), 1, ctx).substr(0, 19), "{f_type=0x12345678,");

    const std::string si = image(112, {{0, 10, 8}, {8, 5248, 8}, {32, 491806720, 8}, {80, 47, 2}, {104, 1, 4}});
    Capture sc = cap(0, CaptureKind::BufFixed, si);
    ctx.capture = &sc;
    ctx.args = {0x1000, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("sysinfo"), 0, ctx),
              "{uptime=10, loads=[5248, 0, 0], totalram=491806720, freeram=0, sharedram=0, bufferram=0, "
              "totalswap=0, freeswap=0, procs=47, totalhigh=0, freehigh=0, mem_unit=1}");

    // Groups: set (at the entry, as many as the count), read back (as many as returned); a
    // count the capture does not cover (hostile or huge) shows the first 32 then "...".
    std::string gids;
    for (std::uint32_t g = 0; g < 40; ++g) gids += le32(g);
    const std::string first32 = gids.substr(0, 128);
    Capture gc = cap(1, CaptureKind::BufFixed, first32);
    ctx.capture = &gc;
    ctx.ret.reset();
    ctx.args = {2, 0x1000, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("setgroups"), 1, ctx), "[0, 1]");
    ctx.args = {0x7fffffff, 0x1000, 0, 0, 0, 0};
    const std::string many = format_arg(call("setgroups"), 1, ctx);
    EXPECT_EQ(many.substr(many.size() - 12), "30, 31, ...]");
    ctx.args = {4, 0x1000, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("getgroups"), 1, ctx), "0x1000");  // going in
    ctx.ret = 3;
    EXPECT_EQ(format_arg(call("getgroups"), 1, ctx), "[0, 1, 2]");
    ctx.args = {0, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(call("getgroups"), 1, ctx), "NULL");
}

// ioctl as strace 6.1 prints it: the request by name (or its _IOC fields), then the third
// argument as the request defines it, read at the entry or at the exit.
TEST(Memory, IoctlByRequest) {
    const auto& ioctl = call("ioctl");
    FakeMemory mem;
    mem.map(0x1000, std::string("\x03\x00\x00\x00", 4));
    // struct termios of a fresh pseudo-terminal: ICRNL|IXON, OPOST|ONLCR, B38400|CS8|CREAD,
    // ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN
    std::string tio(36, '\0');
    auto put32 = [&](std::size_t off, std::uint32_t v) {
        for (int b = 0; b < 4; ++b) tio[off + b] = static_cast<char>(v >> (8 * b));
    };
    put32(0, 02400);
    put32(4, 05);
    put32(8, 0277);
    put32(12, 0105073);
    mem.map(0x2000, tio);
    mem.map(0x3000, std::string("\x18\x00\x50\x00\x00\x00\x00\x00", 8));
    ArgContext ctx;
    ctx.memory = &mem;

    ctx.args = {4, 0x541b, 0x1000, 0, 0, 0};  // FIONREAD: written by the call
    EXPECT_EQ(shown(ioctl, ctx), "4, FIONREAD, 0x1000");
    EXPECT_TRUE(decoded_at_exit(ioctl, 2, ctx.args));
    EXPECT_EQ(first_exit_arg(ioctl, ctx.args), 2u);
    ctx.ret = 0;
    EXPECT_EQ(shown(ioctl, ctx), "4, FIONREAD, [3]");
    ctx.ret = -25;  // ENOTTY: nothing written, the address
    EXPECT_EQ(shown(ioctl, ctx), "4, FIONREAD, 0x1000");
    ctx.ret.reset();

    ctx.args = {4, 0x5421, 0x1000, 0, 0, 0};  // FIONBIO: read by the call
    EXPECT_EQ(shown(ioctl, ctx), "4, FIONBIO, [3]");
    EXPECT_FALSE(decoded_at_exit(ioctl, 2, ctx.args));
    ctx.args = {4, 0x5402, 0x2000, 0, 0, 0};
    EXPECT_EQ(shown(ioctl, ctx),
              "4, SNDCTL_TMR_START or TCSETS, {c_iflag=ICRNL|IXON, c_oflag=NL0|CR0|TAB0|BS0|VT0|FF0|"
              "OPOST|ONLCR, c_cflag=B38400|CS8|CREAD, c_lflag=ISIG|ICANON|ECHO|ECHOE|ECHOK|IEXTEN|"
              "ECHOCTL|ECHOKE, ...}");
    ctx.args = {4, 0x5401, 0x2000, 0, 0, 0};
    EXPECT_EQ(shown(ioctl, ctx), "4, TCGETS, 0x2000");
    ctx.ret = 0;
    EXPECT_EQ(shown(ioctl, ctx).substr(0, 29), "4, TCGETS, {c_iflag=ICRNL|IXO");
    ctx.args = {4, 0x5413, 0x3000, 0, 0, 0};
    EXPECT_EQ(shown(ioctl, ctx), "4, TIOCGWINSZ, {ws_row=24, ws_col=80, ws_xpixel=0, ws_ypixel=0}");
    ctx.args = {4, 0x5413, 0x3004, 0, 0, 0};  // only 4 of its 8 bytes readable
    EXPECT_EQ(shown(ioctl, ctx), "4, TIOCGWINSZ, 0x3004");
    ctx.args = {4, 0x5413, 0, 0, 0, 0};
    EXPECT_EQ(shown(ioctl, ctx), "4, TIOCGWINSZ, NULL");
    ctx.ret.reset();
    // Arguments that are no pointer or not followed: none, numbers, names. Requests nitro does
    // not name: their fields, and the argument as a number. Named ones whose structure nitro
    // does not decode: the address; named ones strace leaves as a number: hex.
    struct Case {
        std::uint64_t request, arg;
        std::string_view want;
    };
    const Case cases[] = {
        {0x5451, 0, "FIOCLEX"},
        {0x540b, 0, "TCFLSH, TCIFLUSH"},
        {0x540a, 0x1234, "TCXONC, 0x1234 /* TC??? */"},
        {0x540e, 0x1234, "TIOCSCTTY, 4660"},
        {0x80049901, 0x7ffe0000, "_IOC(_IOC_READ, 0x99, 0x1, 0x4), 0x7ffe0000"},
        {0xc0085477, 0x7ffe0000, "_IOC(_IOC_READ|_IOC_WRITE, 0x54, 0x77, 0x8), 0x7ffe0000"},
        {0x9902, 0, "_IOC(_IOC_NONE, 0x99, 0x2, 0), 0"},
        {0x8933, 0x7ffe0000, "SIOCGIFINDEX, 0x7ffe0000"},
        {0x8933, 0, "SIOCGIFINDEX, NULL"},
        {0x541e, 0, "TIOCGSERIAL, 0"},
        {0x40049409, 3, "BTRFS_IOC_CLONE or FICLONE, 3"},
    };
    for (const Case& c : cases) {
        ctx.args = {4, c.request, c.arg, 0, 0, 0};
        EXPECT_EQ(shown(ioctl, ctx), "4, " + std::string(c.want));
    }
}

// getdents64/getdents: the records counted by their lengths, as strace prints them without -v;
// the address when they are not all there or do not add up (a hostile buffer).
TEST(Memory, DirectoryEntriesCounted) {
    const auto& getdents64 = call("getdents64");
    auto record = [](std::string_view name) {
        // linux_dirent64: ino, off, reclen, type, name, NUL, padded to 8 bytes
        const std::size_t len = (19 + name.size() + 1 + 7) & ~std::size_t{7};
        std::string r(len, '\0');
        r[16] = static_cast<char>(len);
        r.replace(19, name.size(), name);
        return r;
    };
    const std::string dir = record(".") + record("..") + record("a.txt");
    FakeMemory mem;
    mem.map(0x1000, dir);
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {3, 0x1000, 32768, 0, 0, 0};
    EXPECT_EQ(format_arg(getdents64, 1, ctx), "0x1000");  // going in
    ctx.ret = static_cast<std::int64_t>(dir.size());
    EXPECT_EQ(format_arg(getdents64, 1, ctx), "0x1000 /* 3 entries */");
    ctx.ret = 0;
    EXPECT_EQ(format_arg(getdents64, 1, ctx), "0x1000 /* 0 entries */");
    ctx.ret = static_cast<std::int64_t>(dir.size()) - 8;  // ends inside a record
    EXPECT_EQ(format_arg(getdents64, 1, ctx), "0x1000");
    ctx.ret = static_cast<std::int64_t>(dir.size()) + 64;  // more than there is to read
    EXPECT_EQ(format_arg(getdents64, 1, ctx), "0x1000");
    std::string zero = dir;
    zero[16] = 0;  // a record of length 0 would never end
    mem.map(0x5000, zero);
    ctx.args[1] = 0x5000;
    ctx.ret = static_cast<std::int64_t>(zero.size());
    EXPECT_EQ(format_arg(getdents64, 1, ctx), "0x5000");
    ctx.ret = -9;
    EXPECT_EQ(format_arg(getdents64, 1, ctx), "0x5000");
}

// futex as strace prints it: the operation by name, then only what the command uses.
TEST(Memory, FutexByCommand) {
    const auto& futex = call("futex");
    FakeMemory mem;
    mem.map(0x2000, le64(0) + le64(1000));
    ArgContext ctx;
    ctx.memory = &mem;
    auto shown = [&](std::array<std::uint64_t, 6> args) {
        ctx.args = args;
        std::string out;
        for (std::size_t i = 0; i < futex.nargs; ++i) {
            const std::string t = format_arg(futex, i, ctx);
            if (!t.empty()) out += (out.empty() ? "" : ", ") + t;
        }
        return out;
    };
    EXPECT_EQ(shown({0x1000, 128, 2, 0, 0, 0}), "0x1000, FUTEX_WAIT_PRIVATE, 2, NULL");
    EXPECT_EQ(shown({0x1000, 0, 2, 0x2000, 0, 0}), "0x1000, FUTEX_WAIT, 2, {tv_sec=0, tv_nsec=1000}");
    EXPECT_EQ(shown({0x1000, 129, 1, 0x55, 0x66, 7}), "0x1000, FUTEX_WAKE_PRIVATE, 1");
    EXPECT_EQ(shown({0x1000, 9 | 128 | 256, 0, 0, 0, 0xffffffff}),
              "0x1000, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, NULL, FUTEX_BITSET_MATCH_ANY");
    EXPECT_EQ(shown({0x1000, 10, 1, 0, 0, 2}), "0x1000, FUTEX_WAKE_BITSET, 1, 0x2");
    EXPECT_EQ(shown({0x1000, 4 | 128, 1, 5, 0x3000, 1}), "0x1000, FUTEX_CMP_REQUEUE_PRIVATE, 1, 5, 0x3000, 1");
    EXPECT_EQ(shown({0x1000, 7, 1, 0, 0, 0}), "0x1000, FUTEX_UNLOCK_PI");
    EXPECT_EQ(shown({0x1000, 6, 1, 0, 0, 0}), "0x1000, FUTEX_LOCK_PI, NULL");
    // (strace decodes WAKE_OP's val3 as {op=..., cmp=...}; nitro shows the number)
    EXPECT_EQ(shown({0x1000, 5, 1, 2, 0x3000, 0x4000001}), "0x1000, FUTEX_WAKE_OP, 1, 2, 0x3000, 0x4000001");
    EXPECT_EQ(shown({0x1000, 99, 1, 0, 0, 0}), "0x1000, 0x63 /* FUTEX_??? */, 1, NULL, NULL, 0");
    EXPECT_EQ(shown({0x1000, 0x10000, 1, 0, 0, 0}), "0x1000, 0x10000 /* FUTEX_??? */, 1, NULL");
    // A timeout that cannot be read: its address.
    EXPECT_EQ(shown({0x1000, 0, 2, 0x9000, 0, 0}), "0x1000, FUTEX_WAIT, 2, 0x9000");
}

// select/pselect6: the sets going in ("[3 4]"), and after the return value the descriptors
// the call left set, as many as it returned, and the time it left ("in [3], left {...}").
TEST(Memory, SelectSetsAndTheirDetail) {
    FakeMemory mem;
    auto set = [](std::initializer_list<int> fds) {
        std::string bits(128, '\0');
        for (int fd : fds) bits[fd / 8] = static_cast<char>(bits[fd / 8] | (1 << (fd % 8)));
        return bits;
    };
    mem.map(0x1000, set({3, 4}));
    mem.map(0x2000, set({}));
    mem.map(0x3000, le64(1) + le64(0));
    const auto& select = call("select");
    ArgContext ctx = with_memory(mem, {5, 0x1000, 0x2000, 0, 0x3000, 0});
    EXPECT_EQ(format_arg(select, 1, ctx), "[3 4]");
    EXPECT_EQ(format_arg(select, 2, ctx), "[]");
    EXPECT_EQ(format_arg(select, 3, ctx), "NULL");
    EXPECT_EQ(format_arg(select, 4, ctx), "{tv_sec=1, tv_usec=0}");
    ctx.args[0] = 4;  // descriptor 4 is beyond the n bits
    EXPECT_EQ(format_arg(select, 1, ctx), "[3]");
    ctx.args[0] = 5;
    // The exit: what the call left set and the time left.
    mem.map(0x1000, set({4}));
    mem.map(0x3000, le64(0) + le64(999998));
    ctx.ret = 1;
    EXPECT_EQ(return_detail(select, ctx), "in [4], left {tv_sec=0, tv_usec=999998}");
    ctx.ret = 0;
    EXPECT_EQ(return_detail(select, ctx), "Timeout");
    // From the exit's captures (memory changed since); no timeout pointer.
    const std::string in = set({3}), out = set({4});
    std::vector<Capture> caps = {cap(1, CaptureKind::BufLenArg, in), cap(2, CaptureKind::BufLenArg, out)};
    ctx.event_captures = &caps;
    ctx.args = {5, 0x1000, 0x2000, 0, 0, 0};
    ctx.ret = 2;
    const auto& pselect6 = call("pselect6");
    EXPECT_EQ(return_detail(pselect6, ctx), "in [3], out [4]");
    ctx.ret = 1;  // as many as returned: the first
    EXPECT_EQ(return_detail(pselect6, ctx), "in [3]");
    // Hostile: an absurd n is cut at FD_SETSIZE bits; an unreadable set prints its address.
    ctx.event_captures = nullptr;
    ctx.ret.reset();
    ctx.args = {~0ULL, 0x1000, 0x9000, 0, 0, 0};
    EXPECT_EQ(format_arg(select, 1, ctx), "[4]");
    EXPECT_EQ(format_arg(select, 2, ctx), "0x9000");
}

// uname's struct utsname, abbreviated like strace: the first two fields, then "...".
TEST(Memory, Utsname) {
    FakeMemory mem;
    std::string un(390, '\0');
    un.replace(0, 5, "Linux");
    un.replace(65, 6, "(none)");
    un.replace(130, 8, "6.1.0-56");
    mem.map(0x1000, un);
    ArgContext ctx = with_memory(mem, {0x1000, 0, 0, 0, 0, 0});
    const auto& uname = call("uname");
    EXPECT_EQ(format_arg(uname, 0, ctx), "0x1000");  // going in
    ctx.ret = 0;
    EXPECT_EQ(format_arg(uname, 0, ctx), "{sysname=\"Linux\", nodename=\"(none)\", ...}");
    // Hostile: fields without their NUL (the whole 65 bytes, cut at the string limit).
    mem.map(0x1000, std::string(390, 'A'));
    EXPECT_EQ(format_arg(uname, 0, ctx).substr(0, 46), "{sysname=\"" + std::string(32, 'A') + "\"...");
    ctx.args[0] = 0x9000;
    EXPECT_EQ(format_arg(uname, 0, ctx), "0x9000");
}

// struct ifreq for the interface requests: the name, then the member the request reads or
// writes; a get request that failed shows the name alone; hostile bytes stay bounded.
TEST(Memory, IoctlIfreq) {
    FakeMemory mem;
    auto ifreq = [](const std::string& name, const std::string& value) {
        std::string r(40, '\0');
        r.replace(0, name.size(), name);
        r.replace(16, value.size(), value);
        return r;
    };
    mem.map(0x1000, ifreq("lo", std::string("\x49\x00", 2)));                  // flags
    mem.map(0x2000, ifreq("eth0", std::string("\xdc\x05\x00\x00", 4)));       // 1500
    mem.map(0x3000, ifreq("eth0", std::string("\x01\x00\x52\x54\x00\x12\x34\x56", 8)));
    mem.map(0x4000, ifreq("lo", std::string("\x02\x00\x00\x00\x7f\x00\x00\x01", 8)));
    mem.map(0x5000, std::string(40, 'A'));  // a name without its NUL
    mem.map(0x6000 - 20, std::string(20, 'x'));  // only 20 of its 40 bytes readable
    const auto& ioctl = call("ioctl");
    ArgContext ctx;
    ctx.memory = &mem;
    auto shown = [&](std::uint64_t request, std::uint64_t addr) {
        ctx.args = {3, request, addr, 0, 0, 0};
        return format_arg(ioctl, 2, ctx);
    };
    EXPECT_EQ(shown(0x8913, 0x1000), "0x1000");  // SIOCGIFFLAGS going in: decoded at the exit
    EXPECT_TRUE(decoded_at_exit(ioctl, 2, {3, 0x8913, 0x1000, 0, 0, 0}));
    EXPECT_FALSE(decoded_at_exit(ioctl, 2, {3, 0x8914, 0x1000, 0, 0, 0}));
    EXPECT_EQ(shown(0x8914, 0x1000), "{ifr_name=\"lo\", ifr_flags=IFF_UP|IFF_LOOPBACK|IFF_RUNNING}");
    ctx.ret = 0;
    EXPECT_EQ(shown(0x8913, 0x1000), "{ifr_name=\"lo\", ifr_flags=IFF_UP|IFF_LOOPBACK|IFF_RUNNING}");
    EXPECT_EQ(shown(0x8921, 0x2000), "{ifr_name=\"eth0\", ifr_mtu=1500}");
    EXPECT_EQ(shown(0x8927, 0x3000),
              "{ifr_name=\"eth0\", ifr_hwaddr={sa_family=ARPHRD_ETHER, sa_data=52:54:00:12:34:56}}");
    EXPECT_EQ(shown(0x8915, 0x4000),
              "{ifr_name=\"lo\", ifr_addr={sa_family=AF_INET, sin_port=htons(0), "
              "sin_addr=inet_addr(\"127.0.0.1\")}}");
    EXPECT_EQ(shown(0x8910, 0x2000), "{ifr_ifindex=1500, ifr_name=\"eth0\"}");  // SIOCGIFNAME
    // At most the 16 bytes of the name, its NUL or not.
    EXPECT_EQ(shown(0x8921, 0x5000).substr(0, 29), "{ifr_name=\"AAAAAAAAAAAAAAAA\",");
    EXPECT_EQ(shown(0x8921, 0x6000 - 20), "0x5fec");
    EXPECT_EQ(shown(0x8921, 0), "NULL");
    ctx.compat = true;  // a 32-bit program: its struct ifmap differs, the rest does not
    EXPECT_EQ(shown(0x8970, 0x2000), "0x2000");
    EXPECT_EQ(shown(0x8921, 0x2000), "{ifr_name=\"eth0\", ifr_mtu=1500}");
    ctx.compat = false;
    ctx.ret = -19;  // ENODEV: the name alone
    EXPECT_EQ(shown(0x8921, 0x2000), "{ifr_name=\"eth0\"}");
    EXPECT_EQ(shown(0x8910, 0x2000), "{ifr_ifindex=1500}");
}

// SIOCGIFCONF's struct ifconf: the length and the buffer's address going in; the length going
// in and coming out and the interfaces listed, or for a size query the length alone; hostile
// lengths stay bounded.
TEST(Memory, IoctlIfconf) {
    FakeMemory mem;
    auto ifconf = [](std::int32_t len, std::uint64_t buf) {
        std::string s(16, '\0');
        std::memcpy(s.data(), &len, 4);
        std::memcpy(s.data() + 8, &buf, 8);
        return s;
    };
    std::string lo(40, '\0');
    lo.replace(0, 2, "lo");
    lo.replace(16, 8, std::string("\x02\x00\x00\x00\x7f\x00\x00\x01", 8));
    std::string eth = lo;
    eth.replace(0, 4, "eth0");
    eth.replace(20, 4, std::string("\x0a\x00\x02\x0f", 4));
    mem.map(0x1000, ifconf(120, 0x2000));
    mem.map(0x2000, lo + eth);
    const auto& ioctl = call("ioctl");
    ArgContext ctx;
    ctx.memory = &mem;
    ctx.args = {3, 0x8912, 0x1000, 0, 0, 0};
    EXPECT_TRUE(decoded_at_exit(ioctl, 2, ctx.args));
    const std::string entry = format_arg(ioctl, 2, ctx);
    EXPECT_EQ(entry, "{ifc_len=120 /* 3 * sizeof(struct ifreq) */, ifc_buf=0x2000}");
    // The call wrote two interfaces' length.
    mem.map(0x1000, ifconf(80, 0x2000));
    ctx.ret = 0;
    ctx.entry_text = entry;
    EXPECT_EQ(format_arg(ioctl, 2, ctx),
              "{ifc_len=120 /* 3 * sizeof(struct ifreq) */ => 80 /* 2 * sizeof(struct ifreq) */, "
              "ifc_buf=[{ifr_name=\"lo\", ifr_addr={sa_family=AF_INET, sin_port=htons(0), "
              "sin_addr=inet_addr(\"127.0.0.1\")}}, {ifr_name=\"eth0\", ifr_addr={sa_family=AF_INET, "
              "sin_port=htons(0), sin_addr=inet_addr(\"10.0.2.15\")}}]}");
    // None listed.
    mem.map(0x1000, ifconf(0, 0x2000));
    EXPECT_EQ(format_arg(ioctl, 2, ctx), "{ifc_len=120 /* 3 * sizeof(struct ifreq) */ => 0, ifc_buf=[]}");
    // A size query: no buffer going in, the length the list needs coming out.
    mem.map(0x1000, ifconf(0, 0));
    ctx.ret.reset();
    ctx.entry_text = {};
    const std::string query = format_arg(ioctl, 2, ctx);
    EXPECT_EQ(query, "{ifc_len=0, ifc_buf=NULL}");
    mem.map(0x1000, ifconf(40, 0));
    ctx.ret = 0;
    ctx.entry_text = query;
    EXPECT_EQ(format_arg(ioctl, 2, ctx), "{ifc_len=40 /* 1 * sizeof(struct ifreq) */, ifc_buf=NULL}");
    // A failed call: what went in.
    ctx.ret = -14;
    EXPECT_EQ(format_arg(ioctl, 2, ctx), query);
    // Hostile: a length that is no multiple, a negative one, one far beyond the buffer.
    ctx.ret = 0;
    ctx.entry_text = entry;
    mem.map(0x1000, ifconf(41, 0x2000));
    EXPECT_EQ(format_arg(ioctl, 2, ctx).substr(0, 57),
              "{ifc_len=120 /* 3 * sizeof(struct ifreq) */ => 41, ifc_bu");
    mem.map(0x1000, ifconf(-40, 0x2000));
    EXPECT_EQ(format_arg(ioctl, 2, ctx), "{ifc_len=120 /* 3 * sizeof(struct ifreq) */ => -40, ifc_buf=[]}");
    mem.map(0x1000, ifconf(0x7ffffff8, 0x2000));
    const std::string huge = format_arg(ioctl, 2, ctx);
    EXPECT_NE(huge.find("ifc_buf=[{ifr_name=\"lo\""), std::string::npos) << huge;
    EXPECT_EQ(huge.substr(huge.size() - 7), ", ...]}");
    EXPECT_LT(huge.size(), 2000u);
    ctx.compat = true;  // a 32-bit program's struct ifconf: its address
    EXPECT_EQ(format_arg(ioctl, 2, ctx), "0x1000");
}

// reboot: the magic numbers and the command by name, unknown ones in hex with strace's comment;
// the fourth argument only for LINUX_REBOOT_CMD_RESTART2.
TEST(Memory, Reboot) {
    FakeMemory mem;
    mem.map(0x1000, std::string("now\0", 4));
    const auto& reboot = call("reboot");
    auto shown = [&](std::array<std::uint64_t, 6> args) {
        ArgContext ctx = with_memory(mem, args);
        std::string out;
        for (std::size_t i = 0; i < printed_args(reboot, args); ++i) out += (i ? ", " : "") + format_arg(reboot, i, ctx);
        return out;
    };
    // As the 64-bit register holds it after a 32-bit int: sign-extended or not, the same.
    EXPECT_EQ(shown({0xfffffffffee1deadULL, 672274793, 0x4321fedc, 0, 0, 0}),
              "LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF");
    EXPECT_EQ(shown({0xfee1dead, 672274793, 0x12345678, 0, 0, 0}),
              "LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, 0x12345678 /* LINUX_REBOOT_CMD_??? */");
    EXPECT_EQ(shown({1, 85072278, 0x4321fedc, 0x1000, 0, 0}),
              "0x1 /* LINUX_REBOOT_MAGIC_??? */, LINUX_REBOOT_MAGIC2A, LINUX_REBOOT_CMD_POWER_OFF");
    EXPECT_EQ(shown({2, 369367448, 0xa1b2c3d4, 0x1000, 0, 0}),
              "0x2 /* LINUX_REBOOT_MAGIC_??? */, LINUX_REBOOT_MAGIC2B, LINUX_REBOOT_CMD_RESTART2, \"now\"");
}

// rt_sigreturn's pseudo-argument: the mask its frame restores, at the stack pointer + 296
// (x86-64); the frame's address when unreadable; nothing for a 32-bit program (not decoded).
TEST(Memory, RtSigreturnMask) {
    FakeMemory mem;
    std::string mask(8, '\0');
    mask[0] = 0x02;  // SIGINT
    mask[1] = 0x40;  // SIGTERM (bit 14)
    mem.map(0x7ffc0000 + 296, mask);
    const auto& sigreturn = call("rt_sigreturn");
    ArgContext ctx = with_memory(mem, {0, 0, 0, 0, 0, 0});
    ctx.stack_pointer = 0x7ffc0000;
    EXPECT_EQ(format_arg(sigreturn, 0, ctx), "{mask=[INT TERM]}");
    mem.map(0x7ffc0000 + 296, std::string(8, '\xff'));
    EXPECT_EQ(format_arg(sigreturn, 0, ctx), "{mask=~[]}");
    ctx.stack_pointer = 0x9000;
    EXPECT_EQ(format_arg(sigreturn, 0, ctx), "0x9000");
    ctx.compat = true;
    EXPECT_EQ(format_arg(sigreturn, 0, ctx), "");
}

// syslog: the action as a number with its name in a comment; the buffer read at the exit for
// the actions that fill it, an address for the others.
TEST(Memory, Syslog) {
    FakeMemory mem;
    mem.map(0x1000, "<6>[    0.000000] Linux version");
    const auto& syslog = call("syslog");
    ArgContext ctx = with_memory(mem, {3, 0x1000, 16384, 0, 0, 0});
    EXPECT_EQ(format_arg(syslog, 0, ctx), "3 /* SYSLOG_ACTION_READ_ALL */");
    EXPECT_TRUE(decoded_at_exit(syslog, 1, ctx.args));
    ctx.ret = 8;
    EXPECT_EQ(format_arg(syslog, 1, ctx), "\"<6>[    \"");
    ctx.ret = -1;  // EPERM: the address
    EXPECT_EQ(format_arg(syslog, 1, ctx), "0x1000");
    ctx.args = {10, 0, 0, 0, 0, 0};
    ctx.ret = 16384;
    EXPECT_EQ(format_arg(syslog, 0, ctx), "10 /* SYSLOG_ACTION_SIZE_BUFFER */");
    EXPECT_FALSE(decoded_at_exit(syslog, 1, ctx.args));
    EXPECT_EQ(printed_args(syslog, ctx.args), 1u);  // neither buffer nor length: not shown
    EXPECT_EQ(printed_args(syslog, {3, 0, 0, 0, 0, 0}), 3u);
    ctx.args = {8, 0x1000, 5, 0, 0, 0};  // CONSOLE_LEVEL: no buffer, and a level
    EXPECT_EQ(printed_args(syslog, ctx.args), 3u);
    EXPECT_EQ(format_arg(syslog, 1, ctx), "0x1000");
    EXPECT_EQ(format_arg(syslog, 2, ctx), "5 /* LOGLEVEL_NOTICE */");
    ctx.args[2] = 9;
    EXPECT_EQ(format_arg(syslog, 2, ctx), "9 /* LOGLEVEL_??? */");
    ctx.args[0] = 3;
    EXPECT_EQ(format_arg(syslog, 2, ctx), "9");
    ctx.args = {99, 0, 0, 0, 0, 0};
    EXPECT_EQ(format_arg(syslog, 0, ctx), "99 /* SYSLOG_ACTION_??? */");
    EXPECT_EQ(format_arg(syslog, 1, ctx), "NULL");  // unknown: the address and the length
    EXPECT_EQ(format_arg(syslog, 2, ctx), "0");
}

TEST(Memory, ExecStack) {
    FakeMemory mem;
    // argc, argv[2], NULL, envp[1], NULL, AT_PAGESZ, AT_EXECFN, AT_NULL; strings above.
    std::string stack = le64(2) + le64(0x8100) + le64(0x8110) + le64(0) + le64(0x8120) + le64(0) +
                        le64(6) + le64(4096) + le64(31) + le64(0x8130) + le64(0) + le64(0);
    mem.map(0x8000, stack);
    mem.map(0x8100, std::string("prog\0\0\0\0\0\0\0\0\0\0\0\0", 16) + std::string("arg\0", 4));
    mem.map(0x8120, std::string("A=1\0", 4));
    mem.map(0x8130, std::string("/bin/prog\0", 10));
    auto st = read_exec_stack(mem, 0x8000, false);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->argv, (std::vector<std::string>{"prog", "arg"}));
    EXPECT_TRUE(st->argv_complete);
    EXPECT_EQ(st->envc, 1u);
    EXPECT_EQ(st->execfn, "/bin/prog");

    const auto& execve = call("execve");
    std::array<std::uint64_t, 6> values = {0x400000, 0x7ff0, 0x7ff8, 0, 0, 0};
    std::string path = "0x400000", argv = "[...]", envp = "0x7ff8 /* 0+ vars */";
    std::vector<std::string*> texts = {&path, &argv, &envp};
    EXPECT_TRUE(complete_exec_args(execve, values, *st, texts));
    EXPECT_EQ(path, "\"/bin/prog\"");
    EXPECT_EQ(argv, "[\"prog\", \"arg\"]");
    EXPECT_EQ(envp, "0x7ff8 /* 1 vars */");
    // What the entry decoded is kept.
    std::string p2 = "\"/bin/prog\"", a2 = "[\"prog\"]", e2 = "0x7ff8 /* 1 vars */";
    std::vector<std::string*> t2 = {&p2, &a2, &e2};
    EXPECT_FALSE(complete_exec_args(execve, values, *st, t2));

    // Hostile stacks: an absurd argc, no NULL after argv, unreadable.
    FakeMemory bad;
    bad.map(0x8000, le64(1000000));
    EXPECT_FALSE(read_exec_stack(bad, 0x8000, false));
    FakeMemory nonull;
    nonull.map(0x8000, le64(1) + le64(0x8100) + le64(0x8100));
    nonull.map(0x8100, std::string("x\0", 2));
    EXPECT_FALSE(read_exec_stack(nonull, 0x8000, false));
    EXPECT_FALSE(read_exec_stack(mem, 0x1234, false));
    // An unterminated argument string: incomplete, and no crash.
    FakeMemory cut;
    cut.map(0x8000, le64(1) + le64(0x8100) + le64(0) + le64(0) + le64(0));
    cut.map(0x8100, "endless");
    auto c = read_exec_stack(cut, 0x8000, false);
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->argv_complete);
    EXPECT_EQ(c->execfn, "");
}

TEST(CapturePlan, StructuresAndLengths) {
    auto fstat = capture_plan(call("fstat"));
    ASSERT_EQ(fstat.exit.size(), 1u);
    EXPECT_EQ(fstat.exit[0].kind, CaptureKind::BufFixed);
    EXPECT_EQ(fstat.exit[0].max, 144u);
    auto accept = capture_plan(call("accept"));
    ASSERT_EQ(accept.enter.size(), 1u);  // addrlen's value going in
    EXPECT_EQ(accept.enter[0].arg, 2);
    EXPECT_EQ(accept.exit.size(), 2u);  // the address and addrlen coming out
    // An iovec array, and what its entries point to.
    auto writev = capture_plan(call("writev"));
    ASSERT_EQ(writev.enter.size(), 2u);
    EXPECT_EQ(writev.enter[0].kind, CaptureKind::BufFixed);
    EXPECT_EQ(writev.enter[1].kind, CaptureKind::IovecData);
    EXPECT_EQ(writev.enter[1].arg, 1);
    EXPECT_EQ(writev.enter[1].len_arg, 2);  // iovcnt
    auto recvmsg = capture_plan(call("recvmsg"));
    ASSERT_EQ(recvmsg.enter.size(), 1u);  // msg_namelen going in
    ASSERT_EQ(recvmsg.exit.size(), 1u);
    EXPECT_EQ(recvmsg.exit[0].kind, CaptureKind::Msghdr);
    auto readv = capture_plan(call("readv"));
    EXPECT_TRUE(readv.enter.empty());
    ASSERT_EQ(readv.exit.size(), 2u);
    EXPECT_EQ(readv.exit[1].kind, CaptureKind::IovecData);
    // Never more rules than the listener takes.
    for (const auto& info : syscall_table(Abi::X86_64)) {
        auto plan = capture_plan(info);
        EXPECT_LE(plan.enter.size(), 4u) << info.name;
        EXPECT_LE(plan.exit.size(), 4u) << info.name;
    }
}

}  // namespace
}  // namespace nitro::decode


namespace nitro::decode {
namespace {

// append_arg() writes the common argument types itself: it must give format_arg()'s text for
// every argument of every call, with and without captures, memory, return values.
TEST(Args, AppendArgIsFormatArg) {
    std::mt19937_64 rng(11);
    auto value = [&]() -> std::uint64_t {
        switch (rng() % 5) {
            case 0: return 0;
            case 1: return rng() % 64;
            case 2: return static_cast<std::uint64_t>(-static_cast<std::int64_t>(rng() % 5000));
            case 3: return 0x7ffc00000000ULL + rng() % 0x10000;
            default: return rng();
        }
    };
    FakeMemory memory;
    memory.map(0x7ffc00000000ULL, std::string("/some/path\0more\0", 16) + std::string(600, 'x'));
    const std::string bytes[] = {"", "hello\n", std::string("a\0b\x01\x7f\"\\", 7),
                                 std::string(100, 'z'), std::string(16, '\0')};
    std::size_t checked = 0;
    for (Abi abi : {Abi::X86_64, Abi::I386}) {
        for (std::uint64_t nr = 0; nr < 1024; ++nr) {
            const SyscallInfo* info = lookup_syscall(abi, nr);
            if (!info) continue;
            for (int round = 0; round < 6; ++round) {
                ArgContext ctx;
                ctx.compat = abi == Abi::I386;
                for (auto& a : ctx.args) a = value();
                if (rng() % 2) ctx.ret = static_cast<std::int64_t>(value());
                if (rng() % 2) ctx.memory = &memory;
                for (std::size_t i = 0; i <= std::size_t{info->nargs} && i < kMaxSyscallArgs; ++i) {
                    Capture c{static_cast<std::uint8_t>(i), CaptureKind::BufFixed,
                              static_cast<CaptureStatus>(rng() % 4), bytes[rng() % 5]};
                    ctx.capture = rng() % 3 ? &c : nullptr;
                    std::string out = "prefix";
                    append_arg(out, *info, i, ctx);
                    ASSERT_EQ(out, "prefix" + format_arg(*info, i, ctx))
                        << info->name << " arg " << i;
                    ++checked;
                }
            }
        }
    }
    EXPECT_GT(checked, 5000u);
}

}  // namespace
}  // namespace nitro::decode
