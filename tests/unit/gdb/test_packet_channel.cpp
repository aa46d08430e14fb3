// SPDX-License-Identifier: MIT
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_stub.h"
#include "listener/gdb/packet_channel.h"
#include "nitro/error.h"

namespace nitro::gdb {
namespace {

using namespace std::chrono_literals;
using testing::FakeStub;
using ::testing::HasSubstr;

ChannelOptions fast(std::size_t max_packet = kDefaultMaxPacket) {
    return ChannelOptions{200ms, max_packet, 3};
}

// Runs `body`, expecting nitro::Error with `needle` in its message; returns the elapsed time.
template <typename F>
std::chrono::milliseconds expect_error(F body, const std::string& needle) {
    auto start = Clock::now();
    try {
        body();
        ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr(needle));
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

TEST(PacketChannel, AckModeRequestAndReply) {
    FakeStub stub;
    stub.expect("qAttached").reply("1").expect_silence(50ms);
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    EXPECT_EQ(ch.request("qAttached"), "1");
    EXPECT_TRUE(ch.ack_mode());
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, RetransmitsAfterNak) {
    FakeStub stub;
    stub.expect_and_nak("g").expect_and_nak("g").expect("g").reply("00");
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    EXPECT_EQ(ch.request("g"), "00");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, GivesUpAfterBoundedRetransmissions) {
    FakeStub stub;
    for (int i = 0; i < 4; ++i) stub.expect_and_nak("g");  // first try + 3 retries
    stub.expect_silence(50ms);
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    expect_error([&] { ch.send("g"); }, "rejected 'g' 4 times");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, NaksABadChecksumAndTakesTheResend) {
    FakeStub stub;
    stub.expect("?").reply_bad_checksum("S05").reply("S05");
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    EXPECT_EQ(ch.request("?"), "S05");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, FailsAfterTooManyBadChecksums) {
    FakeStub stub;
    stub.expect("?");
    for (int i = 0; i < 3; ++i) stub.reply_bad_checksum("S05");  // each one answered with '-'
    stub.send_raw("$S05#00").expect_silence(50ms);               // the fourth: no more '-'
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    expect_error([&] { ch.request("?"); }, "4 packets with bad checksums");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, NonHexChecksumIsABadChecksum) {
    FakeStub stub;
    stub.expect("?").send_raw("$S05#zz").expect_raw("-").reply("S05");
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    EXPECT_EQ(ch.request("?"), "S05");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, NoAckModeSendsNoAcksAndRejectsBadChecksums) {
    FakeStub stub;
    // expect() insists on '$' first, so a stray '+' after the first reply fails the script.
    stub.no_ack()
        .expect("m0,4")
        .reply("01020304")
        .expect("g")
        .send_raw("$00#ff")
        .expect_silence(50ms);
    PacketChannel ch(stub.take_client_socket(), fast());
    ch.set_ack_mode(false);
    stub.start();
    EXPECT_EQ(ch.request("m0,4"), "01020304");
    expect_error([&] { ch.request("g"); }, "bad checksum");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, ExpandsRunLengthEncodedReplies) {
    FakeStub stub;
    stub.expect("g").reply("0* 1*!");
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    EXPECT_EQ(ch.request("g"), "000011111");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, RejectsMalformedRunLength) {
    FakeStub stub;
    stub.expect("g").reply("*0");
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    expect_error([&] { ch.request("g"); }, "repeat marker");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, KeepsNotificationsAndSkipsNoise) {
    FakeStub stub;
    // A notification is never acked; noise between frames is dropped.
    stub.expect("qC").send_raw("\r\n%Stop:T05thread:1;#b7xyz").reply("QC1");
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    EXPECT_EQ(ch.request("qC"), "QC1");
    ASSERT_EQ(ch.notifications().size(), 1u);
    EXPECT_EQ(ch.notifications().front(), "Stop:T05thread:1;");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, StubClosingMidPacketIsAnError) {
    FakeStub stub;
    stub.expect("g").send_raw("$0011#").hang_up();
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    expect_error([&] { ch.request("g"); }, "closed the connection in the middle of a packet");
    EXPECT_FALSE(ch.is_open());
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, StubClosingBeforeTheAckIsAnError) {
    FakeStub stub;
    stub.hang_up();
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    stub.finish();
    auto took = expect_error([&] { ch.request("g"); }, "closed");
    EXPECT_LT(took, 1000ms);
}

TEST(PacketChannel, StalledStubTimesOutQuickly) {
    FakeStub stub;
    stub.expect("g").pause(500ms);
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    auto took = expect_error([&] { ch.request("g"); }, "no reply to 'g' within 200 ms");
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 1500ms);
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, MissingAckTimesOut) {
    FakeStub stub;
    stub.expect_raw("$g#67").pause(400ms);
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    expect_error([&] { ch.send("g"); }, "no acknowledgement");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, ReceiveUntilReturnsNothingOnTimeoutAndKeepsPartialData) {
    FakeStub stub;
    stub.no_ack().send_raw("$T0").pause(150ms).send_raw("5#b9");
    PacketChannel ch(stub.take_client_socket(), fast());
    ch.set_ack_mode(false);
    stub.start();
    EXPECT_FALSE(ch.receive_until(deadline_after(50ms)));
    EXPECT_EQ(ch.receive_until(deadline_after(1000ms)), "T05");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, RejectsOversizedPackets) {
    FakeStub stub;
    stub.expect("g").send_raw("$" + std::string(200, '0') + "#00");
    PacketChannel ch(stub.take_client_socket(), fast(64));
    stub.start();
    expect_error([&] { ch.request("g"); }, "exceeds 64 bytes");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, RejectsRunLengthThatExpandsPastTheLimit) {
    FakeStub stub;
    stub.expect("g").reply("0*~0*~");  // 196 bytes once expanded
    PacketChannel ch(stub.take_client_socket(), fast(64));
    stub.start();
    expect_error([&] { ch.request("g"); }, "exceeds 64 bytes once expanded");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

TEST(PacketChannel, SendsTheInterruptByteUnframed) {
    FakeStub stub;
    stub.expect_raw("\x03").reply("T02thread:1;");
    PacketChannel ch(stub.take_client_socket(), fast());
    stub.start();
    ch.send_interrupt();
    EXPECT_EQ(ch.receive("interrupt"), "T02thread:1;");
    EXPECT_THAT(stub.finish(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace nitro::gdb
