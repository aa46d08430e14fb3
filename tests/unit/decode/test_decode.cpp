// SPDX-License-Identifier: MIT
// The argument printers: strace's quoting, truncation, flags, errno and raw addresses.
#include <gtest/gtest.h>

#include "decode/decode.h"

namespace nitro::decode {
namespace {

const SyscallInfo& call(std::string_view name) {
    for (std::uint64_t nr = 0; nr < 1024; ++nr) {
        const SyscallInfo* info = lookup_syscall(Abi::X86_64, nr);
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
    EXPECT_EQ(quote(std::string_view("\x01\0\xff", 3), 32), "\"\\x01\\x00\\xff\"");
    EXPECT_EQ(quote("", 32), "\"\"");
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
    EXPECT_TRUE(open.exit.empty());
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
    EXPECT_TRUE(capture_plan(call("getpid")).enter.empty());
}

}  // namespace
}  // namespace nitro::decode
