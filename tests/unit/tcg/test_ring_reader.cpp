// SPDX-License-Identifier: MIT
// The consumer side of a plugin ring, fed hand-made and hostile records.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "listener/tcg/ring_reader.h"

namespace nitro::tcg {
namespace {

constexpr uint32_t kBytes = 4096;

// A record as the plugin writes it: the fixed part, the registers of its mask (in nitro_reg
// order), then the captures.
struct Rec {
    std::vector<uint8_t> bytes;
    nitro_record& h() { return *reinterpret_cast<nitro_record*>(bytes.data()); }
    uint32_t size() const { return static_cast<uint32_t>(bytes.size()); }

    explicit Rec(uint64_t seq, uint64_t tsc = 0,
                 std::vector<std::pair<int, uint64_t>> regs = {{NITRO_REG_RAX, 257},
                                                               {NITRO_REG_CR3, 0x1234000}}) {
        nitro_record r{};
        r.kind = NITRO_REC_EVENT;
        r.type = NITRO_TYPE_SYSCALL;
        r.direction = NITRO_DIR_ENTER;
        r.seq = seq;
        r.nr = 257;
        r.tsc = tsc;
        std::sort(regs.begin(), regs.end());
        for (auto& [reg, value] : regs) r.regmask |= 1u << reg;
        bytes.resize(sizeof r);
        for (auto& [reg, value] : regs) append(&value, 8);
        std::memcpy(bytes.data(), &r, sizeof r);
        h().size = size();
    }
    void append(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        bytes.insert(bytes.end(), b, b + n);
        bytes.resize((bytes.size() + 7) & ~size_t{7});
        h().size = size();
    }
    void capture(uint8_t arg, std::string_view data, uint32_t claimed_len = 0) {
        nitro_capture_hdr hdr{arg, NITRO_CAP_CSTRING, NITRO_CAP_OK, 0,
                              claimed_len ? claimed_len : static_cast<uint32_t>(data.size())};
        append(&hdr, sizeof hdr);
        append(data.data(), data.size());
        h().ncaptures++;
    }
};

struct Ring {
    nitro_ring ring{};
    std::vector<uint8_t> data = std::vector<uint8_t>(kBytes);
    RingReader reader{&ring, data.data(), kBytes};

    // Appends bytes at the head (no wrap handling: tests place records explicitly).
    void put(const void* p, uint32_t n) {
        std::memcpy(data.data() + ring.head % kBytes, p, n);
        ring.head += n;
    }
    void put(Rec& r) { put(r.bytes.data(), r.size()); }
};

// The register count of a record, shared by the plugin and the reader (no library call).
TEST(RingReader, RegisterCountOfAMask) {
    EXPECT_EQ(nitro_popcount32(0), 0u);
    EXPECT_EQ(nitro_popcount32(NITRO_ALL_REGS), static_cast<uint32_t>(NITRO_NREGS));
    EXPECT_EQ(nitro_popcount32(0x80000001u), 2u);
    EXPECT_EQ(nitro_popcount32(~0u), 32u);
}

TEST(RingReader, DecodesAnEventAndItsCapture) {
    Ring r;
    Rec e(7);
    e.h().args[1] = 0x7ffc0000;
    e.capture(1, "/etc/hosts");
    r.put(e);

    Event ev;
    ASSERT_TRUE(r.reader.pop(ev));
    EXPECT_EQ(ev.seq, 7u);
    EXPECT_EQ(ev.nr, 257u);
    EXPECT_EQ(ev.regs.rax, 257u);
    EXPECT_EQ(ev.sregs.cr3, 0x1234000u);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].data, "/etc/hosts");
    EXPECT_EQ(ev.capture(1), &ev.captures[0]);
    EXPECT_FALSE(r.reader.pop(ev));
    EXPECT_EQ(r.reader.errors(), 0u);
    EXPECT_EQ(r.ring.tail, r.ring.head);
}

// A register a record does not carry keeps the value of the vCPU's last record that did.
TEST(RingReader, RegistersNotSentKeepTheirLastValues) {
    Ring r;
    Rec full(1, 0, {{NITRO_REG_RAX, 1}, {NITRO_REG_RBX, 0xb0b}, {NITRO_REG_CR0, 0x80050033},
                    {NITRO_REG_CR3, 0x1000}, {NITRO_REG_EFER, 0xd01}});
    Rec lean(2, 0, {{NITRO_REG_RAX, 2}, {NITRO_REG_CR3, 0x2000}});
    r.put(full);
    r.put(lean);
    Event ev;
    ASSERT_TRUE(r.reader.pop(ev));
    EXPECT_EQ(ev.regs.rbx, 0xb0bu);
    ASSERT_TRUE(r.reader.pop(ev));
    EXPECT_EQ(ev.seq, 2u);
    EXPECT_EQ(ev.regs.rax, 2u);
    EXPECT_EQ(ev.sregs.cr3, 0x2000u);
    EXPECT_EQ(ev.regs.rbx, 0xb0bu);
    EXPECT_EQ(ev.sregs.cr0, 0x80050033u);
    EXPECT_EQ(ev.sregs.efer, 0xd01u);
    EXPECT_EQ(ev.regs.rcx, 0u);  // never sent
}

TEST(RingReader, RegistersBeyondTheRecordOrUnknownAreRejected) {
    Ring r;
    Rec shorter(1);
    shorter.h().regmask |= 1u << NITRO_REG_RBX;  // three registers claimed, two present
    r.put(shorter);
    Rec unknown(2);
    unknown.h().regmask |= 1u << NITRO_NREGS;
    r.put(unknown);
    Rec good(3);
    r.put(good);
    Event ev;
    ASSERT_TRUE(r.reader.pop(ev));
    EXPECT_EQ(ev.seq, 3u);
    EXPECT_EQ(r.reader.errors(), 2u);
}

TEST(RingReader, SkipsWrapRecords) {
    Ring r;
    nitro_record wrap{};
    wrap.size = 64;
    wrap.kind = NITRO_REC_WRAP;
    r.put(&wrap, 64);
    Rec e(1, 99);
    r.put(e);
    EXPECT_EQ(r.reader.peek_time(), std::optional<uint64_t>(99));
    Event ev;
    ASSERT_TRUE(r.reader.pop(ev));
    EXPECT_EQ(ev.seq, 1u);
}

TEST(RingReader, CaptureLongerThanItsRecordIsRejected) {
    Ring r;
    Rec e(1);
    e.capture(1, "/etc", 4000);  // claims 4000 bytes
    r.put(e);
    Rec next(2);
    r.put(next);

    Event ev;
    ASSERT_TRUE(r.reader.pop(ev));  // the bad record is skipped, the next one decoded
    EXPECT_EQ(ev.seq, 2u);
    EXPECT_EQ(r.reader.errors(), 1u);
}

TEST(RingReader, ImpossibleSizesResynchronise) {
    for (uint32_t bad : {0u, 4u, 13u, kBytes * 2}) {
        Ring r;
        Rec e(1);
        e.h().size = bad;
        r.put(e.bytes.data(), e.size());
        Event ev;
        EXPECT_FALSE(r.reader.pop(ev)) << bad;
        EXPECT_EQ(r.reader.errors(), 1u) << bad;
        EXPECT_EQ(r.ring.tail, r.ring.head) << bad;
    }
}

TEST(RingReader, ImpossibleCountersResynchronise) {
    Ring r;
    r.ring.head = kBytes * 3;  // more than a ring's worth unread
    Event ev;
    EXPECT_FALSE(r.reader.pop(ev));
    EXPECT_EQ(r.reader.errors(), 1u);
    EXPECT_EQ(r.ring.tail, r.ring.head);
}

TEST(RingReader, BadTypeOrDirectionIsAnError) {
    Ring r;
    Rec e(1);
    e.h().type = 9;
    r.put(e);
    Rec d(2);
    d.h().direction = 5;
    r.put(d);
    Event ev;
    EXPECT_FALSE(r.reader.pop(ev));
    EXPECT_EQ(r.reader.errors(), 2u);
}

TEST(RingReader, ConvertsTimesWithTheTimeBase) {
    TimeBase tb;
    tb.tsc0 = 1000;
    tb.real0_ns = 1'700'000'000'000'000'000ULL;
    tb.tsc_run0 = 3000;
    tb.ns_per_tick = 0.5;
    nitro_ring ring{};
    std::vector<uint8_t> data(kBytes);
    RingReader reader(&ring, data.data(), kBytes, &tb);
    Rec e(1, 5000);
    std::memcpy(data.data(), e.bytes.data(), e.size());
    ring.head = e.size();
    Event ev;
    ASSERT_TRUE(reader.pop(ev));
    EXPECT_EQ(ev.host_time_ns, tb.real0_ns + 2000);
    EXPECT_EQ(ev.guest_time_ns, 1000u);
}

}  // namespace
}  // namespace nitro::tcg
