// SPDX-License-Identifier: MIT
// nitro prepare: makes a libvirt domain traceable (shared file-backed RAM, nitro's plugin on
// QEMU's command line) and, with --undo, restores the definition it had before.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "nitro/error.h"
#include "plugin_path.h"
#include "vm/domain_prepare.h"
#include "vm/libvirt_domain.h"

namespace nitro::cli {

namespace {

// The diff, with the long base64 line of the saved original shortened.
void print_diff(const std::string& before, const std::string& after) {
    std::string d = vm::line_diff(before, after);
    std::string out;
    size_t start = 0;
    while (start < d.size()) {
        size_t nl = d.find('\n', start);
        if (nl == std::string::npos) nl = d.size();
        std::string_view line = std::string_view(d).substr(start, nl - start);
        if (line.size() > 160) {
            out.append(line.substr(0, 150));
            out += fmt::format("... ({} characters)", line.size());
        } else {
            out.append(line);
        }
        out += '\n';
        start = nl + 1;
    }
    std::fputs(out.empty() ? "(no change)\n" : out.c_str(), stdout);
}

// QEMU under libvirt runs as an unprivileged user (Debian: libvirt-qemu): it must be able to
// reach and read the plugin.
void check_plugin_readable_by_others(const std::string& plugin) {
    namespace fs = std::filesystem;
    fs::path p(plugin);
    struct stat st {};
    if (stat(p.c_str(), &st) == 0 && !(st.st_mode & S_IROTH)) {
        std::fprintf(stderr,
                     "nitro: warning: %s is not readable by other users; QEMU under libvirt runs "
                     "as libvirt-qemu and will fail to load it (chmod o+r, or cmake --install)\n",
                     plugin.c_str());
        return;
    }
    for (fs::path d = p.parent_path(); !d.empty() && d != d.root_path(); d = d.parent_path()) {
        if (stat(d.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH)) {
            std::fprintf(stderr,
                         "nitro: warning: directory %s is not searchable by other users; QEMU "
                         "under libvirt runs as libvirt-qemu and cannot load %s (chmod o+x, or "
                         "cmake --install)\n",
                         d.c_str(), plugin.c_str());
            return;
        }
    }
}

bool apparmor_enabled() {
    std::ifstream f("/sys/module/apparmor/parameters/enabled");
    std::string v;
    return f >> v && v == "Y";
}

}  // namespace

CLI::App* add_prepare_command(CLI::App& app, PrepareOptions& o) {
    CLI::App* cmd = app.add_subcommand(
        "prepare",
        "Change a libvirt domain's definition so nitro can trace it (shared file-backed RAM, "
        "nitro's plugin); --undo restores the original");
    cmd->add_option("domain", o.domain, "Name of the libvirt domain")->required();
    cmd->add_option("--connect", o.connect, "libvirt URI")->capture_default_str();
    cmd->add_flag("--undo", o.undo, "Restore the definition the domain had before nitro prepare");
    cmd->footer(
        "nitro prepare edits the persistent definition: it takes effect when the domain next "
        "starts.\nThe original definition is kept in the domain's <metadata> for --undo.\n\n"
        "Examples:\n"
        "  nitro prepare web1 && virsh start web1 && nitro trace --domain web1\n"
        "  nitro prepare web1 --undo\n");
    return cmd;
}

int prepare_command(const PrepareOptions& o) {
    vm::LibvirtConnection conn(o.connect);
    vm::LibvirtDomain dom(conn, o.domain);
    if (!dom.persistent()) {
        fail(
            "domain '{}' is transient; nitro prepare changes persistent definitions ('virsh "
            "define' it first)",
            o.domain);
    }
    std::string before = dom.xml(true);
    bool running = dom.running();
    if (o.undo) {
        auto original = vm::saved_original_xml(before);
        if (!original) fail("domain '{}' is not prepared by nitro: nothing to undo", o.domain);
        dom.define(*original);
        print_diff(before, dom.xml(true));
        std::fprintf(stderr, "nitro: restored the original definition of domain '%s'%s\n",
                     o.domain.c_str(),
                     running ? "; it takes effect when the domain next starts" : "");
        return 0;
    }

    namespace fs = std::filesystem;
    std::string plugin = fs::canonical(find_plugin()).string();
    check_plugin_readable_by_others(plugin);
    vm::PrepareSettings s;
    s.plugin = plugin;
    s.ctl = vm::domain_ctl_path(dom.uuid());
    s.add_acpi = conn.hypervisor_version().first >= 10;
    vm::PreparedXml prepared = vm::prepare_domain_xml(before, s);
    dom.define(prepared.xml);
    print_diff(before, dom.xml(true));
    if (apparmor_enabled()) {
        std::fprintf(stderr,
                     "nitro: AppArmor is on: let QEMU load the plugin and write its control file "
                     "by adding to /etc/apparmor.d/local/abstractions/libvirt-qemu:\n"
                     "  \"%s\" mr,\n  \"/dev/shm/nitro-libvirt-*\" rwk,\n",
                     plugin.c_str());
    }
    std::fprintf(stderr, "nitro: domain '%s' prepared; %s, then: nitro trace --domain %s\n",
                 o.domain.c_str(),
                 running ? "it runs with its old definition until restarted ('virsh shutdown', "
                           "then 'virsh start')"
                         : "start it ('virsh start', or nitro trace --start)",
                 o.domain.c_str());
    return 0;
}

}  // namespace nitro::cli
