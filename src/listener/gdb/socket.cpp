// SPDX-License-Identifier: MIT
#include "listener/gdb/socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "nitro/error.h"

namespace nitro::gdb {

namespace {

void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) fail_errno("gdb: fcntl");
}

int millis_until(Deadline deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return 0;
    return left > 1'000'000 ? 1'000'000 : static_cast<int>(left);
}

// Waits for `events` until the deadline; false on timeout.
bool wait_for(int fd, short events, Deadline deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, millis_until(deadline));
        if (n > 0) return true;
        if (n == 0) {
            if (Clock::now() >= deadline) return false;
            continue;  // poll rounds down to whole milliseconds
        }
        if (errno != EINTR) fail_errno("gdb: poll");
    }
}

// Completes a non-blocking connect() within the deadline; returns the errno of the attempt.
int finish_connect(int fd, const sockaddr* addr, socklen_t len, Deadline deadline) {
    if (::connect(fd, addr, len) == 0) return 0;
    if (errno != EINPROGRESS && errno != EINTR) return errno;
    if (!wait_for(fd, POLLOUT, deadline)) return ETIMEDOUT;
    int err = 0;
    socklen_t err_len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0) return errno;
    return err;
}

}  // namespace

Socket::Socket(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {
    NITRO_ASSERT(fd >= 0);
    set_nonblocking(fd_);
}

Socket::~Socket() { close(); }

Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), peer_(std::move(other.peer_)) {}

Socket& Socket::operator=(Socket&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        peer_ = std::move(other.peer_);
    }
    return *this;
}

void Socket::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Socket Socket::connect(std::string_view endpoint, Millis timeout) {
    std::string ep(endpoint);
    if (ep.starts_with("unix:")) return connect_unix(ep.substr(5), timeout);
    if (ep.starts_with("tcp:"))
        ep = ep.substr(4);
    else if (ep.find('/') != std::string::npos)
        return connect_unix(ep, timeout);
    std::string host;
    std::string port;
    if (ep.starts_with("[")) {
        auto close_bracket = ep.find(']');
        if (close_bracket == std::string::npos || ep.size() < close_bracket + 3 ||
            ep[close_bracket + 1] != ':')
            fail("gdb: invalid endpoint '{}': expected [address]:port", endpoint);
        host = ep.substr(1, close_bracket - 1);
        port = ep.substr(close_bracket + 2);
    } else {
        auto colon = ep.rfind(':');
        if (colon == std::string::npos || colon + 1 == ep.size())
            fail("gdb: invalid endpoint '{}': expected unix:PATH or HOST:PORT", endpoint);
        host = ep.substr(0, colon);
        port = ep.substr(colon + 1);
    }
    if (host.empty()) host = "localhost";
    return connect_tcp(host, port, timeout);
}

Socket Socket::connect_unix(const std::string& path, Millis timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        fail("gdb: invalid unix socket path '{}'", path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) fail_errno("gdb: socket");
    Socket sock(fd, "unix:" + path);
    int err = finish_connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr,
                             deadline_after(timeout));
    if (err) fail("gdb: cannot connect to unix:{}: {}", path, std::strerror(err));
    return sock;
}

Socket Socket::connect_tcp(const std::string& host, const std::string& port, Millis timeout) {
    Deadline deadline = deadline_after(timeout);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &list); rc != 0)
        fail("gdb: cannot resolve {}:{}: {}", host, port, gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(list, freeaddrinfo);
    int last_err = ECONNREFUSED;
    for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                          ai->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        Socket sock(fd, host + ":" + port);
        last_err = finish_connect(fd, ai->ai_addr, ai->ai_addrlen, deadline);
        if (last_err == 0) {
            // Packets are small request/reply pairs: Nagle would only add latency.
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return sock;
        }
    }
    fail("gdb: cannot connect to {}:{}: {}", host, port, std::strerror(last_err));
}

std::optional<std::size_t> Socket::read_some(std::span<char> buf, Deadline deadline) {
    if (fd_ < 0) fail("gdb: {}: connection is closed", peer_);
    for (;;) {
        ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno == ECONNRESET) return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK) fail_errno("gdb: " + peer_ + ": recv");
        if (!wait_for(fd_, POLLIN, deadline)) return std::nullopt;
    }
}

void Socket::write_all(std::string_view data, Deadline deadline) {
    if (fd_ < 0) fail("gdb: {}: connection is closed", peer_);
    while (!data.empty()) {
        // MSG_NOSIGNAL: a vanished peer is an error to report, not a SIGPIPE to die of.
        ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            fail("gdb: {} closed the connection", peer_);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            fail_errno("gdb: " + peer_ + ": send");
        if (!wait_for(fd_, POLLOUT, deadline)) fail("gdb: {}: timed out sending data", peer_);
    }
}

}  // namespace nitro::gdb
