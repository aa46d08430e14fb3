// SPDX-License-Identifier: MIT
#include "plugin_path.h"

#include <unistd.h>

#include <filesystem>
#include <vector>

#include "nitro/error.h"

namespace nitro::cli {

std::string find_plugin() {
    namespace fs = std::filesystem;
    std::vector<fs::path> tried;
    if (const char* env = getenv("NITRO_PLUGIN"); env && *env) {
        if (fs::is_regular_file(env)) return env;
        fail("NITRO_PLUGIN={} does not exist", env);
    }
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        fs::path dir = exe.parent_path();
        for (fs::path p :
             {dir / NITRO_PLUGIN_NAME, dir / NITRO_PLUGIN_RELDIR / NITRO_PLUGIN_NAME}) {
            p = p.lexically_normal();
            if (fs::is_regular_file(p)) return p.string();
            tried.push_back(p);
        }
    }
    std::string list;
    for (const auto& p : tried) list += (list.empty() ? "" : ", ") + p.string();
    fail("nitro's QEMU plugin {} not found (looked in {}); set NITRO_PLUGIN=PATH",
         NITRO_PLUGIN_NAME, list);
}

}  // namespace nitro::cli
