// SPDX-License-Identifier: MIT
#include "vm/qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "nitro/error.h"

namespace nitro::vm {

namespace {
using Clock = std::chrono::steady_clock;
constexpr size_t kMaxMessage = 16 << 20;  // QEMU's replies are small; bound a broken peer.
}  // namespace

QmpClient::QmpClient(const std::string& socket_path, std::chrono::milliseconds timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path) fail("QMP socket path too long: {}", socket_path);
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    auto deadline = Clock::now() + timeout;
    for (;;) {
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) fail_errno("socket");
        if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
        int e = errno;
        close(fd_);
        fd_ = -1;
        if (Clock::now() >= deadline) {
            fail("cannot connect to QMP socket {}: {}", socket_path, std::strerror(e));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) peer_pid_ = cred.pid;

    auto remaining = [&] {
        return std::max(std::chrono::milliseconds(100),
                        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    };
    auto greeting = read_message(remaining());
    if (!greeting || !greeting->contains("QMP")) fail("{} is not a QMP socket", socket_path);
    version_ = (*greeting)["QMP"]["version"]["qemu"];
    execute("qmp_capabilities", Json::object(), remaining());
}

QmpClient::~QmpClient() {
    if (fd_ >= 0) close(fd_);
}

void QmpClient::send(const Json& message) {
    std::string text = message.dump() + "\n";
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::send(fd_, text.data() + off, text.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            closed_ = true;
            fail("QMP connection to QEMU lost while sending: {}", std::strerror(errno));
        }
        off += static_cast<size_t>(n);
    }
}

std::optional<QmpClient::Json> QmpClient::read_message(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
            Json j = Json::parse(line, nullptr, false);
            if (j.is_discarded()) fail("QEMU sent malformed QMP: {:.80}", line);
            return j;
        }
        if (closed_) fail("QEMU closed its QMP connection");
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail_errno("poll on QMP socket");
        if (r == 0) return std::nullopt;
        char chunk[8192];
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            closed_ = true;
            continue;
        }
        buffer_.append(chunk, static_cast<size_t>(n));
        if (buffer_.size() > kMaxMessage) fail("QMP message from QEMU too large");
    }
}

QmpClient::Json QmpClient::execute(const std::string& command, const Json& arguments,
                                   std::chrono::milliseconds timeout) {
    unsigned id = next_id_++;
    Json msg = {{"execute", command}, {"id", id}};
    if (!arguments.empty()) msg["arguments"] = arguments;
    send(msg);
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) fail("QEMU did not answer QMP command {} in time", command);
        auto reply = read_message(left);
        if (!reply) continue;
        if (reply->contains("event")) {
            events_.push_back(std::move(*reply));
            continue;
        }
        if (!reply->contains("id") || (*reply)["id"] != id) continue;
        if (reply->contains("error")) {
            fail("QMP command {} failed: {}", command,
                 (*reply)["error"].value("desc", std::string("unknown error")));
        }
        return (*reply)["return"];
    }
}

std::optional<QmpClient::Json> QmpClient::next_event(std::chrono::milliseconds timeout) {
    if (events_.empty()) {
        auto msg = read_message(timeout);
        if (!msg) return std::nullopt;
        if (!msg->contains("event")) return std::nullopt;  // stray reply: ignore
        return msg;
    }
    Json e = std::move(events_.front());
    events_.pop_front();
    return e;
}

}  // namespace nitro::vm
