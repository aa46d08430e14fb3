// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include "nitro/error.h"

namespace {

nitro::Result<int> half(int x) {
    if (x % 2) return nitro::Result<int>::error("odd");
    return x / 2;
}

TEST(Result, CarriesValueOrError) {
    auto good = half(4);
    ASSERT_TRUE(good.ok());
    EXPECT_EQ(*good, 2);
    auto bad = half(3);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error(), "odd");
    EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(Error, FormatsOneLine) {
    try {
        nitro::fail("cannot open {}: {}", "/x", "No such file");
    } catch (const nitro::Error& e) {
        EXPECT_STREQ(e.what(), "cannot open /x: No such file");
        return;
    }
    FAIL() << "fail() did not throw";
}

}  // namespace
