// SPDX-License-Identifier: MIT
// The plugin argument callbacks=empty (nitro-bench's floor mode): QEMU instruments the same
// instructions, and their callbacks only count themselves. The plugin's own code on a fake
// QEMU (fake_qemu.h), its own process (the plugin keeps process-wide state).
#include <gtest/gtest.h>

#include <chrono>

#include "fake_qemu.h"
#include "listener/tcg/tcg_listener.h"

namespace nitro::tcg {
namespace {

TEST(PluginEmptyCallbacks, CountsEveryCallbackAndWritesNoEvent) {
    fake::FakeQemu qemu("callbacks=empty");
    TcgListener listener(qemu.ctl_path(), TcgOptions{});
    qemu.translate();
    EXPECT_TRUE(listener.producer_stats().instrumented);
    for (uint64_t i = 0; i < 100; i++) qemu.call(39, {i, 0, 0, 0, 0, 0}, 1);
    EXPECT_EQ(listener.producer_stats().callbacks, 200u);
    Event ev;
    EXPECT_EQ(listener.next(ev, std::chrono::milliseconds(100)), Listener::Status::Timeout);
    EXPECT_EQ(listener.stats().events, 0u);
}

}  // namespace
}  // namespace nitro::tcg
