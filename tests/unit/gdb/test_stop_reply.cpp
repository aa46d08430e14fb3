// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include "listener/gdb/stop_reply.h"
#include "nitro/error.h"

namespace nitro::gdb {
namespace {

TEST(ThreadId, ParsesPlainAndMultiprocessForms) {
    EXPECT_EQ(ThreadId::parse("1c"), (ThreadId{std::nullopt, 0x1c}));
    EXPECT_EQ(ThreadId::parse("-1"), ThreadId::all());
    EXPECT_EQ(ThreadId::parse("0"), ThreadId::any());
    EXPECT_EQ(ThreadId::parse("p01.02"), (ThreadId{1, 2}));
    EXPECT_EQ(ThreadId::parse("p1.-1"), (ThreadId{1, -1}));
    EXPECT_EQ(ThreadId::parse("p5"), (ThreadId{5, -1}));
    EXPECT_EQ((ThreadId{1, 0x1a}).to_string(), "p1.1a");
    EXPECT_EQ(ThreadId::all().to_string(), "-1");
    EXPECT_THROW(ThreadId::parse(""), Error);
    EXPECT_THROW(ThreadId::parse("p.1"), Error);
    EXPECT_THROW(ThreadId::parse("pzz.1"), Error);
    EXPECT_THROW(ThreadId::parse("p1.q"), Error);
    EXPECT_THROW(ThreadId::parse("12345678901234567"), Error);
}

TEST(StopReply, ParsesTWithThreadCoreRegistersAndReason) {
    auto r = StopReply::parse(
        "T05thread:p01.02;core:1;10:f0ff000000000000;6:0010000000000000;hwbreak:;");
    EXPECT_EQ(r.kind, StopReply::Kind::Signal);
    EXPECT_EQ(r.code, 5);
    ASSERT_TRUE(r.thread);
    EXPECT_EQ(*r.thread, (ThreadId{1, 2}));
    EXPECT_EQ(r.core, 1);
    EXPECT_EQ(r.reason, "hwbreak");
    ASSERT_EQ(r.registers.size(), 2u);
    EXPECT_EQ(r.register_value(16), 0xfff0u);
    EXPECT_EQ(r.register_value(6), 0x1000u);
    EXPECT_FALSE(r.register_value(7));
    EXPECT_FALSE(r.is_exit());
}

TEST(StopReply, ParsesQemuStyleReplies) {
    auto r = StopReply::parse("T05thread:p01.01;");
    EXPECT_EQ(r.code, 5);
    EXPECT_EQ(r.thread->tid, 1);
    auto w = StopReply::parse("T05watch:ffff8880001000;thread:3;");
    EXPECT_EQ(w.reason, "watch");
    EXPECT_EQ(w.reason_address, 0xffff8880001000u);
    EXPECT_EQ(w.thread->tid, 3);
    auto last = StopReply::parse("T0bthread:2");  // no trailing ';'
    EXPECT_EQ(last.code, 11);
    EXPECT_EQ(last.thread->tid, 2);
}

TEST(StopReply, ParsesSignalsAndExits) {
    auto s = StopReply::parse("S05");
    EXPECT_EQ(s.kind, StopReply::Kind::Signal);
    EXPECT_EQ(s.code, 5);
    EXPECT_FALSE(s.thread);
    auto w = StopReply::parse("W00");
    EXPECT_EQ(w.kind, StopReply::Kind::Exited);
    EXPECT_TRUE(w.is_exit());
    auto x = StopReply::parse("X09;process:a");
    EXPECT_EQ(x.kind, StopReply::Kind::Terminated);
    EXPECT_EQ(x.code, 9);
    EXPECT_EQ(x.process, 10);
    EXPECT_EQ(StopReply::parse("N").kind, StopReply::Kind::NoResumed);
}

TEST(StopReply, RejectsMalformedReplies) {
    for (const char* bad : {"", "T5", "Tzz", "S05x", "T05thread:pzz.1;", "T05a:xyz;", "T05a:123;",
                            "T05core:zz;", "T05watch:;", "W00;pid:1", "OK", "E01"})
        EXPECT_THROW(StopReply::parse(bad), Error) << bad;
    std::string many = "T05";
    for (int i = 0; i < 2000; ++i) many += "swbreak:;";
    EXPECT_THROW(StopReply::parse(many), Error);
}

TEST(StopReply, TellsStopRepliesFromOtherPackets) {
    EXPECT_TRUE(looks_like_stop_reply("T05thread:1;"));
    EXPECT_TRUE(looks_like_stop_reply("S11"));
    EXPECT_TRUE(looks_like_stop_reply("W00"));
    EXPECT_TRUE(looks_like_stop_reply("N"));
    EXPECT_FALSE(looks_like_stop_reply("OK"));
    EXPECT_FALSE(looks_like_stop_reply("O48656c6c6f"));
    EXPECT_FALSE(looks_like_stop_reply("Tx5"));
    EXPECT_FALSE(looks_like_stop_reply(""));
}

}  // namespace
}  // namespace nitro::gdb
