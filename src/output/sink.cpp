// SPDX-License-Identifier: MIT
#include "output/sink.h"

#include <cerrno>
#include <cstring>

#include "nitro/error.h"

namespace nitro::output {

Sink::Sink(const std::string& path, Framing framing) : framing_(framing), path_(path) {
    if (path.empty() || path == "-") {
        f_ = stdout;
    } else {
        f_ = std::fopen(path.c_str(), "w");
        if (!f_) fail("cannot write output file {}: {}", path, std::strerror(errno));
        owned_ = true;
        std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
    }
    if (framing_ == Framing::JsonArray) std::fputs("[", f_);
}

Sink::~Sink() {
    try {
        close();
    } catch (const Error&) {
        // Reported by an explicit close(); a destructor must not throw.
    }
}

void Sink::write(std::string_view record) {
    if (!f_) return;
    if (framing_ == Framing::JsonArray) std::fputs(records_ ? ",\n" : "\n", f_);
    // One thread writes a sink: stdio's per-call locking is not needed.
    fwrite_unlocked(record.data(), 1, record.size(), f_);
    if (framing_ == Framing::Lines) fputc_unlocked('\n', f_);
    records_++;
}

void Sink::flush() {
    if (f_) std::fflush(f_);
}

void Sink::close() {
    if (!f_) return;
    if (framing_ == Framing::JsonArray) std::fputs("\n]\n", f_);
    bool bad = std::fflush(f_) != 0 || std::ferror(f_);
    if (owned_) bad = std::fclose(f_) != 0 || bad;
    f_ = nullptr;
    if (bad) fail("writing {} failed: {}", path_.empty() ? "stdout" : path_, std::strerror(errno));
}

}  // namespace nitro::output
