// SPDX-License-Identifier: MIT
#include "os/linux/profile_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nitro/error.h"
#include "nitro/log.h"

namespace nitro::linux_os {
namespace {

namespace fs = std::filesystem;

// Images are the user's own files, not guest input: a fast 64-bit hash of every byte (plus the
// size) tells them apart; SHA-256 would cost more than half of what the alias saves.
std::string image_alias_key(std::span<const uint8_t> image) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ image.size();
    size_t i = 0;
    for (; i + 8 <= image.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, image.data() + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    for (; i < image.size(); ++i) h = (h ^ image[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return fmt::format("image-{}-{:016x}", image.size(), h);
}

// Reads a small regular file; nullopt when missing, throws nitro::Error when unusable.
std::optional<std::string> read_small(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
    if (!S_ISREG(st.st_mode)) fail("not a regular file");
    if (static_cast<uint64_t>(st.st_size) > ProfileCache::kMaxFileSize)
        fail("{} bytes is too large for a profile", st.st_size);
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot open");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A small JSON file; nullopt when missing, throws nitro::Error when unusable.
std::optional<nlohmann::json> read_json(const std::string& path) {
    auto text = read_small(path);
    if (!text) return std::nullopt;
    try {
        return nlohmann::json::parse(*text);
    } catch (const nlohmann::json::exception&) {
        fail("not valid JSON");
    }
}

void reject(const std::string& path, const std::string& why) {
    log::warn("profile cache: ignoring {}: {}; it will be rebuilt", path, why);
    std::error_code ec;
    fs::remove(path, ec);
}

void write_atomically(const std::string& dir, const std::string& path, const std::string& text) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail("cannot create {}: {}", dir, ec.message());
    const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
    {
        std::ofstream f(tmp, std::ios::trunc | std::ios::binary);
        if (!f) fail("cannot write {}", tmp);
        f << text;
        f.flush();
        if (!f) {
            fs::remove(tmp, ec);
            fail("cannot write {}", tmp);
        }
    }
    // Rename so that a concurrent reader never sees half a file.
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        fs::remove(tmp, ec);
        fail_errno("cannot rename " + tmp);
    }
}

}  // namespace

bool valid_cache_key(const std::string& key) {
    if (key.empty() || key.size() > 160) return false;
    for (char c : key)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-')) return false;
    return true;
}

std::string ProfileCache::default_dir() {
    if (const char* d = std::getenv("NITRO_CACHE_DIR"); d && *d) return d;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/nitro";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/nitro";
    return {};
}

ProfileCache::ProfileCache(std::string dir) : dir_(std::move(dir)) {}

std::string ProfileCache::path_for(const std::string& key) const {
    if (!enabled() || !valid_cache_key(key)) return {};
    return dir_ + "/" + key + ".json";
}

std::optional<KernelProfile> ProfileCache::load(const std::string& key) const {
    const std::string path = path_for(key);
    if (path.empty()) return std::nullopt;
    try {
        auto j = read_json(path);
        if (!j) return std::nullopt;
        KernelProfile p = profile_from_json(*j);
        validate_profile(p);
        if (p.cache_key() != key && kMemoryPrefix + p.cache_key() != key)
            fail("it holds the profile of another kernel ({})", p.cache_key());
        log::debug("kernel profile {} from the cache ({})", key, path);
        return p;
    } catch (const Error& e) {
        reject(path, e.what());
        return std::nullopt;
    }
}

void ProfileCache::store(const KernelProfile& profile, const std::string& prefix) const {
    const std::string key = prefix + profile.cache_key();
    const std::string path = path_for(key);
    if (path.empty()) return;
    try {
        write_atomically(dir_, path, nlohmann::json(profile).dump(2) + "\n");
        log::debug("kernel profile {} cached in {}", key, path);
    } catch (const Error& e) {
        log::warn("profile cache: cannot store {}: {}", path, e.what());
    }
}

std::optional<KernelProfile> ProfileCache::load_for_image(std::span<const uint8_t> image) const {
    if (!enabled()) return std::nullopt;
    const std::string path = path_for(image_alias_key(image));
    try {
        auto j = read_json(path);
        if (!j) return std::nullopt;
        if (!j->is_object() || !j->contains("profile") || !(*j)["profile"].is_string())
            fail("not an image alias (no \"profile\" key)");
        const std::string key = (*j)["profile"].get<std::string>();
        if (!valid_cache_key(key)) fail("invalid profile key");
        return load(key);
    } catch (const Error& e) {
        reject(path, e.what());
        return std::nullopt;
    }
}

void ProfileCache::store_for_image(std::span<const uint8_t> image,
                                   const KernelProfile& profile) const {
    if (!enabled()) return;
    store(profile);
    const std::string path = path_for(image_alias_key(image));
    try {
        write_atomically(dir_, path,
                         nlohmann::json{{"profile", profile.cache_key()}}.dump() + "\n");
    } catch (const Error& e) {
        log::warn("profile cache: cannot store {}: {}", path, e.what());
    }
}

}  // namespace nitro::linux_os
