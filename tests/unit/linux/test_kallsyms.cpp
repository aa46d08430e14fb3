// SPDX-License-Identifier: MIT
// kallsyms decoding on synthetic tables in every layout scripts/kallsyms has produced, and on
// corrupted ones.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "nitro/error.h"
#include "os/linux/kallsyms.h"

namespace nitro::linux_os {
namespace {

using Bytes = std::vector<uint8_t>;

// V62: seqs_of_names as u32; V62Seq24: as 3-byte big-endian entries (later 6.2 and the
// stable backports).
enum class Layout { V61, V62, V62Seq24, V64 };

struct Sym {
    char type;
    std::string name;
    uint64_t addr;
};

// Writes tables the way scripts/kallsyms lays them out, with a simple token table: printable
// characters stand for themselves, the other byte values for a few multi-char tokens.
class TableWriter {
  public:
    struct Offsets {
        size_t token_table = 0, token_index = 0, markers = 0, names = 0, num_syms = 0;
        size_t addresses = 0;
    };

    TableWriter() {
        const char* multi[] = {"sys_", "entry_", "__x64_", "_to_", "task", "init_"};
        size_t next = 0;
        for (int c = 0; c < 256; ++c) {
            if (c >= 0x21 && c <= 0x7e)
                tokens_[c] = std::string(1, static_cast<char>(c));
            else if (next < std::size(multi))
                tokens_[c] = multi[next++];
            else
                tokens_[c] = "q" + std::to_string(c);  // unused, like leftover slots
        }
    }

    Bytes encode(const std::string& s) const {
        Bytes out;
        for (size_t i = 0; i < s.size();) {
            int best = s[i];
            size_t best_len = 1;
            for (int c = 0; c < 256; ++c)
                if (tokens_[c].size() > best_len &&
                    s.compare(i, tokens_[c].size(), tokens_[c]) == 0)
                    best = c, best_len = tokens_[c].size();
            out.push_back(static_cast<uint8_t>(best));
            i += best_len;
        }
        return out;
    }

    Bytes write(const std::vector<Sym>& syms, Layout layout, uint64_t relative_base,
                Offsets* where = nullptr) {
        Offsets o;
        Bytes b;
        // Leading noise that must not confuse the scan.
        for (int i = 0; i < 1000; ++i) b.push_back(static_cast<uint8_t>(i * 13));
        b.resize(1024 + 3 * 8, 0);
        auto align = [&] { b.resize((b.size() + 7) & ~size_t{7}, 0); };
        auto put32 = [&](uint32_t v) {
            b.resize(b.size() + 4);
            std::memcpy(b.data() + b.size() - 4, &v, 4);
        };
        auto put64 = [&](uint64_t v) {
            b.resize(b.size() + 8);
            std::memcpy(b.data() + b.size() - 8, &v, 8);
        };
        auto offsets = [&] {
            align();
            o.addresses = b.size();
            for (const auto& s : syms) {
                if (s.type == 'A')
                    put32(static_cast<uint32_t>(s.addr));
                else
                    put32(static_cast<uint32_t>(static_cast<int32_t>(relative_base - s.addr - 1)));
            }
            align();
            put64(relative_base);
        };
        auto num = [&] {
            align();
            o.num_syms = b.size();
            put32(static_cast<uint32_t>(syms.size()));
        };
        auto names_markers = [&] {
            align();
            o.names = b.size();
            std::vector<uint32_t> markers;
            for (size_t i = 0; i < syms.size(); ++i) {
                if (i % 256 == 0) markers.push_back(static_cast<uint32_t>(b.size() - o.names));
                const Bytes e = encode(std::string(1, syms[i].type) + syms[i].name);
                if (e.size() > 0x7f) {
                    b.push_back(static_cast<uint8_t>((e.size() & 0x7f) | 0x80));
                    b.push_back(static_cast<uint8_t>(e.size() >> 7));
                } else {
                    b.push_back(static_cast<uint8_t>(e.size()));
                }
                b.insert(b.end(), e.begin(), e.end());
            }
            align();
            o.markers = b.size();
            for (uint32_t m : markers) put32(m);
        };
        auto seqs = [&](bool three_bytes) {
            align();
            // The permutation that sorts by name; any permutation does for the decoder.
            for (size_t i = 0; i < syms.size(); ++i) {
                const auto v = static_cast<uint32_t>(syms.size() - 1 - i);
                if (three_bytes) {
                    b.push_back(static_cast<uint8_t>(v >> 16));
                    b.push_back(static_cast<uint8_t>(v >> 8));
                    b.push_back(static_cast<uint8_t>(v));
                } else {
                    put32(v);
                }
            }
        };
        auto tokens = [&] {
            align();
            o.token_table = b.size();
            std::vector<uint16_t> idx;
            for (const auto& t : tokens_) {
                idx.push_back(static_cast<uint16_t>(b.size() - o.token_table));
                b.insert(b.end(), t.begin(), t.end());
                b.push_back(0);
            }
            align();
            o.token_index = b.size();
            for (uint16_t v : idx) {
                b.resize(b.size() + 2);
                std::memcpy(b.data() + b.size() - 2, &v, 2);
            }
        };
        if (layout == Layout::V64) {
            num();
            names_markers();
            tokens();
            offsets();
            seqs(false);
        } else {
            offsets();
            num();
            names_markers();
            if (layout == Layout::V62) seqs(false);
            if (layout == Layout::V62Seq24) seqs(true);
            tokens();
        }
        // Trailing noise.
        for (int i = 0; i < 333; ++i) b.push_back(static_cast<uint8_t>(0xff - i));
        if (where) *where = o;
        return b;
    }

  private:
    std::string tokens_[256];
};

constexpr uint64_t kBase = 0xffffffff81000000ULL;

std::vector<Sym> sample_symbols(size_t n) {
    std::vector<Sym> syms;
    syms.push_back({'A', "fixed_percpu_data", 0});
    syms.push_back({'A', "current_task", 0x1fbc0});
    syms.push_back({'T', "_text", kBase});
    syms.push_back({'T', "entry_SYSCALL_64", kBase + 0x40});
    for (size_t i = 0; syms.size() < n; ++i)
        syms.push_back(
            {i % 3 ? 't' : 'T', "__x64_sys_fn_" + std::to_string(i), kBase + 0x100 + 16 * i});
    syms.push_back({'D', "init_task", kBase + 0x2000000});
    syms.push_back({'d', std::string(300, 'L') + "_big_symbol", kBase + 0x2000100});  // 2-byte len
    syms.push_back({'B', "_end", kBase + 0x3000000});
    return syms;
}

std::vector<KernelSymbol> as_kernel_symbols(const std::vector<Sym>& syms) {
    std::vector<KernelSymbol> out;
    for (const auto& s : syms) out.push_back({s.name, s.type, s.addr});
    return out;
}

class LinuxKallsymsLayout : public ::testing::TestWithParam<Layout> {};

TEST_P(LinuxKallsymsLayout, DecodesAllSymbols) {
    const auto syms = sample_symbols(1000);
    TableWriter w;
    TableWriter::Offsets where;
    const Bytes b = w.write(syms, GetParam(), kBase, &where);
    KallsymsLayout layout;
    const Kallsyms k = Kallsyms::from_tables(b, 0, &layout);
    EXPECT_EQ(layout.num_syms, syms.size());
    EXPECT_EQ(layout.token_table, where.token_table);
    EXPECT_EQ(layout.token_index, where.token_index);
    EXPECT_EQ(layout.markers, where.markers);
    EXPECT_EQ(layout.names, where.names);
    EXPECT_EQ(layout.addresses, where.addresses);
    EXPECT_TRUE(layout.base_relative);
    EXPECT_TRUE(layout.absolute_percpu);
    EXPECT_EQ(layout.relative_base, kBase);
    ASSERT_EQ(k.size(), syms.size());
    for (const auto& s : syms) {
        const auto* f = k.find(s.name);
        ASSERT_NE(f, nullptr) << s.name;
        EXPECT_EQ(f->address, s.addr) << s.name;
        EXPECT_EQ(f->type, s.type) << s.name;
    }
}

INSTANTIATE_TEST_SUITE_P(Every, LinuxKallsymsLayout,
                         ::testing::Values(Layout::V61, Layout::V62, Layout::V62Seq24, Layout::V64),
                         [](const auto& info) {
                             switch (info.param) {
                                 case Layout::V61:
                                     return std::string("v6_1");
                                 case Layout::V62:
                                     return std::string("v6_2");
                                 case Layout::V62Seq24:
                                     return std::string("v6_2_seq24");
                                 case Layout::V64:
                                     return std::string("v6_4");
                             }
                             return std::string("unknown");
                         });

TEST(LinuxKallsyms, AlignmentComesFromTheRegionAddress) {
    const auto syms = sample_symbols(600);
    TableWriter w;
    Bytes b = w.write(syms, Layout::V61, kBase);
    // Shift the tables by 3 bytes; telling the decoder the region starts at ...5 realigns them.
    b.insert(b.begin(), 3, 0x77);
    EXPECT_EQ(Kallsyms::from_tables(b, 0x1005).size(), syms.size());
}

TEST(LinuxKallsyms, SlideLookupAndSymbolize) {
    Kallsyms k(as_kernel_symbols(sample_symbols(300)));
    const uint64_t slide = 0x2a00000;
    EXPECT_EQ(k.calibrate("entry_SYSCALL_64", kBase + 0x40 + slide), static_cast<int64_t>(slide));
    EXPECT_EQ(k.lookup("_text"), kBase + slide);
    EXPECT_EQ(k.link_address("_text"), kBase);
    EXPECT_EQ(k.lookup("current_task"), 0x1fbc0u);  // absolute: not slid
    EXPECT_FALSE(k.lookup("no_such_symbol"));

    const auto loc = k.symbolize(kBase + slide + 0x45);
    ASSERT_TRUE(loc);
    EXPECT_EQ(loc->symbol->name, "entry_SYSCALL_64");
    EXPECT_EQ(loc->offset, 5u);
    EXPECT_EQ(k.describe(kBase + slide + 0x45), "entry_SYSCALL_64+0x5");
    EXPECT_EQ(k.describe(kBase + slide), "_text");
    EXPECT_FALSE(k.symbolize(kBase + slide - 1));          // below the kernel
    EXPECT_FALSE(k.symbolize(kBase + slide + 0x3000000));  // at/after _end
    EXPECT_FALSE(k.symbolize(0x1fbc0));                    // absolute symbols never match

    EXPECT_THROW(k.calibrate("entry_SYSCALL_64", kBase + 0x41), Error);  // not page-aligned
    EXPECT_THROW(k.calibrate("current_task", 0x1234000), Error);         // absolute
    EXPECT_THROW(k.calibrate("nope", kBase), Error);
    EXPECT_EQ(k.slide(), static_cast<int64_t>(slide));  // failed calibrations keep the old one
}

// --- hostile tables ---------------------------------------------------------------------------

struct LinuxKallsymsCorrupt : ::testing::Test {
    void SetUp() override { good = w.write(sample_symbols(1000), Layout::V61, kBase, &where); }
    void expect_error(const Bytes& b) {
        try {
            auto k = Kallsyms::from_tables(b);
            // A decoder may route around a corrupt copy only if what it returns is sane.
            ADD_FAILURE() << "decoded " << k.size() << " symbols from corrupt tables";
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()).rfind("kallsyms: ", 0), 0u) << e.what();
        }
    }
    void put16(Bytes& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }
    void put32(Bytes& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
    TableWriter w;
    TableWriter::Offsets where;
    Bytes good;
};

TEST_F(LinuxKallsymsCorrupt, TokenIndexOutOfRange) {
    Bytes b = good;
    put16(b, where.token_index + 2 * 200, 0xfff0);
    expect_error(b);
}

TEST_F(LinuxKallsymsCorrupt, TokenIndexNotIncreasing) {
    Bytes b = good;
    put16(b, where.token_index + 2 * 10, 1);
    expect_error(b);
}

TEST_F(LinuxKallsymsCorrupt, MarkerDisagreesWithNames) {
    Bytes b = good;
    put32(b, where.markers + 4 * 2,
          *reinterpret_cast<const uint32_t*>(&good[where.markers + 8]) + 1);
    expect_error(b);
}

TEST_F(LinuxKallsymsCorrupt, HugeSymbolCount) {
    Bytes b = good;
    put32(b, where.num_syms, 0xffffffff);
    expect_error(b);
}

TEST_F(LinuxKallsymsCorrupt, NameLengthRunsPastTheTable) {
    Bytes b = good;
    b[where.names] = 0xff;  // two-byte length 0x7f | (next << 7)
    b[where.names + 1] = 0x7f;
    expect_error(b);
}

TEST_F(LinuxKallsymsCorrupt, UnsortedAddresses) {
    Bytes b = good;
    for (size_t i = 10; i < 900; i += 2) put32(b, where.addresses + 4 * i, 0x80000000u + 7 * i);
    expect_error(b);
}

TEST_F(LinuxKallsymsCorrupt, TruncatedAnywhere) {
    for (size_t cut : {where.token_index + 100, where.token_table + 20, where.markers + 2,
                       where.names + 500, where.num_syms + 2, where.addresses + 50}) {
        Bytes b(good.begin(), good.begin() + static_cast<long>(cut));
        expect_error(b);
    }
}

TEST_F(LinuxKallsymsCorrupt, RandomBytesAndRandomFlips) {
    uint32_t seed = 99;
    auto rnd = [&] { return seed = seed * 1664525 + 1013904223, seed >> 8; };
    Bytes noise(1 << 20);
    for (auto& c : noise) c = static_cast<uint8_t>(rnd());
    expect_error(noise);
    expect_error(Bytes(1 << 16, 0));
    expect_error(Bytes());
    // Flips anywhere: the result is an error or a table the checks accepted, never a crash.
    for (int round = 0; round < 200; ++round) {
        Bytes b = good;
        for (int i = 0; i < 3; ++i) b[rnd() % b.size()] ^= static_cast<uint8_t>(1u << (rnd() % 8));
        try {
            auto k = Kallsyms::from_tables(b);
            EXPECT_LE(k.size(), 1100u);
        } catch (const Error&) {
        }
    }
}

}  // namespace
}  // namespace nitro::linux_os
