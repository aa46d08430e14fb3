// SPDX-License-Identifier: MIT
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_stub.h"
#include "scripted_session.h"
#include "listener/gdb/gdb_client.h"
#include "nitro/error.h"

namespace nitro::gdb {
namespace {

using namespace std::chrono_literals;
using testing::error_of;
using testing::FakeStub;
using testing::Handshake;
using testing::kSupported;
using testing::script_handshake;
using testing::start;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A 'g' reply for the test description (608 bytes) with a few known values.
std::string g_reply() {
    std::vector<std::uint8_t> bytes(608, 0);
    auto put = [&](std::size_t off, std::uint64_t v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            bytes[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
    };
    put(128, 0xffffffff81000010ull, 8);  // rip
    put(136, 0x246, 4);                  // eflags
    put(140, 0x10, 4);                   // cs
    put(560, 0x80050033, 8);             // cr0
    put(576, 0x10234000, 8);             // cr3
    put(600, 0xd01, 8);                  // efer
    std::string hex = hex_encode(bytes);
    return "xxxxxxxxxxxxxxxx" + hex.substr(16);  // rax unavailable
}

TEST(GdbClient, HandshakeNegotiatesNoAckAndReadsTheDescription) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect_silence(30ms);  // no stray acks once in no-ack mode
    auto client = start(stub);
    const StubFeatures& f = client->features();
    EXPECT_EQ(f.packet_size, 0x1000u);
    EXPECT_TRUE(f.xfer_features);
    EXPECT_TRUE(f.no_ack_mode);
    EXPECT_TRUE(f.multiprocess);
    EXPECT_TRUE(f.vcont_continue);
    EXPECT_TRUE(f.vcont_step);
    EXPECT_FALSE(f.swbreak);
    EXPECT_EQ(f.all.at("PacketSize"), "1000");
    EXPECT_FALSE(client->channel().ack_mode());
    EXPECT_EQ(client->registers().architecture(), "i386:x86-64");
    EXPECT_EQ(client->registers().at("cr3").regnum, 72);
    EXPECT_EQ(client->registers().at("cr3").offset, 576u);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, ReadsTheDescriptionInSmallChunks) {
    FakeStub stub;
    script_handshake(stub, {.packet_size = "40"});  // 64-byte packets: many qXfer rounds
    auto client = start(stub);
    EXPECT_EQ(client->registers().registers().size(), 66u);
    EXPECT_EQ(client->registers().g_size(), 608u);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, WithoutDescriptionFallsBackToQemuLayoutAndKeepsAcks) {
    FakeStub stub;
    script_handshake(stub, {.offer_no_ack = false, .xml = false, .vcont = false});
    auto client = start(stub);
    EXPECT_TRUE(client->channel().ack_mode());
    EXPECT_FALSE(client->features().vcont_continue);
    EXPECT_EQ(client->registers().at("cr3").regnum, 29);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, RejectsAnUnusablePacketSize) {
    FakeStub stub;
    stub.expect(kSupported).reply("PacketSize=4;qXfer:features:read+");
    auto client = std::make_unique<GdbClient>(stub.take_client_socket(), ClientOptions{});
    stub.start();
    EXPECT_THAT(error_of([&] { client->handshake(); }), HasSubstr("unusable PacketSize"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, ReadsAllRegistersByName) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("g").reply(g_reply());
    auto client = start(stub);
    RegisterFile regs = client->read_registers();
    EXPECT_EQ(regs.get("rip"), 0xffffffff81000010ull);
    EXPECT_EQ(regs.get("eflags"), 0x246u);
    EXPECT_EQ(regs.get("cs"), 0x10u);
    EXPECT_EQ(regs.get("cr0"), 0x80050033u);
    EXPECT_EQ(regs.get("cr3"), 0x10234000u);
    EXPECT_EQ(regs.get("efer"), 0xd01u);
    EXPECT_FALSE(regs.available("rax"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, ReadsAndWritesOneRegisterByNumberFromTheDescription) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("p48").reply("0040231000000000");  // cr3 is register 72 = 0x48
    stub.expect("p11").reply("46020000");          // eflags, 17
    stub.expect("P48=0050000000000000").reply("OK");
    stub.expect("p2b").reply(std::string(32, '1'));  // xmm0
    auto client = start(stub);
    EXPECT_EQ(client->read_register("cr3"), 0x10234000u);
    EXPECT_EQ(client->read_register("eflags"), 0x246u);
    client->write_register("cr3", 0x5000);
    EXPECT_EQ(client->read_register_bytes(client->registers().at("xmm0")).size(), 16u);
    EXPECT_THAT(error_of([&] { client->read_register("xmm0"); }), HasSubstr("128 bits"));
    EXPECT_THAT(error_of([&] { client->read_register("dr7"); }), HasSubstr("no register named"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, FallsBackToGWhenPIsUnsupported) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("p10").reply("").expect("g").reply(g_reply());
    stub.expect("g").reply(g_reply());  // no second 'p' attempt
    auto client = start(stub);
    EXPECT_EQ(client->read_register("rip"), 0xffffffff81000010ull);
    EXPECT_EQ(client->read_register("cr0"), 0x80050033u);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, RejectsBadRegisterReplies) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("p10").reply("f0ff");  // 2 bytes for a 64-bit register
    stub.expect("p10").reply("xxxxxxxxxxxxxxxx");
    stub.expect("p10").reply("E0e");
    stub.expect("p10").reply("f0ff00000000000g");
    stub.expect("g").reply("00112");
    auto client = start(stub);
    EXPECT_THAT(error_of([&] { client->read_register("rip"); }), HasSubstr("sent 2 bytes"));
    EXPECT_THAT(error_of([&] { client->read_register("rip"); }), HasSubstr("unavailable"));
    EXPECT_THAT(error_of([&] { client->read_register("rip"); }), HasSubstr("replied E0e"));
    EXPECT_THAT(error_of([&] { client->read_register("rip"); }), HasSubstr("malformed value"));
    EXPECT_THAT(error_of([&] { client->read_registers(); }), HasSubstr("malformed 'g' reply"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

std::string pattern_hex(std::size_t start, std::size_t n) {
    std::vector<std::uint8_t> b;
    for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(start + i));
    return hex_encode(b);
}

TEST(GdbClient, ReadsMemoryInPacketSizedChunksAndAcceptsShortReplies) {
    FakeStub stub;
    script_handshake(stub, {.packet_size = "40"});  // 64 bytes: 28 data bytes per 'm'
    stub.expect("m1000,1c").reply(pattern_hex(0, 28));
    stub.expect("m101c,1c").reply(pattern_hex(28, 20));  // short: the stub stops early
    stub.expect("m1030,16").reply(pattern_hex(48, 22));
    auto client = start(stub);
    auto mem = client->read_memory(0x1000, 70);
    ASSERT_EQ(mem.size(), 70u);
    for (std::size_t i = 0; i < mem.size(); ++i) ASSERT_EQ(mem[i], i) << i;
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, RejectsBadMemoryReplies) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("mffffffff81000000,8").reply("E14");
    stub.expect("m0,4").reply("zz00aabb");
    stub.expect("m0,4").reply("0011223344");
    stub.expect("m0,4").reply("");
    auto client = start(stub);
    EXPECT_THAT(error_of([&] { client->read_memory(0xffffffff81000000, 8); }),
                HasSubstr("cannot read 8 bytes at 0xffffffff81000000"));
    EXPECT_THAT(error_of([&] { client->read_memory(0, 4); }), HasSubstr("malformed memory"));
    EXPECT_THAT(error_of([&] { client->read_memory(0, 4); }), HasSubstr("sent 5 bytes"));
    EXPECT_THAT(error_of([&] { client->read_memory(0, 4); }), HasSubstr("cannot read"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, WritesMemoryInChunks) {
    FakeStub stub;
    script_handshake(stub, {.packet_size = "40"});  // 12 data bytes per 'M'
    stub.expect("M2000,c:" + pattern_hex(0, 12)).reply("OK");
    stub.expect("M200c,c:" + pattern_hex(12, 12)).reply("OK");
    stub.expect("M2018,6:" + pattern_hex(24, 6)).reply("E01");
    auto client = start(stub);
    std::vector<std::uint8_t> data;
    for (int i = 0; i < 30; ++i) data.push_back(static_cast<std::uint8_t>(i));
    EXPECT_THAT(error_of([&] { client->write_memory(0x2000, data); }),
                HasSubstr("writing 6 bytes at 0x2018 failed"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, SetsAndClearsBreakpoints) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("Z1,ffffffff81a00000,1").reply("OK");
    stub.expect("z1,ffffffff81a00000,1").reply("OK");
    stub.expect("Z0,1000,1").reply("OK");
    stub.expect("z0,1000,1").reply("OK");
    stub.expect("Z2,2000,8").reply("");
    stub.expect("Z1,3000,1").reply("E22");
    auto client = start(stub);
    client->insert_breakpoint(BreakpointType::Hardware, 0xffffffff81a00000);
    client->remove_breakpoint(BreakpointType::Hardware, 0xffffffff81a00000);
    client->insert_breakpoint(BreakpointType::Software, 0x1000);
    client->remove_breakpoint(BreakpointType::Software, 0x1000);
    EXPECT_THAT(error_of([&] { client->insert_breakpoint(BreakpointType::WriteWatch, 0x2000, 8); }),
                HasSubstr("not supported"));
    EXPECT_THAT(error_of([&] { client->insert_breakpoint(BreakpointType::Hardware, 0x3000); }),
                HasSubstr("replied E22"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, ListsAndSelectsThreads) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("qfThreadInfo").reply("mp01.01,p01.02");
    stub.expect("qsThreadInfo").reply("mp01.03");
    stub.expect("qsThreadInfo").reply("l");
    stub.expect("Hgp1.2").reply("OK");
    stub.expect("?").reply("T05thread:p01.02;");
    auto client = start(stub);
    auto threads = client->threads();
    ASSERT_EQ(threads.size(), 3u);
    EXPECT_EQ(threads[0], (ThreadId{1, 1}));
    EXPECT_EQ(threads[2], (ThreadId{1, 3}));
    client->select_thread(threads[1]);
    StopReply why = client->query_stop();
    EXPECT_EQ(why.code, 5);
    EXPECT_EQ(why.thread, threads[1]);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, ContinuesAndWaitsForTheStop) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("vCont;c").pause(100ms);
    stub.reply("O48656c6c6f0a");  // console output on the way
    stub.reply("T05thread:p01.02;10:10000081ffffffff;hwbreak:;");
    stub.expect("g").reply(g_reply());
    auto client = start(stub);
    client->resume();
    EXPECT_TRUE(client->running());
    EXPECT_THAT(error_of([&] { client->read_memory(0, 1); }), HasSubstr("while the target runs"));
    auto stop = client->wait_for_stop(2000ms);
    ASSERT_TRUE(stop);
    EXPECT_FALSE(client->running());
    EXPECT_EQ(stop->code, 5);
    EXPECT_EQ(stop->thread, (ThreadId{1, 2}));
    EXPECT_EQ(stop->reason, "hwbreak");
    EXPECT_EQ(stop->register_value(client->registers().at("rip").regnum), 0xffffffff81000010ull);
    EXPECT_EQ(client->read_registers().get("rip"), 0xffffffff81000010ull);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, WaitTimesOutThenInterruptStops) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("vCont;c").expect_raw("\x03").reply("T02thread:p01.01;");
    auto client = start(stub);
    client->resume();
    auto before = Clock::now();
    EXPECT_FALSE(client->wait_for_stop(50ms));
    EXPECT_LT(Clock::now() - before, 1500ms);
    EXPECT_TRUE(client->running());
    client->interrupt();
    auto stop = client->wait_for_stop(2000ms);
    ASSERT_TRUE(stop);
    EXPECT_EQ(stop->code, 2);
    EXPECT_THAT(error_of([&] { client->interrupt(); }), HasSubstr("not running"));
    EXPECT_THAT(error_of([&] { client->wait_for_stop(10ms); }), HasSubstr("not resumed"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, UnexpectedPacketWhileWaitingIsAnError) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("vCont;c").reply("OK");
    auto client = start(stub);
    client->resume();
    EXPECT_THAT(error_of([&] { client->wait_for_stop(1000ms); }),
                HasSubstr("unexpected packet 'OK'"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, StepsOneThreadWithVCont) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("vCont;s:p1.2").reply("T05thread:p01.02;");
    stub.expect("vCont;s").reply("S05");
    auto client = start(stub);
    StopReply stop = client->step(ThreadId{1, 2});
    EXPECT_EQ(stop.thread, (ThreadId{1, 2}));
    EXPECT_FALSE(client->running());
    EXPECT_EQ(client->step().code, 5);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, FallsBackToCAndSWithoutVCont) {
    FakeStub stub;
    script_handshake(stub, {.vcont = false});
    stub.expect("Hcp1.1").reply("OK").expect("s").reply("T05thread:p01.01;");
    stub.expect("c").reply("W00");
    auto client = start(stub);
    EXPECT_EQ(client->step(ThreadId{1, 1}).code, 5);
    client->resume();
    auto stop = client->wait_for_stop(1000ms);
    ASSERT_TRUE(stop);
    EXPECT_TRUE(stop->is_exit());
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, StalledStubFailsTheCommandQuickly) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("g").pause(600ms);
    auto client = start(stub, 200ms);
    auto before = Clock::now();
    EXPECT_THAT(error_of([&] { client->read_registers(); }),
                HasSubstr("no reply to 'g' within 200 ms"));
    EXPECT_LT(Clock::now() - before, 1500ms);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClient, DetachesAndKills) {
    {
        FakeStub stub;
        script_handshake(stub);
        // Multiprocess was negotiated, so the stub wants the process: QEMU refuses a bare 'D'.
        stub.expect("qfThreadInfo").reply("mp02.01").expect("qsThreadInfo").reply("l");
        stub.expect("D;2").reply("OK");
        auto client = start(stub);
        client->detach();
        EXPECT_FALSE(client->channel().is_open());
        EXPECT_THAT(stub.finish(), IsEmpty());
    }
    {
        FakeStub stub;
        script_handshake(stub, {.offer_no_ack = false});
        stub.expect("k").hang_up();
        auto client = start(stub);
        client->kill();
        EXPECT_FALSE(client->channel().is_open());
        EXPECT_THAT(stub.finish(), IsEmpty());
    }
}

}  // namespace
}  // namespace nitro::gdb
