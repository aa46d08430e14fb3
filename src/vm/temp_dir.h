// SPDX-License-Identifier: MIT
#pragma once

#include <string>

namespace nitro::vm {

/// A private directory (mode 0700) removed with its contents on destruction.
class TempDir {
public:
    /// Creates PARENT/PREFIX-XXXXXX; throws nitro::Error on failure.
    TempDir(const std::string& parent, const std::string& prefix);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

}  // namespace nitro::vm
