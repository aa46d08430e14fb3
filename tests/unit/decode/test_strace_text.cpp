// SPDX-License-Identifier: MIT
// Joining entries and exits into strace -f style lines.
#include <gtest/gtest.h>

#include "decode/strace_text.h"

namespace nitro::decode {
namespace {

Process proc(int pid, const char* name) {
    Process p;
    p.pid = p.tid = pid;
    p.name = name;
    p.valid = true;
    return p;
}

Syscall openat(int pid, bool exit) {
    Syscall sc;
    sc.name = "openat";
    sc.process = proc(pid, "cat");
    sc.args = {
        {"dirfd", 0, "AT_FDCWD"}, {"pathname", 0, "\"/etc/passwd\""}, {"flags", 0, "O_RDONLY"}};
    if (exit) {
        sc.direction = Direction::Exit;
        sc.ret = 3;
        sc.ret_text = "3";
    }
    return sc;
}

Event enter(unsigned vcpu, uint64_t seq) {
    Event e;
    e.vcpu = vcpu;
    e.seq = seq;
    return e;
}

Event exit_of(unsigned vcpu, uint64_t seq, unsigned entry_vcpu, uint64_t entry_seq) {
    Event e = enter(vcpu, seq);
    e.direction = Direction::Exit;
    e.entry_vcpu = entry_vcpu;
    e.entry_seq = entry_seq;
    return e;
}

TEST(StraceText, JoinsEntryAndExit) {
    StraceText t;
    std::string out;
    t.feed(enter(0, 1), openat(231, false), out);
    EXPECT_EQ(out, "");
    t.feed(exit_of(0, 2, 0, 1), openat(231, true), out);
    EXPECT_EQ(out, "[pid 231] cat openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY) = 3\n");
}

TEST(StraceText, InterleavedCallsAreUnfinishedAndResumed) {
    StraceText t;
    std::string out;
    t.feed(enter(0, 1), openat(231, false), out);
    t.feed(enter(1, 1), openat(232, false), out);
    t.feed(exit_of(0, 2, 0, 1), openat(231, true), out);
    t.feed(exit_of(1, 2, 1, 1), openat(232, true), out);
    EXPECT_EQ(out,
              "[pid 231] cat openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY <unfinished ...>\n"
              "[pid 232] cat openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY <unfinished ...>\n"
              "[pid 231] cat <... openat resumed>) = 3\n"
              "[pid 232] cat <... openat resumed>) = 3\n");
}

TEST(StraceText, CallsWithoutReturnAndFlush) {
    StraceText t;
    std::string out;
    Syscall eg;
    eg.name = "exit_group";
    eg.returns = false;
    eg.process = proc(7, "sh");
    eg.args = {{"status", 0, "0"}};
    t.feed(enter(0, 1), eg, out);
    EXPECT_EQ(out, "[pid 7] sh exit_group(0) = ?\n");
    out.clear();
    t.feed(enter(0, 2), openat(8, false), out);
    t.flush(out);
    EXPECT_EQ(out, "[pid 8] cat openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY <unfinished ...>\n");
}

TEST(StraceText, UnreadableProcessAndControlCharacters) {
    Process p;
    EXPECT_EQ(format_who(p), "[pid ?] ? ");
    Process q = proc(5, "a\nb");
    EXPECT_EQ(format_who(q), "[pid 5] a?b ");
}

// A call from the x86-64 table, as the backend decodes it.
Syscall known(const char* name, std::uint64_t nr, int pid, std::vector<SyscallArg> args) {
    Syscall sc;
    sc.name = name;
    sc.nr = nr;
    sc.known = true;
    sc.returns = true;
    sc.process = proc(pid, "cat");
    sc.args = std::move(args);
    return sc;
}

TEST(StraceText, UnfinishedStopsBeforeWhatTheExitFillsIn) {
    // As strace: "read(3, <unfinished ...>" then "<... read resumed>"abc", 10) = 3".
    StraceText t;
    std::string out;
    Syscall in = known("read", 0, 9, {{"fd", 3, "3"}, {"buf", 0x1000, "0x1000"}, {"count", 10, "10"}});
    t.feed(enter(0, 1), in, out);
    t.feed(enter(1, 1), openat(10, false), out);
    Syscall done = in;
    done.direction = Direction::Exit;
    done.args[1].text = "\"abc\"";
    done.ret = 3;
    done.ret_text = "3";
    t.feed(exit_of(0, 2, 0, 1), done, out);
    t.flush(out);
    EXPECT_EQ(out,
              "[pid 9] cat read(3,  <unfinished ...>\n"
              "[pid 10] cat openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY <unfinished ...>\n"
              "[pid 9] cat <... read resumed>\"abc\", 10) = 3\n");
    EXPECT_EQ(format_call_head(in), "read(3, ");
    EXPECT_EQ(format_call_tail(done), "\"abc\", 10");
}

TEST(StraceText, CloneInStraceOrderWithoutUnusedArguments) {
    StraceText t;
    std::string out;
    Syscall c = known("clone", 56, 4,
                      {{"flags", 17, "flags=SIGCHLD"}, {"stack", 0, "child_stack=NULL"},
                       {"parent_tid", 0, ""}, {"child_tid", 0, ""}, {"tls", 0, ""}});
    t.feed(enter(0, 1), c, out);
    c.direction = Direction::Exit;
    c.ret = 5;
    c.ret_text = "5";
    t.feed(exit_of(0, 2, 0, 1), c, out);
    EXPECT_EQ(out, "[pid 4] cat clone(child_stack=NULL, flags=SIGCHLD) = 5\n");
}

}  // namespace
}  // namespace nitro::decode
