// SPDX-License-Identifier: MIT
#include "nitro/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace nitro::log {
namespace {
std::atomic<Level> g_level{Level::Warn};
std::mutex g_mutex;
}  // namespace

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void write(Level l, std::string_view message) {
    static constexpr const char* prefix[] = {"error", "warning", "info", "debug"};
    std::lock_guard lock(g_mutex);
    std::fprintf(stderr, "nitro: %s: %.*s\n", prefix[static_cast<int>(l)],
                 static_cast<int>(message.size()), message.data());
}

}  // namespace nitro::log
