// SPDX-License-Identifier: MIT
// Capture files: written from records, replayed through the Listener interface; damaged files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "listener/tcg/capture_file.h"
#include "listener/tcg/replay_listener.h"
#include "nitro/error.h"

namespace nitro::tcg {
namespace {

std::string temp_path(const char* name) {
    return "/tmp/nitro-test-" + std::to_string(getpid()) + "-" + name + ".ncap";
}

// A record as the plugin writes it, carrying cr3 (and rbx when given) and maybe a capture.
std::vector<uint8_t> record(uint64_t seq, uint64_t nr, uint8_t dir, uint64_t cr3, bool compat,
                            const std::string& capture = "", uint32_t vcpu = 0,
                            std::optional<uint64_t> rbx = std::nullopt) {
    size_t cap = capture.empty() ? 0 : sizeof(nitro_capture_hdr) + ((capture.size() + 7) & ~size_t{7});
    size_t nregs = rbx ? 2 : 1;
    std::vector<uint8_t> bytes(sizeof(nitro_record) + 8 * nregs + cap);
    nitro_record r{};
    r.size = static_cast<uint32_t>(bytes.size());
    r.kind = NITRO_REC_EVENT;
    r.type = compat ? NITRO_TYPE_SYSENTER : NITRO_TYPE_SYSCALL;
    r.direction = dir;
    r.vcpu = vcpu;
    r.flags = compat ? NITRO_REC_F_COMPAT : 0;
    r.seq = seq;
    r.nr = nr;
    r.tsc = 1000 + seq * 10;
    r.regmask = 1u << NITRO_REG_CR3 | (rbx ? 1u << NITRO_REG_RBX : 0u);
    uint8_t* p = bytes.data() + sizeof r;
    if (rbx) {  // nitro_reg order: rbx before cr3
        std::memcpy(p, &*rbx, 8);
        p += 8;
    }
    std::memcpy(p, &cr3, 8);
    p += 8;
    if (!capture.empty()) {
        r.ncaptures = 1;
        nitro_capture_hdr h{0, NITRO_CAP_CSTRING, NITRO_CAP_OK, 0,
                            static_cast<uint32_t>(capture.size())};
        std::memcpy(p, &h, sizeof h);
        std::memcpy(p + sizeof h, capture.data(), capture.size());
    }
    std::memcpy(bytes.data(), &r, sizeof r);
    return bytes;
}

struct File {
    std::string path;
    explicit File(const char* name) : path(temp_path(name)) {}
    ~File() { unlink(path.c_str()); }
};

TimeBase time_base() {
    TimeBase t;
    t.tsc0 = 1000;
    t.real0_ns = 1'800'000'000'000'000'000ULL;
    t.tsc_run0 = 1000;
    t.ns_per_tick = 1.0;
    return t;
}

void write_file(const std::string& path, const std::vector<std::vector<uint8_t>>& records) {
    CaptureWriter w(path, 2, time_base());
    for (const auto& r : records) w.append(reinterpret_cast<const nitro_record*>(r.data()));
    w.close(time_base(), 3);
    EXPECT_EQ(w.records(), records.size());
}

TEST(CaptureFile, RoundTripThroughTheReplayListener) {
    File f("roundtrip");
    write_file(f.path, {record(1, 257, NITRO_DIR_ENTER, 0x1000, false, "/etc/passwd"),
                        record(2, 257, NITRO_DIR_EXIT, 0x1000, false),
                        record(3, 224, NITRO_DIR_ENTER, 0x2000, true)});
    ReplayListener l(f.path);
    EXPECT_EQ(l.reader().header().n_vcpus, 2u);
    std::vector<Event> got;
    for (const Event& ev : l.listen()) got.push_back(ev);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].nr, 257u);
    ASSERT_NE(got[0].capture(0), nullptr);
    EXPECT_EQ(got[0].capture(0)->data, "/etc/passwd");
    EXPECT_EQ(got[1].direction, Direction::Exit);
    EXPECT_TRUE(got[2].compat);
    EXPECT_EQ(got[0].host_time_ns, 1'800'000'000'000'000'010ULL);
    EXPECT_EQ(got[2].guest_time_ns, 30u);
    EXPECT_EQ(l.end_reason(), EndReason::EndOfRecording);
    EXPECT_EQ(l.stats().events, 3u);
    EXPECT_EQ(l.stats().dropped, 3u);
}

TEST(CaptureFile, FiltersApplyOnReplay) {
    File f("filters");
    write_file(f.path, {record(1, 257, NITRO_DIR_ENTER, 0x1000, false),
                        record(2, 0, NITRO_DIR_ENTER, 0x1000, false),
                        record(3, 257, NITRO_DIR_ENTER, 0x2000, false),
                        record(4, 257, NITRO_DIR_ENTER, 0x1000, true)});
    ReplayListener l(f.path);
    l.add_syscall_filter(Abi::X86_64, 257);
    l.set_cr3_filter({0x1000 | 0x5});  // PCID bits are ignored
    std::vector<uint64_t> seqs;
    for (const Event& ev : l.listen()) seqs.push_back(ev.seq);
    EXPECT_EQ(seqs, std::vector<uint64_t>({1}));
}

// Registers a record does not carry come from the last record of the same vCPU.
TEST(CaptureFile, RegistersNotSentComeFromTheSameVcpu) {
    File f("regcache");
    write_file(f.path, {record(1, 39, NITRO_DIR_ENTER, 0x1000, false, "", 0, 0xaaa),
                        record(1, 39, NITRO_DIR_ENTER, 0x2000, false, "", 1, 0xbbb),
                        record(2, 39, NITRO_DIR_EXIT, 0x1000, false, "", 0),
                        record(2, 39, NITRO_DIR_EXIT, 0x2000, false, "", 1)});
    CaptureReader r(f.path);
    Event ev;
    std::vector<std::pair<uint32_t, uint64_t>> got;
    while (r.next(ev)) got.emplace_back(ev.vcpu, ev.regs.rbx);
    EXPECT_EQ(got, (std::vector<std::pair<uint32_t, uint64_t>>{{0, 0xaaa}, {1, 0xbbb}, {0, 0xaaa}, {1, 0xbbb}}));
    EXPECT_EQ(r.errors(), 0u);
}

TEST(CaptureFile, TruncatedFileEndsAtTheLastWholeRecord) {
    File f("truncated");
    write_file(f.path, {record(1, 1, NITRO_DIR_ENTER, 0x1000, false),
                        record(2, 1, NITRO_DIR_EXIT, 0x1000, false)});
    ASSERT_EQ(truncate(f.path.c_str(), sizeof(CaptureFileHeader) + sizeof(nitro_record) + 40), 0);
    CaptureReader r(f.path);
    Event ev;
    EXPECT_TRUE(r.next(ev));
    EXPECT_FALSE(r.next(ev));
    EXPECT_TRUE(r.truncated());
}

TEST(CaptureFile, BrokenRecordsAreCountedNotTrusted) {
    File f("broken");
    auto good = record(1, 1, NITRO_DIR_ENTER, 0x1000, false);
    auto bad_type = record(2, 1, NITRO_DIR_ENTER, 0x1000, false);
    reinterpret_cast<nitro_record*>(bad_type.data())->type = 77;
    auto bad_capture = record(3, 1, NITRO_DIR_ENTER, 0x1000, false, "abc");
    nitro_capture_hdr h{0, NITRO_CAP_CSTRING, NITRO_CAP_OK, 0, 100000};  // longer than the record
    std::memcpy(bad_capture.data() + sizeof(nitro_record) + 8, &h, sizeof h);
    write_file(f.path, {good, bad_type, bad_capture, good});
    CaptureReader r(f.path);
    Event ev;
    int n = 0;
    while (r.next(ev)) n++;
    EXPECT_EQ(n, 2);
    EXPECT_EQ(r.errors(), 2u);
}

TEST(CaptureFile, AbsurdRecordSizeStopsReading) {
    File f("absurd");
    auto rec = record(1, 1, NITRO_DIR_ENTER, 0x1000, false);
    write_file(f.path, {rec, rec});
    // Damage the second record's size field in place.
    std::fstream io(f.path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(sizeof(CaptureFileHeader) + rec.size()));
    uint32_t huge = 0x7ffffff8;
    io.write(reinterpret_cast<const char*>(&huge), 4);
    io.close();
    CaptureReader r(f.path);
    Event ev;
    EXPECT_TRUE(r.next(ev));
    EXPECT_FALSE(r.next(ev));
    EXPECT_EQ(r.errors(), 1u);
}

// Records of ABI 6 are those of ABI 7 without the iovec buffers capture: still read. Older or
// newer record versions are refused with a message.
TEST(CaptureFile, ReadsOlderRecordVersionsItKnows) {
    File f("abi");
    auto rec = record(1, 1, NITRO_DIR_ENTER, 0x1000, false);
    auto set_record_abi = [&](uint32_t v) {
        std::fstream io(f.path, std::ios::in | std::ios::out | std::ios::binary);
        io.seekp(offsetof(CaptureFileHeader, record_abi));
        io.write(reinterpret_cast<const char*>(&v), 4);
    };
    write_file(f.path, {rec});
    set_record_abi(NITRO_RECORD_ABI_OLDEST);
    {
        CaptureReader r(f.path);
        Event ev;
        EXPECT_TRUE(r.next(ev));
    }
    set_record_abi(NITRO_RECORD_ABI_OLDEST - 1);
    EXPECT_THROW(CaptureReader r(f.path), Error);
    set_record_abi(NITRO_RECORD_ABI_VERSION + 1);
    EXPECT_THROW(CaptureReader r(f.path), Error);
}

TEST(CaptureFile, RejectsOtherFiles) {
    File f("notcapture");
    {
        std::ofstream o(f.path);
        o << std::string(200, 'x');
    }
    EXPECT_THROW(CaptureReader r(f.path), Error);
    EXPECT_THROW(CaptureReader r("/nonexistent/file.ncap"), Error);
    {
        std::ofstream o(f.path);
        o << "short";
    }
    EXPECT_THROW(CaptureReader r(f.path), Error);
}

}  // namespace
}  // namespace nitro::tcg
