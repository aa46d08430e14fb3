// SPDX-License-Identifier: MIT
// Where records go: a file or stdout, as JSON lines or as one JSON array, buffered, and always
// left complete (the closing bracket of a JSON array is written on close, also after Ctrl-C).
#pragma once

#include <cstdio>
#include <string>

namespace nitro::output {

class Sink {
public:
    enum class Framing { Lines, JsonArray };
    /// path "" or "-" = stdout. Throws nitro::Error if the file cannot be written.
    Sink(const std::string& path, Framing framing);
    ~Sink();
    Sink(const Sink&) = delete;
    Sink& operator=(const Sink&) = delete;

    /// Writes one record (a line of text or one JSON value).
    void write(std::string_view record);
    void flush();
    /// Completes the output (closing bracket) and closes the file; idempotent.
    void close();
    uint64_t records() const { return records_; }

private:
    FILE* f_ = nullptr;
    bool owned_ = false;
    Framing framing_;
    uint64_t records_ = 0;
    std::string path_;
};

}  // namespace nitro::output
