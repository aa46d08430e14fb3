// SPDX-License-Identifier: MIT
#include "vm/libvirt_domain.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdlib>
#include <mutex>

#include "nitro/error.h"
#include "nitro/log.h"

namespace nitro::vm {

namespace {

virConnectPtr C(void* p) { return static_cast<virConnectPtr>(p); }
virDomainPtr D(void* p) { return static_cast<virDomainPtr>(p); }

// libvirt prints every error on stderr by default; nitro reports them itself, in one line.
void quiet_errors(void*, virErrorPtr err) {
    if (err && err->message) log::debug("libvirt: {}", err->message);
}

void init_libvirt() {
    static std::once_flag once;
    std::call_once(once, [] {
        virInitialize();
        virSetErrorFunc(nullptr, quiet_errors);
    });
}

int last_error_code() {
    virErrorPtr e = virGetLastError();
    return e ? e->code : VIR_ERR_OK;
}

std::pair<int, int> split_version(unsigned long v) {
    return {static_cast<int>(v / 1000000), static_cast<int>(v / 1000 % 1000)};
}

const char* shutoff_reason(int reason) {
    switch (reason) {
        case VIR_DOMAIN_SHUTOFF_SHUTDOWN:
            return "the guest shut down";
        case VIR_DOMAIN_SHUTOFF_DESTROYED:
            return "destroyed";
        case VIR_DOMAIN_SHUTOFF_CRASHED:
            return "the guest crashed";
        case VIR_DOMAIN_SHUTOFF_FAILED:
            return "QEMU failed";
        case VIR_DOMAIN_SHUTOFF_MIGRATED:
            return "migrated";
        case VIR_DOMAIN_SHUTOFF_SAVED:
            return "saved";
        case VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT:
            return "reverted to a snapshot";
        case VIR_DOMAIN_SHUTOFF_DAEMON:
            return "stopped by libvirtd";
        default:
            return "reason unknown";
    }
}

}  // namespace

std::string libvirt_error() {
    const char* m = virGetLastErrorMessage();
    std::string s = m ? m : "unknown error";
    for (char& c : s) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    return s;
}

LibvirtConnection::LibvirtConnection(const std::string& uri) : uri_(uri) {
    init_libvirt();
    conn_ = virConnectOpen(uri.c_str());
    if (!conn_) {
        std::string why = libvirt_error();
        if (why.find("ermission denied") != std::string::npos ||
            why.find("authentication") != std::string::npos) {
            fail(
                "not allowed to use libvirt at {}: {} (run nitro as root, or as a member of "
                "group libvirt)",
                uri, why);
        }
        fail(
            "cannot connect to libvirt at {}: {} (is libvirtd running? start it with "
            "'systemctl start libvirtd', or 'virtlogd -d; libvirtd -d')",
            uri, why);
    }
}

LibvirtConnection::~LibvirtConnection() {
    if (conn_) virConnectClose(C(conn_));
}

std::pair<int, int> LibvirtConnection::hypervisor_version() const {
    unsigned long v = 0;
    if (virConnectGetVersion(C(conn_), &v) < 0) fail("libvirt: {}", libvirt_error());
    return split_version(v);
}

std::pair<int, int> LibvirtConnection::libvirt_version() const {
    unsigned long v = 0;
    if (virConnectGetLibVersion(C(conn_), &v) < 0) fail("libvirt: {}", libvirt_error());
    return split_version(v);
}

LibvirtDomain::LibvirtDomain(LibvirtConnection& conn, const std::string& name)
    : conn_(conn), name_(name) {
    dom_ = virDomainLookupByName(C(conn.handle()), name.c_str());
    if (!dom_) {
        if (last_error_code() == VIR_ERR_NO_DOMAIN) {
            fail("no libvirt domain '{}' on {} ('virsh -c {} list --all' lists them)", name,
                 conn.uri(), conn.uri());
        }
        fail("cannot look up libvirt domain '{}': {}", name, libvirt_error());
    }
}

LibvirtDomain::~LibvirtDomain() {
    if (dom_) virDomainFree(D(dom_));
}

std::string LibvirtDomain::uuid() const {
    char buf[VIR_UUID_STRING_BUFLEN] = {};
    if (virDomainGetUUIDString(D(dom_), buf) < 0) fail("libvirt: {}", libvirt_error());
    return buf;
}

bool LibvirtDomain::persistent() const { return virDomainIsPersistent(D(dom_)) == 1; }

DomainState LibvirtDomain::state() const {
    int st = 0, reason = 0;
    if (virDomainGetState(D(dom_), &st, &reason, 0) < 0) {
        fail("cannot get the state of domain '{}': {}", name_, libvirt_error());
    }
    DomainState s;
    switch (st) {
        case VIR_DOMAIN_RUNNING:
            s.running = true, s.text = "running";
            break;
        case VIR_DOMAIN_BLOCKED:
            s.running = true, s.text = "blocked";
            break;
        case VIR_DOMAIN_PAUSED:
            s.running = true, s.text = "paused";
            break;
        case VIR_DOMAIN_SHUTDOWN:
            s.running = true, s.text = "shutting down";
            break;
        case VIR_DOMAIN_PMSUSPENDED:
            s.running = true, s.text = "suspended";
            break;
        case VIR_DOMAIN_CRASHED:
            s.running = false, s.text = "crashed";
            break;
        case VIR_DOMAIN_SHUTOFF:
            s.text = std::string("shut off (") + shutoff_reason(reason) + ")";
            s.shut_down = reason == VIR_DOMAIN_SHUTOFF_SHUTDOWN;
            break;
        default:
            s.running = false, s.text = "in an unknown state";
            break;
    }
    return s;
}

std::string LibvirtDomain::xml(bool inactive) const {
    unsigned flags = VIR_DOMAIN_XML_SECURE | (inactive ? VIR_DOMAIN_XML_INACTIVE : 0);
    char* x = virDomainGetXMLDesc(D(dom_), flags);
    if (!x) fail("cannot read the definition of domain '{}': {}", name_, libvirt_error());
    std::string s = x;
    free(x);
    return s;
}

void LibvirtDomain::define(const std::string& xml) {
    virDomainPtr d = virDomainDefineXML(C(conn_.handle()), xml.c_str());
    if (!d) fail("libvirt rejected the new definition of domain '{}': {}", name_, libvirt_error());
    virDomainFree(d);
}

void LibvirtDomain::start(bool paused) {
    if (virDomainCreateWithFlags(D(dom_), paused ? VIR_DOMAIN_START_PAUSED : 0) < 0) {
        fail("cannot start domain '{}': {}", name_, libvirt_error());
    }
}

void LibvirtDomain::resume() {
    if (virDomainResume(D(dom_)) < 0) fail("cannot resume domain '{}': {}", name_, libvirt_error());
}

void LibvirtDomain::destroy() {
    if (virDomainIsActive(D(dom_)) == 1 && virDomainDestroy(D(dom_)) < 0) {
        fail("cannot stop domain '{}': {}", name_, libvirt_error());
    }
}

void LibvirtDomain::undefine() {
    if (virDomainUndefineFlags(D(dom_), VIR_DOMAIN_UNDEFINE_NVRAM) < 0 &&
        virDomainUndefine(D(dom_)) < 0) {
        fail("cannot undefine domain '{}': {}", name_, libvirt_error());
    }
}

QemuMonitor::Json LibvirtDomain::execute(const std::string& command, const Json& arguments) {
    Json msg = {{"execute", command}};
    if (!arguments.empty()) msg["arguments"] = arguments;
    char* result = nullptr;
    if (virDomainQemuMonitorCommand(D(dom_), msg.dump().c_str(), &result, 0) < 0) {
        fail("QMP command {} through libvirt failed for domain '{}': {}", command, name_,
             libvirt_error());
    }
    std::string text = result ? result : "";
    free(result);
    Json reply = Json::parse(text, nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) {
        fail("malformed QMP reply through libvirt: {:.80}", text);
    }
    if (reply.contains("error")) {
        const Json& e = reply["error"];
        fail("QMP command {} failed: {}", command,
             e.is_object() ? e.value("desc", std::string("unknown error")) : "unknown error");
    }
    return reply.contains("return") ? reply["return"] : Json::object();
}

}  // namespace nitro::vm
