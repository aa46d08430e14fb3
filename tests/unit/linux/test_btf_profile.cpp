// SPDX-License-Identifier: MIT
// BTF lookups on a hand-built BTF blob (anonymous members, bitfields, per-CPU variables,
// cycles) and libbpf's rejection of corrupt blobs; profile JSON round trip.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "nitro/error.h"
#include "os/linux/btf_profile.h"

namespace nitro::linux_os {
namespace {

using Bytes = std::vector<uint8_t>;

// Kind numbers and encodings from the BTF format (include/uapi/linux/btf.h).
enum Kind : uint32_t {
    kInt = 1,
    kStruct = 4,
    kUnion = 5,
    kTypedef = 8,
    kConst = 10,
    kVar = 14,
    kDatasec = 15,
};

class BtfBuilder {
  public:
    BtfBuilder() { strings_.push_back(0); }

    uint32_t str(const std::string& s) {
        if (s.empty()) return 0;
        const auto off = static_cast<uint32_t>(strings_.size());
        strings_.insert(strings_.end(), s.begin(), s.end());
        strings_.push_back(0);
        return off;
    }
    uint32_t type(const std::string& name, uint32_t kind, uint32_t vlen, bool kflag,
                  uint32_t size_or_type) {
        u32(str(name));
        u32((kflag ? 1u << 31 : 0) | (kind << 24) | vlen);
        u32(size_or_type);
        return ++count_;
    }
    uint32_t int_type(const std::string& name, uint32_t bytes) {
        const uint32_t id = type(name, kInt, 0, false, bytes);
        u32(bytes * 8);  // encoding 0, offset 0, bits
        return id;
    }
    void member(const std::string& name, uint32_t type_id, uint32_t bit_offset,
                uint32_t bitfield_size = 0) {
        u32(str(name));
        u32(type_id);
        u32((bitfield_size << 24) | bit_offset);
    }
    void u32(uint32_t v) {
        const auto at = types_.size();
        types_.resize(at + 4);
        std::memcpy(types_.data() + at, &v, 4);
    }

    Bytes blob() const {
        Bytes b(24);
        const uint16_t magic = 0xeb9f;
        std::memcpy(b.data(), &magic, 2);
        b[2] = 1;  // version
        b[3] = 0;  // flags
        const uint32_t hdr[5] = {24, 0, static_cast<uint32_t>(types_.size()),
                                 static_cast<uint32_t>(types_.size()),
                                 static_cast<uint32_t>(strings_.size())};
        std::memcpy(b.data() + 4, hdr, sizeof hdr);
        b.insert(b.end(), types_.begin(), types_.end());
        b.insert(b.end(), strings_.begin(), strings_.end());
        return b;
    }

  private:
    Bytes types_;
    Bytes strings_;
    uint32_t count_ = 0;
};

// struct outer {
//     int a;                                                 // 0
//     union { struct { unsigned lo:4, hi:12; }; long long x; };  // 8
//     int b;                                                 // 16
//     const inner_t named;  /* struct inner { int p, q; } */ // 24
// };
// DEFINE_PER_CPU(int, my_percpu) at offset 4 of .data..percpu
// struct loop { struct loop (anonymous, by value); }  -- a cycle only hostile BTF has
Bytes sample_btf() {
    BtfBuilder b;
    const uint32_t t_int = b.int_type("int", 4);              // 1
    const uint32_t t_uint = b.int_type("unsigned int", 4);    // 2
    const uint32_t t_bits = b.type("", kStruct, 2, true, 4);  // 3
    b.member("lo", t_uint, 0, 4);
    b.member("hi", t_uint, 4, 12);
    const uint32_t t_ll = b.int_type("long long", 8);          // 4
    const uint32_t t_union = b.type("", kUnion, 2, false, 8);  // 5
    b.member("", t_bits, 0);
    b.member("x", t_ll, 0);
    const uint32_t t_inner = b.type("inner", kStruct, 2, false, 8);  // 6
    b.member("p", t_int, 0);
    b.member("q", t_int, 32);
    const uint32_t t_typedef = b.type("inner_t", kTypedef, 0, false, t_inner);  // 7
    const uint32_t t_const = b.type("", kConst, 0, false, t_typedef);           // 8
    b.type("outer", kStruct, 4, false, 32);                                     // 9
    b.member("a", t_int, 0);
    b.member("", t_union, 64);
    b.member("b", t_int, 128);
    b.member("named", t_const, 192);
    const uint32_t t_var = b.type("my_percpu", kVar, 0, false, t_int);  // 10
    b.u32(1);                                                           // global linkage
    b.type(".data..percpu", kDatasec, 1, false, 8);                     // 11
    b.u32(t_var);
    b.u32(4);
    b.u32(4);
    b.type("loop", kStruct, 1, false, 4);  // 12
    b.member("", 12, 0);
    return b.blob();
}

TEST(LinuxBtf, FindsMembersThroughAnonymousStructsAndUnions) {
    const Btf btf = Btf::from_bytes(sample_btf());
    EXPECT_EQ(btf.size_of("outer"), 32u);
    EXPECT_EQ(btf.size_of("inner_t"), 8u);
    EXPECT_EQ(btf.offset_of("outer", "a"), 0u);
    EXPECT_EQ(btf.offset_of("outer", "x"), 8u);
    EXPECT_EQ(btf.offset_of("outer", "b"), 16u);
    EXPECT_EQ(btf.offset_of("outer", "named"), 24u);
    EXPECT_EQ(btf.member("outer", "x").size, 8u);
    EXPECT_EQ(btf.member("outer", "named").size, 8u);
}

TEST(LinuxBtf, ReportsBitfields) {
    const Btf btf = Btf::from_bytes(sample_btf());
    const auto lo = btf.member("outer", "lo");
    EXPECT_TRUE(lo.is_bitfield());
    EXPECT_EQ(lo.bit_offset, 64u);
    EXPECT_EQ(lo.bit_size, 4u);
    const auto hi = btf.member("outer", "hi");
    EXPECT_EQ(hi.bit_offset, 68u);
    EXPECT_EQ(hi.bit_size, 12u);
    EXPECT_EQ(hi.size, 4u);  // of the underlying type
    EXPECT_THROW(btf.offset_of("outer", "hi"), Error);
    EXPECT_THROW(btf.offset_of("outer", "lo"), Error);  // byte-aligned, but still a bitfield
}

TEST(LinuxBtf, FollowsMemberPaths) {
    const Btf btf = Btf::from_bytes(sample_btf());
    EXPECT_EQ(btf.member_path("outer.named.q").offset(), 28u);
    EXPECT_EQ(btf.member_path("outer.x").offset(), 8u);
    EXPECT_THROW(btf.member_path("outer.a.x"), Error);  // int is not a struct
    EXPECT_THROW(btf.member_path("outer"), Error);
    EXPECT_THROW(btf.member_path("outer..a"), Error);
    EXPECT_THROW(btf.member_path("nosuch.a"), Error);
}

TEST(LinuxBtf, ClearErrorsForMissingThings) {
    const Btf btf = Btf::from_bytes(sample_btf());
    try {
        btf.offset_of("outer", "nope");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "BTF: struct outer has no member 'nope'");
    }
    try {
        btf.size_of("task_struct");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "BTF: no type named 'task_struct'");
    }
    EXPECT_FALSE(btf.find_member("outer", "nope"));
}

TEST(LinuxBtf, PerCpuVariablesFromDatasec) {
    const Btf btf = Btf::from_bytes(sample_btf());
    EXPECT_EQ(btf.percpu_offset("my_percpu"), 4u);
    EXPECT_FALSE(btf.percpu_offset("current_task"));
}

TEST(LinuxBtf, CyclicAnonymousMembersTerminate) {
    const Btf btf = Btf::from_bytes(sample_btf());
    EXPECT_FALSE(btf.find_member("loop", "anything"));
}

TEST(LinuxBtf, ProfileNamesTheMissingMember) {
    const Btf btf = Btf::from_bytes(sample_btf());
    EXPECT_THROW(build_profile(btf), Error);
}

TEST(LinuxBtf, RejectsCorruptBlobsWithAClearError) {
    const Bytes good = sample_btf();
    auto expect_rejected = [](const Bytes& b, const char* what) {
        try {
            Btf::from_bytes(b);
            ADD_FAILURE() << what << ": accepted";
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()).rfind("BTF: ", 0), 0u) << e.what();
        }
    };
    expect_rejected(Bytes(), "empty");
    expect_rejected(Bytes(good.begin(), good.begin() + 20), "short header");
    Bytes bad_magic = good;
    bad_magic[0] = 0x00;
    expect_rejected(bad_magic, "magic");
    Bytes long_types = good;
    const uint32_t huge = 0x7fffffff;
    std::memcpy(long_types.data() + 12, &huge, 4);  // type_len past the end
    expect_rejected(long_types, "type_len");
    Bytes bad_strings = good;
    std::memcpy(bad_strings.data() + 16, &huge, 4);  // str_off past the end
    expect_rejected(bad_strings, "str_off");
    Bytes unterminated = good;
    unterminated.back() = 'x';  // string section must end with NUL
    expect_rejected(unterminated, "strings");
    Bytes bad_kind = good;
    bad_kind[24 + 4 + 3] = 0x1f;  // first type: kind 31
    expect_rejected(bad_kind, "kind");
    Bytes truncated(good.begin(), good.end() - 40);
    expect_rejected(truncated, "truncated");
}

TEST(LinuxBtf, RandomCorruptionNeverCrashes) {
    const Bytes good = sample_btf();
    uint32_t seed = 12345;
    auto rnd = [&] { return seed = seed * 1103515245 + 12345, seed >> 8; };
    for (int round = 0; round < 300; ++round) {
        Bytes b = good;
        const int flips = 1 + static_cast<int>(rnd() % 4);
        for (int i = 0; i < flips; ++i) b[24 + rnd() % (b.size() - 24)] ^= (1u << (rnd() % 8));
        try {
            const Btf btf = Btf::from_bytes(b);
            // Whatever libbpf let through, lookups must stay in bounds.
            (void)btf.find_member("outer", "q");
            (void)btf.find_member("outer", "hi");
            (void)btf.find_member("loop", "x");
            (void)btf.percpu_offset("my_percpu");
            try {
                (void)btf.member_path("outer.named.q");
                (void)btf.size_of("outer");
            } catch (const Error&) {
            }
        } catch (const Error&) {
        }
    }
}

KernelProfile sample_profile() {
    KernelProfile p;
    p.banner = "Linux version 6.1.0-test #1 SMP";
    p.release = "6.1.0-test";
    p.build_id = "00112233";
    p.task_struct.size = 9000;
    p.task_struct.pid = {100, 4, true};
    p.task_struct.thread_node = {};  // absent on this kernel
    p.pt_regs.size = 168;
    p.pt_regs.orig_ax = {120, 8, true};
    p.current_task_percpu = 0x1fbc0;
    p.current_task_source = "current_task";
    p.symbols["init_task"] = 0xffffffff82a0c940ULL;
    return p;
}

TEST(LinuxProfileJson, RoundTrips) {
    const KernelProfile p = sample_profile();
    const nlohmann::json j = p;
    EXPECT_EQ(j["task_struct"]["pid"]["offset"], 100);
    EXPECT_TRUE(j["task_struct"]["thread_node"].is_null());
    EXPECT_EQ(j["symbols"]["init_task"], "0xffffffff82a0c940");
    // Required fields that are invalid in the sample make from_json refuse it...
    EXPECT_THROW(profile_from_json(j), Error);
    // ...so fill every field and try again.
    nlohmann::json full = j;
    for (auto& [type, members] : full.items())
        if (members.is_object())
            for (auto& [name, f] : members.items())
                if (f.is_null() && name != "thread_node" && name != "thread_group")
                    f = {{"offset", 8}, {"size", 8}};
    full["symbols"] = j["symbols"];
    const KernelProfile q = profile_from_json(full);
    EXPECT_EQ(q.task_struct.pid.offset, 100u);
    EXPECT_FALSE(q.task_struct.thread_node.valid);
    EXPECT_EQ(q.symbols.at("init_task"), 0xffffffff82a0c940ULL);
    EXPECT_EQ(q.current_task_percpu, 0x1fbc0u);
    EXPECT_EQ(q.cache_key(), "00112233");
    EXPECT_EQ(nlohmann::json(q), full);
    // A profile cached before an optional field existed (signal_struct.thread_head) loads,
    // with that field unknown.
    nlohmann::json older = full;
    older.erase("signal_struct");
    const KernelProfile o = profile_from_json(older);
    EXPECT_FALSE(o.signal_struct.thread_head.valid);
    EXPECT_EQ(o.task_struct.pid.offset, 100u);
}

TEST(LinuxProfileJson, MalformedCachesAreErrors) {
    EXPECT_THROW(profile_from_json(nlohmann::json::object()), Error);
    EXPECT_THROW(profile_from_json(nlohmann::json::array()), Error);
    nlohmann::json j = sample_profile();
    j["format"] = 999;
    EXPECT_THROW(profile_from_json(j), Error);
    j["format"] = KernelProfile::kFormatVersion;
    j["current_task_percpu"] = "zz";
    EXPECT_THROW(profile_from_json(j), Error);
}

TEST(LinuxProfileJson, CacheKeyFallsBackToBanner) {
    KernelProfile p = sample_profile();
    p.build_id.clear();
    const auto key = p.cache_key();
    EXPECT_EQ(key.rfind("banner-", 0), 0u);
    p.banner += "x";
    EXPECT_NE(p.cache_key(), key);
}

}  // namespace
}  // namespace nitro::linux_os
