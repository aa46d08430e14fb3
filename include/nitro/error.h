// SPDX-License-Identifier: MIT
/// @file
/// Errors: exceptions at set-up time, a small Result type on hot paths.
#pragma once

#include <fmt/format.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace nitro {

/// A failure the user can act on; what() is one line that says what to do.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;

    template <typename... Args>
    static Error format(fmt::format_string<Args...> f, Args&&... args) {
        return Error(fmt::format(f, std::forward<Args>(args)...));
    }
};

/// Throws nitro::Error with a formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
    throw Error(fmt::format(f, std::forward<Args>(args)...));
}

/// Throws nitro::Error with the message and strerror(errno).
[[noreturn]] void fail_errno(const std::string& what);

/// Reports a broken internal invariant and aborts.
[[noreturn]] void assert_failed(const char* expr, const char* file, int line);

/// Result of an operation that may fail on a hot path (no exceptions).
template <typename T, typename E = std::string>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
    static Result error(E e) { return Result(std::in_place_index<1>, std::move(e)); }

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const E& error() const { return std::get<1>(v_); }
    T value_or(T other) const { return ok() ? value() : std::move(other); }

private:
    template <std::size_t I, typename U>
    Result(std::in_place_index_t<I> i, U&& u) : v_(i, std::forward<U>(u)) {}
    std::variant<T, E> v_;
};

}  // namespace nitro

#define NITRO_ASSERT(expr) \
    ((expr) ? static_cast<void>(0) : ::nitro::assert_failed(#expr, __FILE__, __LINE__))
