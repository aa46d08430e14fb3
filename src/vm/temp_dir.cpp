// SPDX-License-Identifier: MIT
#include "vm/temp_dir.h"

#include <stdlib.h>

#include <filesystem>
#include <vector>

#include "nitro/error.h"

namespace nitro::vm {

TempDir::TempDir(const std::string& parent, const std::string& prefix) {
    std::string tmpl = parent + "/" + prefix + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) fail_errno("cannot create a directory in " + parent);
    path_ = buf.data();
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

}  // namespace nitro::vm
