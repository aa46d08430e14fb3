// SPDX-License-Identifier: MIT
#include "vm/domain_prepare.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstring>
#include <memory>
#include <string_view>

#include "nitro/error.h"

namespace nitro::vm {

namespace {

constexpr std::string_view kPluginName = "libnitro-tcg";
constexpr size_t kMaxXml = 16 << 20;  // a domain definition is a few KiB; bound what we parse

using Doc = std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)>;

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
std::string_view S(const xmlChar* s) {
    return s ? std::string_view(reinterpret_cast<const char*>(s)) : std::string_view();
}

Doc parse(const std::string& xml) {
    if (xml.size() > kMaxXml) fail("domain definition too large ({} bytes)", xml.size());
    xmlDoc* d = xmlReadMemory(
        xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
        XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!d) fail("cannot parse the domain definition (XML)");
    Doc doc(d, xmlFreeDoc);
    xmlNode* root = xmlDocGetRootElement(d);
    if (!root || S(root->name) != "domain") fail("the definition is not a <domain>");
    return doc;
}

// The root element without the <?xml ...?> declaration, like libvirt's own output.
std::string dump(xmlDoc* doc) {
    xmlNode* root = xmlDocGetRootElement(doc);
    xmlBuffer* b = xmlBufferCreate();
    if (!b) fail("out of memory serialising the domain definition");
    xmlNodeDump(b, doc, root, 0, 1);
    std::string s(reinterpret_cast<const char*>(xmlBufferContent(b)),
                  static_cast<size_t>(xmlBufferLength(b)));
    xmlBufferFree(b);
    return s + "\n";
}

bool in_ns(const xmlNode* n, const char* href) {
    if (!href) return n->ns == nullptr;
    return n->ns && S(n->ns->href) == href;
}

xmlNode* child(xmlNode* parent, const char* name, const char* ns_href = nullptr) {
    for (xmlNode* c = parent->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && S(c->name) == name && in_ns(c, ns_href)) return c;
    }
    return nullptr;
}

xmlNode* ensure_child(xmlNode* parent, const char* name, std::vector<std::string>& changes,
                      const std::string& what) {
    if (xmlNode* c = child(parent, name)) return c;
    changes.push_back(what);
    return xmlNewChild(parent, nullptr, X(name), nullptr);
}

std::string attr(xmlNode* n, const char* name) {
    xmlChar* v = xmlGetProp(n, X(name));
    std::string s(S(v));
    xmlFree(v);
    return s;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
        for (int k = 18; k >= 0; k -= 6) out += kB64[(v >> k) & 63];
    }
    if (i < in.size()) {
        uint32_t v = uint8_t(in[i]) << 16;
        if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    bool pad = false;
    for (char c : in) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad = true;
            continue;
        }
        if (pad) return std::nullopt;  // data after padding
        const char* p = std::strchr(kB64, c);
        if (!p || c == 0) return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(p - kB64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

xmlNode* nitro_metadata(xmlNode* root) {
    xmlNode* md = child(root, "metadata");
    return md ? child(md, "prepared", kNitroMetadataNs) : nullptr;
}

std::optional<std::string> saved_original(xmlNode* root) {
    xmlNode* prepared = nitro_metadata(root);
    if (!prepared) return std::nullopt;
    xmlNode* orig = child(prepared, "original", kNitroMetadataNs);
    if (!orig) return std::nullopt;
    xmlChar* text = xmlNodeGetContent(orig);
    auto decoded = base64_decode(S(text));
    xmlFree(text);
    return decoded;
}

bool is_nitro_plugin_value(std::string_view v) {
    auto comma = v.find(',');
    std::string_view file = v.substr(0, comma);
    auto slash = file.rfind('/');
    std::string_view base = slash == std::string_view::npos ? file : file.substr(slash + 1);
    return base.starts_with(kPluginName);
}

}  // namespace

std::string domain_ctl_path(const std::string& uuid) {
    return "/dev/shm/nitro-libvirt-" + uuid + ".ctl";
}

PreparedXml prepare_domain_xml(const std::string& original, const PrepareSettings& settings) {
    if (settings.plugin.empty() || settings.plugin.front() != '/') {
        fail("the plugin path must be absolute (got '{}')", settings.plugin);
    }
    if (settings.plugin.find(',') != std::string::npos ||
        settings.ctl.find(',') != std::string::npos) {
        fail("the plugin and control file paths must not contain ','");
    }
    Doc doc = parse(original);
    std::string base = original;
    if (auto saved = saved_original(xmlDocGetRootElement(doc.get()))) {
        // Already prepared: redo it from the first original.
        base = *saved;
        doc = parse(base);
    }
    PreparedXml r;
    xmlNode* root = xmlDocGetRootElement(doc.get());

    // Shared, file-backed RAM: nitro maps the file.
    xmlNode* mb = ensure_child(root, "memoryBacking", r.changes, "added <memoryBacking>");
    xmlNode* source = child(mb, "source");
    if (!source) {
        source = xmlNewChild(mb, nullptr, X("source"), nullptr);
        r.changes.push_back("memory backing: source type 'file' (guest RAM in a file)");
    } else if (attr(source, "type") != "file") {
        r.changes.push_back("memory backing: source type '" + attr(source, "type") +
                            "' replaced by 'file'");
    }
    xmlSetProp(source, X("type"), X("file"));
    xmlNode* access = child(mb, "access");
    if (!access) {
        access = xmlNewChild(mb, nullptr, X("access"), nullptr);
        r.changes.push_back("memory backing: access mode 'shared' (nitro maps the RAM file)");
    } else if (attr(access, "mode") != "shared") {
        r.changes.push_back("memory backing: access mode 'shared' instead of '" +
                            attr(access, "mode") + "'");
    }
    xmlSetProp(access, X("mode"), X("shared"));

    if (settings.add_acpi) {
        xmlNode* features = ensure_child(root, "features", r.changes, "added <features>");
        if (!child(features, "acpi")) {
            xmlNewChild(features, nullptr, X("acpi"), nullptr);
            r.changes.push_back(
                "features: <acpi/> (libvirt 9 would pass -no-acpi, which QEMU 10 "
                "rejects)");
        }
    }

    // The plugin on QEMU's command line.
    xmlNs* qns = xmlSearchNsByHref(doc.get(), root, X(kQemuNs));
    if (!qns) qns = xmlNewNs(root, X(kQemuNs), X("qemu"));
    xmlNode* cmdline = nullptr;
    for (xmlNode* c = root->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && S(c->name) == "commandline" && in_ns(c, kQemuNs)) {
            cmdline = c;
        }
    }
    if (!cmdline) cmdline = xmlNewChild(root, qns, X("commandline"), nullptr);
    for (xmlNode* c = cmdline->children; c;) {
        xmlNode* next = c->next;
        if (c->type == XML_ELEMENT_NODE && S(c->name) == "arg" && attr(c, "value") == "-plugin" &&
            next && next->type == XML_ELEMENT_NODE && is_nitro_plugin_value(attr(next, "value"))) {
            xmlNode* after = next->next;
            xmlUnlinkNode(c);
            xmlFreeNode(c);
            xmlUnlinkNode(next);
            xmlFreeNode(next);
            next = after;
        }
        c = next;
    }
    xmlNode* a1 = xmlNewChild(cmdline, qns, X("arg"), nullptr);
    xmlSetProp(a1, X("value"), X("-plugin"));
    xmlNode* a2 = xmlNewChild(cmdline, qns, X("arg"), nullptr);
    std::string value = settings.plugin + ",ctl=" + settings.ctl;
    xmlSetProp(a2, X("value"), X(value.c_str()));
    r.changes.push_back("QEMU command line: -plugin " + value);

    // The original, for --undo.
    xmlNode* md = ensure_child(root, "metadata", r.changes, "added <metadata>");
    xmlNode* prepared = xmlNewChild(md, nullptr, X("prepared"), nullptr);
    xmlNs* nns = xmlNewNs(prepared, X(kNitroMetadataNs), X("nitro"));
    xmlSetNs(prepared, nns);
    std::string enc = base64_encode(base);
    xmlNode* orig = xmlNewChild(prepared, nns, X("original"), X(enc.c_str()));
    xmlSetProp(orig, X("encoding"), X("base64"));
    r.changes.push_back("metadata: the original definition, for 'nitro prepare --undo'");

    r.xml = dump(doc.get());
    return r;
}

std::optional<std::string> saved_original_xml(const std::string& xml) {
    Doc doc = parse(xml);
    return saved_original(xmlDocGetRootElement(doc.get()));
}

std::optional<PluginArgs> plugin_in_xml(const std::string& xml) {
    Doc doc = parse(xml);
    xmlNode* root = xmlDocGetRootElement(doc.get());
    for (xmlNode* c = root->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || S(c->name) != "commandline" || !in_ns(c, kQemuNs)) {
            continue;
        }
        for (xmlNode* a = c->children; a; a = a->next) {
            if (a->type != XML_ELEMENT_NODE || attr(a, "value") != "-plugin") continue;
            xmlNode* v = a->next;
            while (v && v->type != XML_ELEMENT_NODE) v = v->next;
            if (!v) break;
            std::string value = attr(v, "value");
            if (!is_nitro_plugin_value(value)) continue;
            PluginArgs p;
            size_t start = 0;
            bool first = true;
            while (start <= value.size()) {
                size_t comma = value.find(',', start);
                std::string part = value.substr(
                    start, comma == std::string::npos ? std::string::npos : comma - start);
                if (first) {
                    p.plugin = part;
                } else if (part.starts_with("ctl=")) {
                    p.ctl = part.substr(4);
                }
                first = false;
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
            return p;
        }
    }
    return std::nullopt;
}

std::string line_diff(const std::string& a, const std::string& b) {
    auto split = [](const std::string& s) {
        std::vector<std::string_view> lines;
        size_t start = 0;
        while (start < s.size()) {
            size_t nl = s.find('\n', start);
            if (nl == std::string::npos) nl = s.size();
            lines.push_back(std::string_view(s).substr(start, nl - start));
            start = nl + 1;
        }
        return lines;
    };
    auto la = split(a), lb = split(b);
    const size_t n = la.size(), m = lb.size();
    if (n * m > 25'000'000) return "(definitions too large to compare)\n";
    // Longest common subsequence, then a walk that prints changes with one line of context.
    std::vector<std::vector<uint32_t>> l(n + 1, std::vector<uint32_t>(m + 1, 0));
    for (size_t i = n; i-- > 0;) {
        for (size_t j = m; j-- > 0;) {
            l[i][j] = la[i] == lb[j] ? l[i + 1][j + 1] + 1 : std::max(l[i + 1][j], l[i][j + 1]);
        }
    }
    struct Op {
        char kind;
        std::string_view text;
    };
    std::vector<Op> ops;
    size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && la[i] == lb[j]) {
            ops.push_back({' ', la[i]});
            i++;
            j++;
        } else if (i < n && (j == m || l[i + 1][j] >= l[i][j + 1])) {
            ops.push_back({'-', la[i++]});
        } else {
            ops.push_back({'+', lb[j++]});
        }
    }
    std::string out;
    bool gap = false;
    for (size_t k = 0; k < ops.size(); k++) {
        bool near = ops[k].kind != ' ' || (k > 0 && ops[k - 1].kind != ' ') ||
                    (k + 1 < ops.size() && ops[k + 1].kind != ' ');
        if (!near) {
            gap = true;
            continue;
        }
        if (gap && !out.empty()) out += "  ...\n";
        gap = false;
        out += ops[k].kind;
        out += ' ';
        out += ops[k].text;
        out += '\n';
    }
    return out;
}

}  // namespace nitro::vm
