// SPDX-License-Identifier: MIT
// SHA-256 (FIPS 180-4), for cache keys of kernels without a build id: a digest the guest cannot
// steer into another kernel's cache entry.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace nitro::linux_os {

class Sha256 {
  public:
    Sha256();
    void update(std::span<const uint8_t> data);
    std::array<uint8_t, 32> finish();
    // Lower-case hex of finish().
    std::string hex();

  private:
    void block(const uint8_t* p);
    std::array<uint32_t, 8> h_;
    std::array<uint8_t, 64> buf_{};
    size_t used_ = 0;
    uint64_t total_ = 0;
};

}  // namespace nitro::linux_os
