// SPDX-License-Identifier: MIT
// A small client for the QEMU Machine Protocol (JSON lines over a Unix socket).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace nitro::vm {

class QmpClient {
public:
    using Json = nlohmann::json;

    /// Connects, reads the greeting and negotiates capabilities. Retries the connection until
    /// timeout (QEMU creates the socket shortly after it starts). Throws nitro::Error.
    QmpClient(const std::string& socket_path, std::chrono::milliseconds timeout);
    ~QmpClient();
    QmpClient(const QmpClient&) = delete;
    QmpClient& operator=(const QmpClient&) = delete;

    /// Runs a command and returns its "return" value; throws nitro::Error on a QMP error,
    /// on timeout or when QEMU closes the connection.
    Json execute(const std::string& command, const Json& arguments = Json::object(),
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

    /// The next asynchronous event (e.g. SHUTDOWN), waiting at most timeout; nullopt on
    /// timeout. Throws nitro::Error when the connection is closed.
    std::optional<Json> next_event(std::chrono::milliseconds timeout);

    /// The QEMU version reported in the greeting, as {major, minor, micro}.
    const Json& version() const { return version_; }
    /// Process id of the QEMU at the other end of the socket (SO_PEERCRED).
    pid_t peer_pid() const { return peer_pid_; }
    int fd() const { return fd_; }
    bool closed() const { return closed_; }

private:
    std::optional<Json> read_message(std::chrono::milliseconds timeout);
    void send(const Json& message);

    int fd_ = -1;
    pid_t peer_pid_ = 0;
    bool closed_ = false;
    std::string buffer_;
    std::deque<Json> events_;
    Json version_;
    unsigned next_id_ = 1;
};

}  // namespace nitro::vm
