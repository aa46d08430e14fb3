// SPDX-License-Identifier: MIT
#include "listener/gdb/gdb_client.h"

#include <algorithm>
#include <utility>

#include "nitro/error.h"
#include "nitro/log.h"

namespace nitro::gdb {

namespace {

// What GDB assumes when a stub does not give PacketSize.
constexpr std::size_t kDefaultPacketSize = 400;
// Below this no useful request fits; a stub claiming less is broken.
constexpr std::size_t kMinPacketSize = 32;
// Room for "m" or "M", two 64-bit hex numbers, separators and framing.
constexpr std::size_t kReadOverhead = 8;
constexpr std::size_t kWriteOverhead = 40;
constexpr std::size_t kMaxThreads = 65536;

// "Exx" or "E.text": an error reply. Three characters cannot be hex data (always even).
bool is_error_reply(std::string_view r) {
    return (r.size() == 3 && r[0] == 'E' && hex_digit(r[1]) >= 0 && hex_digit(r[2]) >= 0) ||
           r.starts_with("E.");
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    while (true) {
        auto at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) break;
        s.remove_prefix(at + 1);
    }
    return out;
}

}  // namespace

std::unique_ptr<GdbClient> GdbClient::connect(std::string_view endpoint, ClientOptions options) {
    auto client = std::make_unique<GdbClient>(Socket::connect(endpoint, options.timeout), options);
    client->handshake();
    return client;
}

GdbClient::GdbClient(Socket socket, ClientOptions options)
    : channel_(std::move(socket),
               ChannelOptions{options.timeout, options.max_packet, options.max_retries}),
      options_(options),
      map_(std::make_shared<const RegisterMap>(RegisterMap::x86_64_fallback())) {}

void GdbClient::require_stopped(std::string_view what) const {
    // In all-stop mode any byte but the interrupt would stop QEMU behind our back.
    if (running_) fail("gdb: cannot {} while the target runs; interrupt it first", what);
}

std::string GdbClient::checked(std::string_view packet, std::string_view what) {
    std::string reply = channel_.request(packet);
    if (is_error_reply(reply)) fail("gdb: {} failed: {} replied {}", what, channel_.peer(), reply);
    return reply;
}

void GdbClient::expect_ok(std::string_view packet, std::string_view what) {
    std::string reply = checked(packet, what);
    if (reply.empty()) fail("gdb: {} is not supported by {}", what, channel_.peer());
    if (reply != "OK") fail("gdb: {}: unexpected reply '{}'", what, describe(reply));
}

std::size_t GdbClient::packet_size() const {
    if (features_.packet_size == 0) return kDefaultPacketSize;
    return std::min(features_.packet_size, options_.max_packet);
}

void GdbClient::parse_supported(std::string_view reply) {
    features_ = StubFeatures{};
    for (std::string_view item : split(reply, ';')) {
        if (item.empty()) continue;
        std::string name;
        std::string value;
        if (auto eq = item.find('='); eq != std::string_view::npos) {
            name = item.substr(0, eq);
            value = item.substr(eq + 1);
        } else if (item.back() == '+' || item.back() == '-' || item.back() == '?') {
            name = item.substr(0, item.size() - 1);
            value = item.substr(item.size() - 1);
        } else {
            fail("gdb: malformed qSupported reply item '{}'", describe(item));
        }
        features_.all[name] = value;
    }
    auto on = [&](const char* name) {
        auto it = features_.all.find(name);
        return it != features_.all.end() && it->second == "+";
    };
    if (auto it = features_.all.find("PacketSize"); it != features_.all.end()) {
        auto size = parse_hex(it->second);
        if (!size || *size < kMinPacketSize)
            fail("gdb: {} announced an unusable PacketSize '{}'", channel_.peer(),
                 describe(it->second));
        features_.packet_size =
            static_cast<std::size_t>(std::min<std::uint64_t>(*size, options_.max_packet));
    }
    features_.xfer_features = on("qXfer:features:read");
    features_.no_ack_mode = on("QStartNoAckMode");
    features_.multiprocess = on("multiprocess");
    features_.vcont_supported = on("vContSupported");
    features_.swbreak = on("swbreak");
    features_.hwbreak = on("hwbreak");
}

void GdbClient::handshake() {
    require_stopped("handshake");
    std::string reply =
        checked("qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386",
                "qSupported");
    parse_supported(reply);

    if (options_.no_ack && features_.no_ack_mode) {
        // The reply to QStartNoAckMode is still acknowledged; only then do both sides stop.
        if (channel_.request("QStartNoAckMode") == "OK") channel_.set_ack_mode(false);
    }

    std::string vcont = channel_.request("vCont?");
    if (vcont.starts_with("vCont")) {
        for (std::string_view action : split(vcont, ';')) {
            if (action == "c") features_.vcont_continue = true;
            if (action == "s") features_.vcont_step = true;
        }
    }

    if (features_.xfer_features) {
        map_ = std::make_shared<const RegisterMap>(RegisterMap::from_target_xml(
            [this](const std::string& annex) { return read_feature_file(annex); }));
    } else {
        log::info("gdb: {} offers no target description; assuming QEMU's x86-64 registers",
                  channel_.peer());
        map_ = std::make_shared<const RegisterMap>(RegisterMap::x86_64_fallback());
    }
    log::debug("gdb: {} registers, 'g' size {}, packet size {}", map_->registers().size(),
               map_->g_size(), packet_size());
}

std::string GdbClient::read_feature_file(const std::string& annex) {
    require_stopped("read the target description");
    if (annex.empty() || annex.find_first_of("$#}*:,;") != std::string::npos)
        fail("gdb: invalid target description file name '{}'", describe(annex));
    std::size_t chunk = packet_size() - 5;
    std::string out;
    for (;;) {
        std::string reply = channel_.request(
            fmt::format("qXfer:features:read:{}:{:x},{:x}", annex, out.size(), chunk));
        if (reply.empty()) fail("gdb: {} does not support qXfer:features:read", channel_.peer());
        if (is_error_reply(reply))
            fail("gdb: cannot read target description '{}': {} replied {}", annex, channel_.peer(),
                 reply);
        char kind = reply[0];
        if (kind != 'm' && kind != 'l')
            fail("gdb: malformed qXfer reply for '{}': '{}'", annex, describe(reply));
        std::string data = unescape_binary(std::string_view(reply).substr(1));
        if (out.size() + data.size() > options_.max_packet)
            fail("gdb: target description '{}' exceeds {} bytes", annex, options_.max_packet);
        out += data;
        if (kind == 'l') break;
        // 'm' with no data would make us ask for the same offset forever.
        if (data.empty())
            fail("gdb: {} sent an empty qXfer chunk for '{}'", channel_.peer(), annex);
    }
    return out;
}

RegisterFile GdbClient::read_registers() {
    require_stopped("read registers");
    std::string reply = checked("g", "reading registers");
    if (reply.empty() || reply.size() % 2)
        fail("gdb: malformed 'g' reply of {} characters", reply.size());
    std::size_t n = reply.size() / 2;
    std::vector<std::uint8_t> bytes(n, 0);
    std::vector<bool> known(n, false);
    for (std::size_t i = 0; i < n; ++i) {
        char hi = reply[2 * i];
        char lo = reply[2 * i + 1];
        if (hi == 'x' && lo == 'x') continue;  // unavailable
        int h = hex_digit(hi);
        int l = hex_digit(lo);
        if (h < 0 || l < 0) fail("gdb: malformed 'g' reply: non-hex data at byte {}", i);
        bytes[i] = static_cast<std::uint8_t>(h << 4 | l);
        known[i] = true;
    }
    if (n < map_->g_size())
        log::debug("gdb: 'g' reply has {} of {} bytes; the rest need 'p'", n, map_->g_size());
    return RegisterFile(map_, std::move(bytes), std::move(known));
}

std::vector<std::uint8_t> GdbClient::read_register_bytes(const RegisterInfo& reg) {
    require_stopped("read registers");
    if (!p_unsupported_) {
        std::string reply =
            checked(fmt::format("p{:x}", reg.regnum), "reading register " + reg.name);
        if (reply.empty()) {
            p_unsupported_ = true;
        } else {
            if (std::all_of(reply.begin(), reply.end(), [](char c) { return c == 'x'; }))
                fail("gdb: register '{}' is unavailable", reg.name);
            auto bytes = hex_decode(reply);
            if (!bytes)
                fail("gdb: malformed value for register '{}': '{}'", reg.name, describe(reply));
            if (bytes->size() != reg.size())
                fail("gdb: {} sent {} bytes for register '{}', which has {}", channel_.peer(),
                     bytes->size(), reg.name, reg.size());
            return std::move(*bytes);
        }
    }
    RegisterFile all = read_registers();
    auto raw = all.raw(reg.name);
    return {raw.begin(), raw.end()};
}

std::uint64_t GdbClient::read_register(std::string_view name) {
    const RegisterInfo& reg = map_->at(name);
    if (reg.size() > 8)
        fail("gdb: register '{}' is {} bits wide; use read_register_bytes()", name, reg.bitsize);
    return le_to_u64(read_register_bytes(reg));
}

void GdbClient::write_register(std::string_view name, std::uint64_t value) {
    require_stopped("write registers");
    const RegisterInfo& reg = map_->at(name);
    if (reg.size() > 8) fail("gdb: register '{}' is {} bits wide", name, reg.bitsize);
    expect_ok(fmt::format("P{:x}={}", reg.regnum, hex_encode(u64_to_le(value, reg.size()))),
              fmt::format("writing register {}", name));
}

std::vector<std::uint8_t> GdbClient::read_memory(std::uint64_t address, std::size_t length) {
    require_stopped("read memory");
    std::size_t chunk = std::max<std::size_t>(1, (packet_size() - kReadOverhead) / 2);
    std::vector<std::uint8_t> out;
    out.reserve(length);
    while (out.size() < length) {
        std::size_t want = std::min(chunk, length - out.size());
        std::uint64_t at = address + out.size();
        std::string reply = channel_.request(fmt::format("m{:x},{:x}", at, want));
        if (reply.empty() || is_error_reply(reply))
            fail("gdb: cannot read {} bytes at {:#x}: {} replied '{}'", want, at, channel_.peer(),
                 describe(reply));
        auto bytes = hex_decode(reply);
        if (!bytes) fail("gdb: malformed memory data at {:#x}: '{}'", at, describe(reply));
        // Fewer bytes than asked is allowed (the rest is unreadable); more is not.
        if (bytes->size() > want)
            fail("gdb: {} sent {} bytes at {:#x} when asked for {}", channel_.peer(), bytes->size(),
                 at, want);
        out.insert(out.end(), bytes->begin(), bytes->end());
    }
    return out;
}

std::size_t GdbClient::read_memory_some(std::uint64_t address, std::span<std::uint8_t> out) {
    require_stopped("read memory");
    std::size_t chunk = std::max<std::size_t>(1, (packet_size() - kReadOverhead) / 2);
    std::size_t done = 0;
    while (done < out.size()) {
        std::uint64_t at = address + done;
        // Never ask across a page: a stub may fail the whole request for one bad page.
        std::size_t page_left = 0x1000 - static_cast<std::size_t>(at & 0xfff);
        std::size_t want = std::min({chunk, out.size() - done, page_left});
        std::string reply = channel_.request(fmt::format("m{:x},{:x}", at, want));
        if (reply.empty() || is_error_reply(reply)) break;
        std::size_t n = reply.size() / 2;
        if (reply.size() % 2 || n > want)
            fail("gdb: {} sent a malformed or oversized reply to m{:x},{:x}: '{}'", channel_.peer(),
                 at, want, describe(reply));
        for (std::size_t i = 0; i < n; ++i) {
            int h = hex_digit(reply[2 * i]);
            int l = hex_digit(reply[2 * i + 1]);
            if (h < 0 || l < 0) fail("gdb: malformed memory data at {:#x}: '{}'", at, describe(reply));
            out[done + i] = static_cast<std::uint8_t>(h << 4 | l);
        }
        done += n;
        if (n < want) break;  // the rest is unreadable
    }
    return done;
}

void GdbClient::write_memory(std::uint64_t address, std::span<const std::uint8_t> data) {
    require_stopped("write memory");
    std::size_t chunk = std::max<std::size_t>(1, (packet_size() - kWriteOverhead) / 2);
    for (std::size_t done = 0; done < data.size();) {
        std::size_t n = std::min(chunk, data.size() - done);
        std::uint64_t at = address + done;
        expect_ok(fmt::format("M{:x},{:x}:{}", at, n, hex_encode(data.subspan(done, n))),
                  fmt::format("writing {} bytes at {:#x}", n, at));
        done += n;
    }
}

void GdbClient::insert_breakpoint(BreakpointType type, std::uint64_t address, int kind) {
    require_stopped("set breakpoints");
    expect_ok(
        fmt::format("Z{},{:x},{:x}", static_cast<int>(type), address, kind),
        fmt::format("setting a type {} breakpoint at {:#x}", static_cast<int>(type), address));
}

void GdbClient::remove_breakpoint(BreakpointType type, std::uint64_t address, int kind) {
    require_stopped("remove breakpoints");
    expect_ok(
        fmt::format("z{},{:x},{:x}", static_cast<int>(type), address, kind),
        fmt::format("removing a type {} breakpoint at {:#x}", static_cast<int>(type), address));
}

std::vector<ThreadId> GdbClient::threads() {
    require_stopped("list threads");
    std::vector<ThreadId> out;
    std::string reply = checked("qfThreadInfo", "listing threads");
    while (!reply.empty() && reply != "l") {
        if (reply[0] != 'm') fail("gdb: malformed thread list '{}'", describe(reply));
        for (std::string_view id : split(std::string_view(reply).substr(1), ',')) {
            out.push_back(ThreadId::parse(id));
            if (out.size() > kMaxThreads)
                fail("gdb: {} lists more than {} threads", channel_.peer(), kMaxThreads);
        }
        reply = checked("qsThreadInfo", "listing threads");
    }
    return out;
}

void GdbClient::select_thread(ThreadId thread, char op) {
    require_stopped("select a thread");
    expect_ok(fmt::format("H{}{}", op, thread.to_string()),
              fmt::format("selecting thread {}", thread.to_string()));
}

StopReply GdbClient::query_stop() {
    require_stopped("query the stop reason");
    return StopReply::parse(checked("?", "querying the stop reason"));
}

void GdbClient::resume() {
    require_stopped("resume");
    channel_.send(features_.vcont_continue ? "vCont;c" : "c");
    running_ = true;
}

void GdbClient::resume_thread(ThreadId thread) {
    require_stopped("resume");
    if (!features_.vcont_continue)
        fail("gdb: {} cannot resume a single thread (no vCont;c)", channel_.peer());
    channel_.send("vCont;c:" + thread.to_string());
    running_ = true;
}

void GdbClient::resume_step(std::optional<ThreadId> thread) {
    require_stopped("step");
    if (features_.vcont_step) {
        channel_.send(thread ? "vCont;s:" + thread->to_string() : std::string("vCont;s"));
    } else {
        if (thread) select_thread(*thread, 'c');
        channel_.send("s");
    }
    running_ = true;
}

StopReply GdbClient::step(std::optional<ThreadId> thread) {
    resume_step(thread);
    auto stop = wait_for_stop(options_.timeout);
    if (!stop) fail("gdb: no stop reply within {} ms of a single step", options_.timeout.count());
    return std::move(*stop);
}

std::optional<StopReply> GdbClient::wait_for_stop(Millis timeout) {
    if (!running_) fail("gdb: waiting for a stop, but the target was not resumed");
    Deadline deadline = deadline_after(timeout);
    for (;;) {
        auto packet = channel_.receive_until(deadline);
        if (!packet) return std::nullopt;
        if (packet->starts_with('O') && *packet != "OK") {
            auto text = hex_decode(std::string_view(*packet).substr(1));
            if (!text) fail("gdb: malformed console output packet '{}'", describe(*packet));
            log::info("gdb: target console: {}",
                      describe(std::string_view(reinterpret_cast<const char*>(text->data()),
                                                text->size())));
            continue;
        }
        if (!looks_like_stop_reply(*packet))
            fail("gdb: unexpected packet '{}' while waiting for a stop", describe(*packet));
        StopReply stop = StopReply::parse(*packet);
        running_ = false;
        return stop;
    }
}

void GdbClient::interrupt() {
    if (!running_) fail("gdb: cannot interrupt: the target is not running");
    channel_.send_interrupt();
}

void GdbClient::detach() {
    require_stopped("detach");
    if (features_.multiprocess) {
        // With multiprocess the stub wants to know which process; QEMU refuses a bare 'D'.
        std::optional<std::int64_t> pid;
        for (const ThreadId& t : threads())
            if (t.pid && *t.pid > 0) {
                pid = t.pid;
                break;
            }
        expect_ok(pid ? fmt::format("D;{:x}", *pid) : std::string("D"), "detaching");
    } else {
        expect_ok("D", "detaching");
    }
    channel_.close();
}

void GdbClient::kill() {
    // The stub may exit before acknowledging; the connection is over either way.
    try {
        channel_.send("k");
    } catch (const Error& e) {
        log::debug("gdb: after kill: {}", e.what());
    }
    running_ = false;
    channel_.close();
}

std::string GdbClient::request(std::string_view packet) {
    require_stopped("send requests");
    return channel_.request(packet);
}

}  // namespace nitro::gdb
