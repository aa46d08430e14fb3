// SPDX-License-Identifier: MIT
#include "nitro/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nitro {

void fail_errno(const std::string& what) {
    int e = errno;
    throw Error(fmt::format("{}: {}", what, std::strerror(e)));
}

void assert_failed(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "nitro: internal error: assertion '%s' failed at %s:%d\n", expr, file,
                 line);
    std::abort();
}

}  // namespace nitro
