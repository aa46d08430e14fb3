// SPDX-License-Identifier: MIT
// The kernel profile cache: one JSON file per kernel build (KernelProfile::cache_key(): the
// build id, else a SHA-256 of the BTF), plus small alias files that map a kernel image file
// (by content digest) to its build id, so that a known image is not decompressed again.
// Cache files are input like any other: a file that does not parse, does not match its name or
// is inconsistent is reported, removed and rebuilt.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "os/linux/btf_profile.h"

namespace nitro::linux_os {

class ProfileCache {
  public:
    // Largest cache file read (a profile is ~ 3 KiB).
    static constexpr size_t kMaxFileSize = size_t{1} << 20;

    // $NITRO_CACHE_DIR, else $XDG_CACHE_HOME/nitro, else $HOME/.cache/nitro ("" when none of
    // them is set).
    static std::string default_dir();

    // An empty dir disables the cache (every lookup misses, stores do nothing).
    explicit ProfileCache(std::string dir);

    const std::string& dir() const { return dir_; }
    bool enabled() const { return !dir_.empty(); }

    // Profiles built from guest memory are stored under "mem-" + their key: their build id
    // is whatever the guest claims, so they must never stand in for a profile from a kernel
    // image the user gave.
    static constexpr const char* kMemoryPrefix = "mem-";

    // The profile stored under key (prefix + its cache_key()), or nullopt (missing, or
    // rejected: then a warning says why and the file is removed so that it is rebuilt).
    std::optional<KernelProfile> load(const std::string& key) const;
    // Stores the profile under prefix + profile.cache_key() (atomically: write and rename).
    // Problems are warnings, never errors: the cache is an optimisation.
    void store(const KernelProfile& profile, const std::string& prefix = "") const;

    // Kernel image aliases: digest of the image file -> cache key.
    std::optional<KernelProfile> load_for_image(std::span<const uint8_t> image) const;
    void store_for_image(std::span<const uint8_t> image, const KernelProfile& profile) const;

    // The file a key is stored in ("" for keys that cannot name a file).
    std::string path_for(const std::string& key) const;

  private:
    std::string dir_;
};

// Whether key can name a cache file: 1-160 characters of [0-9a-z-].
bool valid_cache_key(const std::string& key);

}  // namespace nitro::linux_os
