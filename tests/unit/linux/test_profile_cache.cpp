// SPDX-License-Identifier: MIT
// The profile cache (round trip, corrupt and hostile files rebuilt), the profile sanity checks,
// the source order of resolve_profile(), and SHA-256 against the FIPS 180-4 examples.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "nitro/error.h"
#include "os/linux/profile_cache.h"
#include "os/linux/profile_source.h"
#include "os/linux/sha256.h"
#include "real_kernel.h"

namespace nitro::linux_os {
namespace {

namespace fs = std::filesystem;
using test::real_kernel;

std::string sha(std::string_view s) {
    Sha256 h;
    h.update(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
    return h.hex();
}

TEST(LinuxSha256, KnownAnswers) {
    EXPECT_EQ(sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // Fed in odd pieces: the same digest.
    const std::string million(1000000, 'a');
    Sha256 h;
    for (size_t i = 0; i < million.size();) {
        const size_t n = std::min<size_t>(1 + i % 97, million.size() - i);
        h.update(std::span(reinterpret_cast<const uint8_t*>(million.data() + i), n));
        i += n;
    }
    EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// A small but complete profile (as from BTF) without needing the real kernel.
KernelProfile sample_profile() {
    KernelProfile p;
    p.banner = "Linux version 6.1.0-test (x) #1 SMP";
    p.release = "6.1.0-test";
    p.build_id = "0123456789abcdef0123456789abcdef01234567";
    auto f = [](uint32_t off, uint32_t size) { return Field{off, size, true}; };
    auto& t = p.task_struct;
    t.size = 9000;
    t.pid = f(2400, 4);
    t.tgid = f(2404, 4);
    t.comm = f(3000, 16);
    t.mm = f(2300, 8);
    t.active_mm = f(2308, 8);
    t.real_parent = f(2416, 8);
    t.parent = f(2424, 8);
    t.tasks = f(2200, 16);
    t.children = f(2432, 16);
    t.sibling = f(2448, 16);
    t.thread_group = f(2500, 16);
    t.signal = f(3100, 8);
    t.flags = f(44, 4);
    t.exit_state = f(2280, 4);
    t.stack = f(32, 8);
    p.list_head = {f(0, 8), f(8, 8)};
    p.mm_struct.size = 1000;
    p.mm_struct.pgd = f(80, 8);
    p.mm_struct.exe_file = f(900, 8);
    p.mm_struct.arg_start = f(300, 8);
    p.mm_struct.arg_end = f(308, 8);
    p.file.f_path = f(16, 16);
    p.path = {f(8, 8), f(0, 8)};
    p.dentry = {f(32, 16), f(24, 8)};
    p.qstr = {f(8, 8), f(4, 4)};
    const auto r = [&](uint32_t slot) { return f(slot * 8, 8); };
    p.pt_regs = {168,  r(15), r(10), r(14), r(13), r(12), r(7),
                 r(9), r(8),  r(16), r(17), r(18), r(19), r(20)};
    p.current_task_percpu = 0x1fb80;
    p.current_task_source = "current_task";
    p.symbols["init_task"] = 0xffffffff82a1aa40;
    return p;
}

class ProfileCacheTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = (fs::temp_directory_path() /
                ("nitro-cache-test-" + std::to_string(getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                   .string();
        fs::remove_all(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    void write(const std::string& path, const std::string& text) {
        fs::create_directories(dir_);
        std::ofstream(path) << text;
    }
    std::string dir_;
};

TEST_F(ProfileCacheTest, RoundTrip) {
    const ProfileCache cache(dir_);
    const KernelProfile p = sample_profile();
    validate_profile(p);
    EXPECT_FALSE(cache.load(p.cache_key()));
    cache.store(p);
    EXPECT_TRUE(fs::exists(cache.path_for(p.build_id)));
    auto q = cache.load(p.cache_key());
    ASSERT_TRUE(q);
    EXPECT_EQ(nlohmann::json(*q), nlohmann::json(p));
    // Kernels without a build id are keyed by their BTF digest.
    KernelProfile b = p;
    b.build_id.clear();
    b.btf_sha256 = std::string(64, 'a');
    EXPECT_EQ(b.cache_key(), "btf-" + b.btf_sha256);
    cache.store(b);
    EXPECT_EQ(nlohmann::json(*cache.load(b.cache_key())), nlohmann::json(b));
}

TEST_F(ProfileCacheTest, CorruptFilesAreRejectedAndRemoved) {
    const ProfileCache cache(dir_);
    const KernelProfile p = sample_profile();
    const std::string path = cache.path_for(p.cache_key());
    for (const std::string& bad : {
             std::string("not json at all"), std::string("{\"format\": 1}"), std::string("[]"),
             nlohmann::json(p).dump().substr(0, 200),  // truncated
         }) {
        write(path, bad);
        EXPECT_FALSE(cache.load(p.cache_key())) << bad;
        EXPECT_FALSE(fs::exists(path)) << bad;
    }
    // Well-formed, but a field outside its struct.
    KernelProfile hostile = p;
    hostile.task_struct.comm.offset = 100000;
    write(path, nlohmann::json(hostile).dump());
    EXPECT_FALSE(cache.load(p.cache_key()));
    // Well-formed, but another kernel's profile under this name.
    KernelProfile other = p;
    other.build_id = "ffff456789abcdef0123456789abcdef01234567";
    write(path, nlohmann::json(other).dump());
    EXPECT_FALSE(cache.load(p.cache_key()));
    // A directory (or anything not a regular file) in its place.
    fs::create_directories(path);
    EXPECT_FALSE(cache.load(p.cache_key()));
    fs::remove_all(path);
    // After all that, storing works again.
    cache.store(p);
    EXPECT_TRUE(cache.load(p.cache_key()));
}

TEST_F(ProfileCacheTest, HostileKeysNameNoFile) {
    const ProfileCache cache(dir_);
    EXPECT_EQ(cache.path_for("../../etc/passwd"), "");
    EXPECT_EQ(cache.path_for(""), "");
    EXPECT_EQ(cache.path_for(std::string(200, 'a')), "");
    EXPECT_EQ(cache.path_for("ABC"), "");
    EXPECT_FALSE(cache.load("../x"));
    // A build id from guest memory that is not hex falls back to a digest key.
    KernelProfile p = sample_profile();
    p.build_id = "../../x";
    EXPECT_TRUE(p.cache_key().starts_with("banner-")) << p.cache_key();
    EXPECT_TRUE(valid_cache_key(p.cache_key()));
    // A disabled cache does nothing.
    const ProfileCache off("");
    off.store(sample_profile());
    EXPECT_FALSE(off.load(sample_profile().cache_key()));
}

TEST_F(ProfileCacheTest, ImageAliases) {
    const ProfileCache cache(dir_);
    const std::vector<uint8_t> image = {1, 2, 3, 4, 5};
    const KernelProfile p = sample_profile();
    EXPECT_FALSE(cache.load_for_image(image));
    cache.store_for_image(image, p);
    auto q = cache.load_for_image(image);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->cache_key(), p.cache_key());
    EXPECT_FALSE(cache.load_for_image(std::vector<uint8_t>{1, 2, 3}));
    // A hostile alias pointing outside the cache is rejected.
    for (const auto& e : fs::directory_iterator(dir_))
        if (e.path().filename().string().starts_with("image-"))
            write(e.path().string(), R"({"profile": "../../etc/passwd"})");
    EXPECT_FALSE(cache.load_for_image(image));
}

TEST_F(ProfileCacheTest, DefaultDirectory) {
    const char* old_nitro = std::getenv("NITRO_CACHE_DIR");
    const char* old_xdg = std::getenv("XDG_CACHE_HOME");
    const std::string saved_nitro = old_nitro ? old_nitro : "";
    const std::string saved_xdg = old_xdg ? old_xdg : "";
    unsetenv("NITRO_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    EXPECT_EQ(ProfileCache::default_dir(), "/x/cache/nitro");
    setenv("NITRO_CACHE_DIR", "/y", 1);
    EXPECT_EQ(ProfileCache::default_dir(), "/y");
    if (old_nitro)
        setenv("NITRO_CACHE_DIR", saved_nitro.c_str(), 1);
    else
        unsetenv("NITRO_CACHE_DIR");
    if (old_xdg)
        setenv("XDG_CACHE_HOME", saved_xdg.c_str(), 1);
    else
        unsetenv("XDG_CACHE_HOME");
}

TEST(LinuxProfileValidation, RejectsInconsistentProfiles) {
    EXPECT_NO_THROW(validate_profile(sample_profile()));
    auto bad = [](auto mutate) {
        KernelProfile p = sample_profile();
        mutate(p);
        EXPECT_THROW(validate_profile(p), Error);
    };
    bad([](KernelProfile& p) { p.task_struct.size = 0; });
    bad([](KernelProfile& p) { p.task_struct.size = 1u << 24; });
    bad([](KernelProfile& p) { p.task_struct.pid.size = 8; });
    bad([](KernelProfile& p) { p.task_struct.comm.size = 1000; });
    bad([](KernelProfile& p) { p.task_struct.real_parent.valid = false; });
    bad([](KernelProfile& p) { p.mm_struct.pgd.offset = 0xfffffff0; });
    bad([](KernelProfile& p) { p.current_task_percpu = 0; });
    bad([](KernelProfile& p) { p.current_task_percpu = 1ull << 40; });
}

TEST_F(ProfileCacheTest, ResolveNeedsSomething) {
    ProfileOptions o;
    o.cache_dir = dir_;
    try {
        resolve_profile(o, nullptr);
        FAIL();
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("--kernel-image"), std::string::npos) << what;
        EXPECT_NE(what.find("--profile"), std::string::npos) << what;
    }
    o.kernel_image = dir_ + "/no-such-image";
    EXPECT_THROW(resolve_profile(o, nullptr), Error);
}

TEST_F(ProfileCacheTest, ResolveFromImageUsesTheCacheTheSecondTime) {
    REQUIRE_REAL_KERNEL();
    ProfileOptions o;
    o.cache_dir = dir_;
    o.kernel_image = test::real_kernel_path();
    const ResolvedProfile cold = resolve_profile(o);
    EXPECT_FALSE(cold.from_cache);
    const ResolvedProfile warm = resolve_profile(o);
    EXPECT_TRUE(warm.from_cache);
    EXPECT_EQ(warm.source, "kernel image " + o.kernel_image + " (cached)");
    EXPECT_EQ(nlohmann::json(warm.profile), nlohmann::json(real_kernel()->profile));
    std::printf("profile from the image: %.1f ms cold, %.1f ms from the cache\n", cold.ms, warm.ms);
    // A corrupted cache entry is rebuilt from the image.
    const ProfileCache cache(dir_);
    write(cache.path_for(real_kernel()->profile.cache_key()), "{garbage");
    const ResolvedProfile again = resolve_profile(o);
    EXPECT_FALSE(again.from_cache);
    EXPECT_EQ(nlohmann::json(again.profile), nlohmann::json(real_kernel()->profile));
    EXPECT_TRUE(cache.load(real_kernel()->profile.cache_key()));
}

}  // namespace
}  // namespace nitro::linux_os
