// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include <random>

#include "listener/gdb/rsp_codec.h"
#include "nitro/error.h"

namespace nitro::gdb {
namespace {

TEST(RspCodec, ChecksumIsModulo256Sum) {
    EXPECT_EQ(checksum(""), 0);
    EXPECT_EQ(checksum("OK"), 0x9a);  // 'O' 0x4f + 'K' 0x4b
    EXPECT_EQ(checksum(std::string(3, '\xff')), 0xfd);
    EXPECT_EQ(frame_packet("OK"), "$OK#9a");
    EXPECT_EQ(frame_packet(""), "$#00");
    EXPECT_EQ(frame_packet("g"), "$g#67");
    EXPECT_EQ(frame_packet("Stop:S05", '%'), "%Stop:S05#98");
}

TEST(RspCodec, HexEncodesAndDecodes) {
    std::vector<std::uint8_t> bytes{0x00, 0x7f, 0xa5, 0xff};
    EXPECT_EQ(hex_encode(bytes), "007fa5ff");
    EXPECT_EQ(hex_encode(std::string_view("info")), "696e666f");  // as qRcmd wants it
    EXPECT_EQ(hex_decode("007FA5ff"), bytes);
    EXPECT_FALSE(hex_decode("abc"));  // odd
    EXPECT_FALSE(hex_decode("0g"));
    EXPECT_EQ(hex_decode("")->size(), 0u);
    EXPECT_EQ(parse_hex("fffffffffffffff0"), 0xfffffffffffffff0ull);
    EXPECT_FALSE(parse_hex("1fffffffffffffff0"));  // 17 digits overflow
    EXPECT_FALSE(parse_hex(""));
    EXPECT_FALSE(parse_hex("12x"));
    EXPECT_EQ(parse_decimal("128"), 128);
    EXPECT_FALSE(parse_decimal("-1"));
    EXPECT_FALSE(parse_decimal("1234567890"));
}

TEST(RspCodec, EscapesTheFourSpecialBytes) {
    EXPECT_EQ(escape_binary("a}b"), "a}]b");
    EXPECT_EQ(escape_binary("#"), std::string("}\x03"));
    EXPECT_EQ(escape_binary("$"), std::string("}\x04"));
    EXPECT_EQ(escape_binary("*"), std::string("}\x0a"));
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    std::string escaped = escape_binary(all);
    EXPECT_EQ(escaped.size(), 256u + 4u);
    EXPECT_EQ(escaped.find('#'), std::string::npos);
    EXPECT_EQ(escaped.find('$'), std::string::npos);
    EXPECT_EQ(escaped.find('*'), std::string::npos);
    EXPECT_EQ(unescape_binary(escaped), all);
    EXPECT_THROW(unescape_binary("abc}"), Error);
}

TEST(RspCodec, RunLengthDecodesCountsAsAdditionalRepeats) {
    EXPECT_EQ(rle_decode("0* "), "0000");  // ' ' = 29 + 3
    EXPECT_EQ(rle_decode("0*!"), "00000");
    EXPECT_EQ(rle_decode("0*\"0"), "0000000");
    EXPECT_EQ(rle_decode("ab*~c"), "a" + std::string(98, 'b') + "c");  // '~' = 29 + 97
    EXPECT_EQ(rle_decode("plain"), "plain");
}

TEST(RspCodec, RunLengthRejectsMalformedAndOversized) {
    EXPECT_THROW(rle_decode("*a"), Error);       // nothing to repeat
    EXPECT_THROW(rle_decode("a*"), Error);       // no count
    EXPECT_THROW(rle_decode("a*\x01"), Error);   // count not printable
    EXPECT_THROW(rle_decode("a*~", 10), Error);  // 98 bytes > 10
    EXPECT_THROW(rle_decode("abcdefghijk", 10), Error);
    EXPECT_EQ(rle_decode("a* ", 4), "aaaa");  // exactly at the limit
}

TEST(RspCodec, RunLengthEncodeRoundTripsAndAvoidsFramingCounts) {
    // Runs of 7 and 8 would need counts 6 and 7, i.e. '#' and '$'.
    for (int n = 1; n < 300; ++n) {
        std::string s(static_cast<std::size_t>(n), 'x');
        std::string enc = rle_encode(s);
        EXPECT_EQ(enc.find('#'), std::string::npos) << n;
        EXPECT_EQ(enc.find('$'), std::string::npos) << n;
        EXPECT_EQ(rle_decode(enc), s) << n;
    }
    EXPECT_EQ(rle_encode("0000"), "0* ");
    EXPECT_EQ(rle_encode("000"), "000");
    std::mt19937 rng(42);
    for (int i = 0; i < 200; ++i) {
        std::string s;
        while (s.size() < 200) s.append(rng() % 12 + 1, "01ab"[rng() % 4]);
        EXPECT_EQ(rle_decode(rle_encode(s)), s);
        EXPECT_LT(rle_encode(s).size(), s.size());
    }
}

TEST(FrameScanner, CutsAStreamFedByteByByte) {
    FrameScanner scanner;
    std::string stream = "+junk-$OK#9a%Stop:S05#98$T05#b9";
    std::vector<Frame> frames;
    for (char c : stream) {
        scanner.feed(std::string_view(&c, 1));
        while (auto f = scanner.next()) frames.push_back(*f);
    }
    ASSERT_EQ(frames.size(), 5u);
    EXPECT_EQ(frames[0].kind, Frame::Kind::Ack);
    EXPECT_EQ(frames[1].kind, Frame::Kind::Nak);
    EXPECT_EQ(frames[2].kind, Frame::Kind::Packet);
    EXPECT_EQ(frames[2].payload, "OK");
    EXPECT_TRUE(frames[2].checksum_ok);
    EXPECT_EQ(frames[3].kind, Frame::Kind::Notification);
    EXPECT_EQ(frames[3].payload, "Stop:S05");
    EXPECT_EQ(frames[4].payload, "T05");
    EXPECT_TRUE(frames[4].checksum_ok);
    EXPECT_EQ(scanner.buffered(), 0u);
}

TEST(FrameScanner, FlagsBadAndNonHexChecksums) {
    FrameScanner scanner;
    scanner.feed("$OK#9b$OK#zz$OK#9A");
    auto a = scanner.next();
    auto b = scanner.next();
    auto c = scanner.next();
    ASSERT_TRUE(a && b && c);
    EXPECT_FALSE(a->checksum_ok);
    EXPECT_FALSE(b->checksum_ok);
    EXPECT_TRUE(c->checksum_ok);  // upper-case hex is fine
}

TEST(FrameScanner, WaitsForTheChecksumAndReportsPartialFrames) {
    FrameScanner scanner;
    scanner.feed("$OK#9");
    EXPECT_FALSE(scanner.next());
    EXPECT_TRUE(scanner.in_frame());
    scanner.feed("a");
    auto f = scanner.next();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->payload, "OK");
    EXPECT_FALSE(scanner.in_frame());
}

TEST(FrameScanner, RejectsOversizedFrames) {
    FrameScanner scanner(16);
    scanner.feed("$" + std::string(16, 'a') + "#");  // exactly 16 bytes of payload is fine
    EXPECT_FALSE(scanner.next());                    // waits for the checksum
    scanner.clear();
    scanner.feed("$" + std::string(17, 'a'));
    EXPECT_THROW(scanner.next(), Error);
    scanner.clear();
    scanner.feed("$" + std::string(40, 'a') + "#00");
    EXPECT_THROW(scanner.next(), Error);
}

}  // namespace
}  // namespace nitro::gdb
