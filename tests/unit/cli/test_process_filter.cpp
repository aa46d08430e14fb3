// SPDX-License-Identifier: MIT
// --pid, --process and --follow (tools/nitro/process_filter.h) on synthetic calls.
#include <gtest/gtest.h>

#include "process_filter.h"

namespace nitro::cli {
namespace {

Syscall call(const std::string& name, std::int64_t pid, std::int64_t ppid,
             const std::string& comm, Direction dir = Direction::Enter,
             std::optional<std::int64_t> ret = std::nullopt, std::uint64_t arg0 = 0,
             const std::string& arg0_text = "") {
    Syscall sc;
    sc.name = name;
    sc.direction = dir;
    sc.ret = ret;
    sc.process.valid = true;
    sc.process.pid = pid;
    sc.process.tid = pid;
    sc.process.ppid = ppid;
    sc.process.name = comm;
    SyscallArg a;
    a.value = arg0;
    a.text = arg0_text;
    sc.args.push_back(a);
    return sc;
}

TEST(ProcessFilter, NoSelectionWantsEverything) {
    ProcessFilter f(0, "", false);
    EXPECT_FALSE(f.active());
    EXPECT_TRUE(f.wanted(call("read", 5, 1, "cat")));
    Syscall unknown = call("read", 5, 1, "cat");
    unknown.process.valid = false;
    EXPECT_TRUE(f.wanted(unknown));
}

TEST(ProcessFilter, PidAndNameWithoutFollow) {
    ProcessFilter by_pid(10, "", false);
    EXPECT_TRUE(by_pid.wanted(call("read", 10, 1, "sh")));
    EXPECT_FALSE(by_pid.wanted(call("read", 11, 10, "sh")));  // a child: not without follow
    ProcessFilter by_name(0, "sh", false);
    EXPECT_TRUE(by_name.wanted(call("read", 10, 1, "sh")));
    EXPECT_FALSE(by_name.wanted(call("read", 11, 10, "cat")));
    ProcessFilter both(10, "sh", false);
    EXPECT_FALSE(both.wanted(call("read", 10, 1, "cat")));  // both must hold
    Syscall unknown = call("read", 10, 1, "sh");
    unknown.process.valid = false;
    EXPECT_FALSE(both.wanted(unknown));
}

TEST(ProcessFilter, FollowTakesChildrenAndTheirChildrenWhateverTheyBecome) {
    ProcessFilter f(0, "sample", true);
    EXPECT_FALSE(f.wanted(call("read", 7, 1, "other")));
    EXPECT_TRUE(f.wanted(call("fork", 20, 1, "sample")));
    // The child's first event (its return from fork) names its parent.
    EXPECT_TRUE(f.wanted(call("fork", 21, 20, "sample", Direction::Exit, 0)));
    EXPECT_TRUE(f.wanted(call("execve", 21, 20, "sample")));
    EXPECT_TRUE(f.wanted(call("openat", 21, 20, "dropper")));  // renamed by its exec
    // A grandchild, and the same after its parent died and it was given to init.
    EXPECT_TRUE(f.wanted(call("clone", 22, 21, "dropper", Direction::Exit, 0)));
    EXPECT_TRUE(f.wanted(call("read", 22, 1, "dropper")));
    // Unrelated processes stay out, also one with the grandchild's name.
    EXPECT_FALSE(f.wanted(call("read", 30, 1, "dropper")));
    EXPECT_EQ(f.followed().size(), 3u);
    EXPECT_EQ(f.processes_followed(), 3u);
}

TEST(ProcessFilter, FollowLearnsAChildFromItsCreatorsReturn) {
    ProcessFilter f(20, "", true);
    // clone with CLONE_PARENT: the child's parent is the creator's parent, not the creator.
    EXPECT_TRUE(f.wanted(call("clone", 20, 1, "sample", Direction::Exit, 25, 0x8000 | 17)));
    EXPECT_TRUE(f.wanted(call("read", 25, 1, "sample")));
    // A thread (CLONE_THREAD) is no new process: its tid is not followed as a pid.
    EXPECT_TRUE(f.wanted(call("clone", 20, 1, "sample", Direction::Exit, 26, 0x10000 | 0x100)));
    EXPECT_EQ(f.followed().count(26), 0u);
    EXPECT_TRUE(f.wanted(call("clone3", 20, 1, "sample", Direction::Exit, 27, 0x7000,
                              "{flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, ...}")));
    EXPECT_EQ(f.followed().count(27), 0u);
    EXPECT_TRUE(f.wanted(call("clone3", 20, 1, "sample", Direction::Exit, 28, 0x7000,
                              "{flags=0, exit_signal=SIGCHLD, ...}")));
    EXPECT_EQ(f.followed().count(28), 1u);
    EXPECT_TRUE(f.wanted(call("vfork", 20, 1, "sample", Direction::Exit, 29)));
    EXPECT_EQ(f.followed().count(29), 1u);
    // Failed creations create nothing.
    EXPECT_TRUE(f.wanted(call("fork", 20, 1, "sample", Direction::Exit, -11)));
    EXPECT_EQ(f.followed().count(-11), 0u);
}

TEST(ProcessFilter, AFollowedProcessThatExitsIsForgottenItsPidMayComeBackAsAnother) {
    ProcessFilter f(0, "sample", true);
    EXPECT_TRUE(f.wanted(call("fork", 20, 1, "sample", Direction::Exit, 21)));
    EXPECT_TRUE(f.wanted(call("exit_group", 21, 20, "sample")));
    EXPECT_TRUE(f.wanted(call("exit_group", 20, 1, "sample")));
    // pid 21 again, an unrelated process now (its parent is not followed).
    EXPECT_FALSE(f.wanted(call("read", 21, 1, "cron")));
    EXPECT_TRUE(f.followed().empty());
    EXPECT_EQ(f.processes_followed(), 2u);
}

}  // namespace
}  // namespace nitro::cli
