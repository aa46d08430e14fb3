// SPDX-License-Identifier: MIT
#include "fake_stub.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace nitro::gdb::testing {

namespace {

// Long enough never to fire when the client behaves, short enough that a broken client fails
// the test rather than hanging it.
constexpr std::chrono::milliseconds kStubTimeout{3000};

// Written independently of the library's codec so that the tests do not check it with itself.
std::string frame(const std::string& payload, bool corrupt = false) {
    unsigned sum = 0;
    for (unsigned char c : payload) sum += c;
    if (corrupt) sum += 1;
    return fmt::format("${}#{:02x}", payload, sum & 0xff);
}

std::string escape(const std::string& data) {
    std::string out;
    for (char c : data) {
        if (c == '$' || c == '#' || c == '}' || c == '*') {
            out += '}';
            out += static_cast<char>(c ^ 0x20);
        } else {
            out += c;
        }
    }
    return out;
}

std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s)
        out += (c >= 0x20 && c < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", c);
    return out;
}

}  // namespace

FakeStub::FakeStub() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        std::perror("socketpair");
        std::abort();
    }
    stub_fd_ = fds[0];
    client_fd_ = fds[1];
}

FakeStub::~FakeStub() {
    if (thread_.joinable()) thread_.join();
    if (stub_fd_ >= 0) ::close(stub_fd_);
    if (client_fd_ >= 0) ::close(client_fd_);
}

Socket FakeStub::take_client_socket() {
    int fd = client_fd_;
    client_fd_ = -1;
    if (fd < 0) throw std::logic_error("client socket already taken");
    return Socket(fd, "fake-stub");
}

FakeStub& FakeStub::expect(std::string p) {
    steps_.push_back({Step::Op::Expect, std::move(p), {}, {}});
    return *this;
}
FakeStub& FakeStub::expect_prefix(std::string p) {
    steps_.push_back({Step::Op::ExpectPrefix, std::move(p), {}, {}});
    return *this;
}
FakeStub& FakeStub::expect_and_nak(std::string p) {
    steps_.push_back({Step::Op::ExpectNak, std::move(p), {}, {}});
    return *this;
}
FakeStub& FakeStub::reply(std::string p) {
    steps_.push_back({Step::Op::Reply, std::move(p), {}, {}});
    return *this;
}
FakeStub& FakeStub::reply_bad_checksum(std::string p) {
    steps_.push_back({Step::Op::ReplyBad, std::move(p), {}, {}});
    return *this;
}
FakeStub& FakeStub::send_raw(std::string b) {
    steps_.push_back({Step::Op::SendRaw, std::move(b), {}, {}});
    return *this;
}
FakeStub& FakeStub::expect_raw(std::string b) {
    steps_.push_back({Step::Op::ExpectRaw, std::move(b), {}, {}});
    return *this;
}
FakeStub& FakeStub::expect_silence(std::chrono::milliseconds ms) {
    steps_.push_back({Step::Op::Silence, {}, {}, ms});
    return *this;
}
FakeStub& FakeStub::serve_xfer(std::string annex, std::string content) {
    steps_.push_back({Step::Op::Xfer, std::move(annex), std::move(content), {}});
    return *this;
}
FakeStub& FakeStub::pause(std::chrono::milliseconds ms) {
    steps_.push_back({Step::Op::Pause, {}, {}, ms});
    return *this;
}
FakeStub& FakeStub::no_ack() {
    steps_.push_back({Step::Op::NoAck, {}, {}, {}});
    return *this;
}
FakeStub& FakeStub::hang_up() {
    steps_.push_back({Step::Op::HangUp, {}, {}, {}});
    return *this;
}

void FakeStub::start() {
    thread_ = std::thread([this] { run(); });
}

std::vector<std::string> FakeStub::finish() {
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    return errors_;
}

bool FakeStub::error(std::string what) {
    {
        std::lock_guard lock(mu_);
        errors_.push_back(std::move(what));
    }
    // Hang up so that the client fails at once instead of waiting for its timeout.
    if (stub_fd_ >= 0) {
        ::close(stub_fd_);
        stub_fd_ = -1;
    }
    return false;
}

void FakeStub::run() {
    for (std::size_t i = 0; i < steps_.size(); ++i) {
        if (!play(steps_[i])) {
            std::lock_guard lock(mu_);
            if (!errors_.empty()) errors_.back() = fmt::format("step {}: {}", i, errors_.back());
            return;
        }
    }
}

bool FakeStub::read_byte(char& c, std::chrono::milliseconds timeout) {
    if (stub_fd_ < 0) return false;
    pollfd p{stub_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    return ::read(stub_fd_, &c, 1) == 1;
}

bool FakeStub::write(const std::string& bytes) {
    if (stub_fd_ < 0) return false;
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(stub_fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n <= 0) return error("write failed: client gone");
        done += static_cast<std::size_t>(n);
    }
    return true;
}

bool FakeStub::read_packet(std::string& payload) {
    char c;
    if (!read_byte(c, kStubTimeout)) return error("no packet from the client");
    if (c != '$') return error(fmt::format("expected '$', got '{}'", printable(std::string(1, c))));
    payload.clear();
    for (;;) {
        if (!read_byte(c, kStubTimeout)) return error("client packet cut short");
        if (c == '#') break;
        payload += c;
    }
    char cs[3] = {};
    if (!read_byte(cs[0], kStubTimeout) || !read_byte(cs[1], kStubTimeout))
        return error("client packet without checksum");
    unsigned sum = 0;
    for (unsigned char ch : payload) sum += ch;
    if (std::strtoul(cs, nullptr, 16) != (sum & 0xff) || fmt::format("{:02x}", sum & 0xff) != cs)
        return error(fmt::format("client sent a bad checksum for '{}'", printable(payload)));
    return true;
}

bool FakeStub::wait_ack(char want) {
    char c;
    if (!read_byte(c, kStubTimeout)) return error(fmt::format("no '{}' from the client", want));
    if (c != want)
        return error(fmt::format("expected '{}', got '{}'", want, printable(std::string(1, c))));
    return true;
}

bool FakeStub::play(const Step& s) {
    using Op = Step::Op;
    std::string payload;
    switch (s.op) {
        case Op::Expect:
        case Op::ExpectPrefix:
        case Op::ExpectNak: {
            if (!read_packet(payload)) return false;
            bool match = s.op == Op::ExpectPrefix ? payload.starts_with(s.a) : payload == s.a;
            if (!match)
                return error(
                    fmt::format("expected '{}', got '{}'", printable(s.a), printable(payload)));
            if (ack_) return write(s.op == Op::ExpectNak ? "-" : "+");
            return true;
        }
        case Op::Reply:
            if (!write(frame(s.a))) return false;
            return !ack_ || wait_ack('+');
        case Op::ReplyBad:
            if (!write(frame(s.a, true))) return false;
            return !ack_ || wait_ack('-');
        case Op::SendRaw:
            return write(s.a);
        case Op::ExpectRaw:
            for (char want : s.a) {
                char c;
                if (!read_byte(c, kStubTimeout))
                    return error(fmt::format("expected raw '{}'", printable(s.a)));
                if (c != want)
                    return error(fmt::format("expected raw '{}', got '{}'", printable(s.a),
                                             printable(std::string(1, c))));
            }
            return true;
        case Op::Silence: {
            char c;
            if (read_byte(c, s.ms))
                return error(fmt::format("unexpected byte '{}'", printable(std::string(1, c))));
            return stub_fd_ >= 0;
        }
        case Op::Xfer: {
            std::string prefix = "qXfer:features:read:" + s.a + ":";
            for (;;) {
                if (!read_packet(payload)) return false;
                if (!payload.starts_with(prefix))
                    return error(
                        fmt::format("expected '{}...', got '{}'", prefix, printable(payload)));
                if (ack_ && !write("+")) return false;
                std::string range = payload.substr(prefix.size());
                auto comma = range.find(',');
                if (comma == std::string::npos) return error("qXfer without length");
                std::size_t off = std::stoul(range.substr(0, comma), nullptr, 16);
                std::size_t len = std::stoul(range.substr(comma + 1), nullptr, 16);
                if (off > s.b.size()) return error("qXfer offset past the end");
                bool last = off + len >= s.b.size();
                std::string reply = (last ? "l" : "m") + escape(s.b.substr(off, len));
                if (!write(frame(reply))) return false;
                if (ack_ && !wait_ack('+')) return false;
                if (last) return true;
            }
        }
        case Op::Pause:
            std::this_thread::sleep_for(s.ms);
            return true;
        case Op::NoAck:
            ack_ = false;
            return true;
        case Op::HangUp:
            if (stub_fd_ >= 0) ::close(stub_fd_);
            stub_fd_ = -1;
            return true;
    }
    return false;
}

std::map<std::string, std::string> x86_64_description() {
    std::map<std::string, std::string> files;
    files["target.xml"] =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target>\n"
        "  <architecture>i386:x86-64</architecture>\n"
        "  <xi:include href=\"core64.xml\"/>\n  <xi:include href='sys64.xml'/>\n</target>\n";
    std::string core =
        "<?xml version=\"1.0\"?>\n<!-- test description: * $ # } survive qXfer escaping -->\n"
        "<!DOCTYPE feature SYSTEM \"gdb-target.dtd\">\n"
        "<feature name=\"org.gnu.gdb.i386.core\">\n"
        "  <flags id=\"x64_eflags\" size=\"4\">\n"
        "    <field name=\"CF\" start=\"0\" end=\"0\"/>\n  </flags>\n"
        "  <reg name=\"rax\" bitsize=\"64\" type=\"int64\" regnum=\"0\"/>\n";
    for (const char* r : {"rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
                          "r12", "r13", "r14", "r15", "rip"})
        core += fmt::format("  <reg name=\"{}\" bitsize=\"64\" type=\"int64\"/>\n", r);
    core += "  <reg name=\"eflags\" bitsize=\"32\" type=\"x64_eflags\"/>\n";
    for (const char* r : {"cs", "ss", "ds", "es", "fs", "gs"})
        core += fmt::format("  <reg name=\"{}\" bitsize=\"32\" type=\"int32\"/>\n", r);
    core +=
        "  <!--reg name=\"cs_base\" bitsize=\"64\" type=\"int64\"/>\n"
        "  <reg name=\"ss_base\" bitsize=\"64\" type=\"int64\"/-->\n";
    for (const char* r : {"fs_base", "gs_base", "k_gs_base"})
        core += fmt::format("  <reg name=\"{}\" bitsize=\"64\" type=\"int64\"/>\n", r);
    for (int i = 0; i < 8; ++i)
        core += fmt::format("  <reg name=\"st{}\" bitsize=\"80\" type=\"i387_ext\"/>\n", i);
    for (const char* r : {"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"})
        core +=
            fmt::format("  <reg name=\"{}\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n", r);
    for (int i = 0; i < 16; ++i)
        core += fmt::format("  <reg name=\"xmm{}\" bitsize=\"128\" type=\"vec128\"/>\n", i);
    core += "  <reg name=\"mxcsr\" bitsize=\"32\" type=\"int\" group=\"vector\"/>\n</feature>\n";
    files["core64.xml"] = core;
    files["sys64.xml"] =
        "<?xml version=\"1.0\"?>\n<feature name=\"org.nitro.test.system\">\n"
        "  <reg name=\"cr0\" bitsize=\"64\" regnum=\"70\" group=\"system\"/>\n"
        "  <reg name=\"cr2\" bitsize=\"64\"/>\n  <reg name=\"cr3\" bitsize=\"64\"/>\n"
        "  <reg name=\"cr4\" bitsize=\"64\"/>\n  <reg name=\"cr8\" bitsize=\"64\"/>\n"
        "  <reg name=\"efer\" bitsize=\"64\"/>\n</feature>\n";
    return files;
}

}  // namespace nitro::gdb::testing
