// SPDX-License-Identifier: MIT
// A connected stream socket (Unix or TCP) whose every operation has a deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace nitro::gdb {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
using Millis = std::chrono::milliseconds;

inline Deadline deadline_after(Millis timeout) { return Clock::now() + timeout; }

class Socket {
  public:
    Socket() = default;
    /// Takes ownership of a connected stream socket and makes it non-blocking.
    explicit Socket(int fd, std::string peer = "socket");
    ~Socket();
    Socket(Socket&& other) noexcept;
    Socket& operator=(Socket&& other) noexcept;
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    /// "unix:/path", "/path" (a path with a '/'), "tcp:host:port", "host:port" or "[v6]:port".
    static Socket connect(std::string_view endpoint, Millis timeout);
    static Socket connect_unix(const std::string& path, Millis timeout);
    static Socket connect_tcp(const std::string& host, const std::string& port, Millis timeout);

    /// Reads what is available, waiting until the deadline. Returns nullopt on timeout and 0 when
    /// the peer closed the connection; throws nitro::Error on other failures.
    std::optional<std::size_t> read_some(std::span<char> buf, Deadline deadline);
    /// Writes everything or throws nitro::Error (timeout, peer gone).
    void write_all(std::string_view data, Deadline deadline);

    bool is_open() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    const std::string& peer() const { return peer_; }
    void close();

  private:
    int fd_ = -1;
    std::string peer_;
};

}  // namespace nitro::gdb
