// SPDX-License-Identifier: MIT
// The consumer side of a plugin ring, fed hand-made and hostile records.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "listener/tcg/ring_reader.h"

namespace nitro::tcg {
namespace {

constexpr uint32_t kBytes = 4096;

struct Ring {
    nitro_ring ring{};
    std::vector<uint8_t> data = std::vector<uint8_t>(kBytes);
    RingReader reader{&ring, data.data(), kBytes};

    // Appends bytes at the head (no wrap handling: tests place records explicitly).
    void put(const void* p, uint32_t n) {
        std::memcpy(data.data() + ring.head % kBytes, p, n);
        ring.head += n;
    }
    static nitro_record event(uint64_t seq, uint64_t tsc = 0) {
        nitro_record r{};
        r.size = sizeof r;
        r.kind = NITRO_REC_EVENT;
        r.type = NITRO_TYPE_SYSCALL;
        r.direction = NITRO_DIR_ENTER;
        r.seq = seq;
        r.nr = 257;
        r.tsc = tsc;
        r.regs[NITRO_REG_RAX] = 257;
        r.regs[NITRO_REG_CR3] = 0x1234000;
        return r;
    }
};

TEST(RingReader, DecodesAnEventAndItsCapture) {
    Ring r;
    std::vector<uint8_t> rec(sizeof(nitro_record) + sizeof(nitro_capture_hdr) + 16);
    nitro_record e = Ring::event(7);
    e.size = static_cast<uint32_t>(rec.size());
    e.ncaptures = 1;
    e.args[1] = 0x7ffc0000;
    std::memcpy(rec.data(), &e, sizeof e);
    nitro_capture_hdr h{1, NITRO_CAP_CSTRING, NITRO_CAP_OK, 0, 10};
    std::memcpy(rec.data() + sizeof e, &h, sizeof h);
    std::memcpy(rec.data() + sizeof e + sizeof h, "/etc/hosts", 10);
    r.put(rec.data(), static_cast<uint32_t>(rec.size()));

    Event ev;
    ASSERT_TRUE(r.reader.pop(ev));
    EXPECT_EQ(ev.seq, 7u);
    EXPECT_EQ(ev.nr, 257u);
    EXPECT_EQ(ev.sregs.cr3, 0x1234000u);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].data, "/etc/hosts");
    EXPECT_EQ(ev.capture(1), &ev.captures[0]);
    EXPECT_FALSE(r.reader.pop(ev));
    EXPECT_EQ(r.reader.errors(), 0u);
    EXPECT_EQ(r.ring.tail, r.ring.head);
}

TEST(RingReader, SkipsWrapRecords) {
    Ring r;
    nitro_record wrap{};
    wrap.size = 64;
    wrap.kind = NITRO_REC_WRAP;
    r.put(&wrap, 64);
    nitro_record e = Ring::event(1, 99);
    r.put(&e, sizeof e);
    EXPECT_EQ(r.reader.peek_time(), std::optional<uint64_t>(99));
    Event ev;
    ASSERT_TRUE(r.reader.pop(ev));
    EXPECT_EQ(ev.seq, 1u);
}

TEST(RingReader, CaptureLongerThanItsRecordIsRejected) {
    Ring r;
    std::vector<uint8_t> rec(sizeof(nitro_record) + sizeof(nitro_capture_hdr) + 8);
    nitro_record e = Ring::event(1);
    e.size = static_cast<uint32_t>(rec.size());
    e.ncaptures = 1;
    std::memcpy(rec.data(), &e, sizeof e);
    nitro_capture_hdr h{1, NITRO_CAP_CSTRING, NITRO_CAP_OK, 0, 4000};  // claims 4000 bytes
    std::memcpy(rec.data() + sizeof e, &h, sizeof h);
    r.put(rec.data(), static_cast<uint32_t>(rec.size()));
    nitro_record next = Ring::event(2);
    r.put(&next, sizeof next);

    Event ev;
    ASSERT_TRUE(r.reader.pop(ev));  // the bad record is skipped, the next one decoded
    EXPECT_EQ(ev.seq, 2u);
    EXPECT_EQ(r.reader.errors(), 1u);
}

TEST(RingReader, ImpossibleSizesResynchronise) {
    for (uint32_t bad : {0u, 4u, 13u, kBytes * 2}) {
        Ring r;
        nitro_record e = Ring::event(1);
        e.size = bad;
        r.put(&e, sizeof e);
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
    nitro_record e = Ring::event(1);
    e.type = 9;
    r.put(&e, sizeof e);
    nitro_record d = Ring::event(2);
    d.direction = 5;
    r.put(&d, sizeof d);
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
    nitro_record e = Ring::event(1, 5000);
    std::memcpy(data.data(), &e, sizeof e);
    ring.head = sizeof e;
    Event ev;
    ASSERT_TRUE(reader.pop(ev));
    EXPECT_EQ(ev.host_time_ns, tb.real0_ns + 2000);
    EXPECT_EQ(ev.guest_time_ns, 1000u);
}

}  // namespace
}  // namespace nitro::tcg
