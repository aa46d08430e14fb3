// SPDX-License-Identifier: MIT
#include <fmt/format.h>

#include <algorithm>

#include "nitro/syscall_table.h"
#include "syscall_data.h"

namespace nitro {
namespace {

const detail::XlatTableData* table_data(FlagTable table) {
    auto i = static_cast<std::size_t>(table);
    return i < kFlagTableCount ? &detail::kXlatTables[i] : nullptr;
}

// Entries sorted by value (enum tables, fields): binary search.
const detail::XlatEntry* find_value(std::span<const detail::XlatEntry> entries,
                                    std::uint64_t value) {
    auto it =
        std::lower_bound(entries.begin(), entries.end(), value,
                         [](const detail::XlatEntry& e, std::uint64_t v) { return e.value < v; });
    return it != entries.end() && it->value == value ? &*it : nullptr;
}

// Appends the name of `value` in a value table, or returns false if it has none.
bool append_value_name(std::string& out, std::span<const detail::XlatEntry> entries,
                       const detail::XlatRange* range, std::int64_t value) {
    if (const auto* e = find_value(entries, static_cast<std::uint64_t>(value))) {
        out += e->name;
        return true;
    }
    if (range != nullptr && value >= range->lo && value <= range->hi) {
        out += range->name;
        if (value > range->lo) {
            out += fmt::format("+{}", value - range->lo);
        }
        return true;
    }
    return false;
}

void append_separator(std::string& out) {
    if (!out.empty()) {
        out += '|';
    }
}

// The name of a field's value; empty for a 0 without a name (no MAP_TYPE, no exit signal).
std::string field_to_string(const detail::XlatTableData& t, std::uint64_t field) {
    std::string out;
    if (!append_value_name(out, t.field_entries, t.field_range, static_cast<std::int64_t>(field)) &&
        field != 0) {
        // Unnamed field values print in the table's base: "0170000" fits a mode better.
        out = t.rest == detail::XlatRest::Octal ? fmt::format("{:#o}", field)
                                                : fmt::format("{:#x}", field);
    }
    return out;
}

std::string flags_to_string(const detail::XlatTableData& t, std::uint64_t value) {
    std::string out;
    std::uint64_t rest = value & ~t.field_mask;
    std::string field = t.field_mask != 0 ? field_to_string(t, value & t.field_mask) : "";
    if (!t.field_last) {
        out = field;
    }
    const detail::XlatEntry* zero_name = nullptr;
    for (const auto& e : t.entries) {
        if (e.value == 0) {
            zero_name = &e;
        } else if ((rest & e.value) == e.value) {
            append_separator(out);
            out += e.name;
            rest &= ~e.value;
        }
    }
    if (t.field_last && !field.empty()) {
        append_separator(out);
        out += field;
    }
    if (t.rest == detail::XlatRest::Octal) {
        // Permission bits always show, as "0644" (and "000" for none), like ls and strace.
        append_separator(out);
        out += fmt::format("{:#03o}", rest);
    } else if (rest != 0) {
        append_separator(out);
        out += fmt::format("{:#x}", rest);
    }
    if (out.empty()) {
        out = zero_name != nullptr ? std::string(zero_name->name) : std::string("0");
    }
    return out;
}

std::string enum_to_string(const detail::XlatTableData& t, std::int64_t value) {
    std::string out;
    if (!append_value_name(out, t.entries, t.range, value)) {
        out = fmt::format("{}", value);
    }
    return out;
}

}  // namespace

std::string_view flag_table_name(FlagTable table) {
    const auto* t = table_data(table);
    return t != nullptr ? t->name : std::string_view();
}

XlatKind flag_table_kind(FlagTable table) {
    const auto* t = table_data(table);
    return t != nullptr ? t->kind : XlatKind::Enum;
}

std::optional<FlagTable> find_flag_table(std::string_view name) {
    for (std::size_t i = 0; i < kFlagTableCount; ++i) {
        if (detail::kXlatTables[i].name == name) {
            return static_cast<FlagTable>(i);
        }
    }
    return std::nullopt;
}

std::string format_flags(FlagTable table, std::uint64_t value) {
    const auto* t = table_data(table);
    if (t == nullptr) {
        return fmt::format("{:#x}", value);
    }
    if (t->kind == XlatKind::Enum) {
        return enum_to_string(*t, static_cast<std::int64_t>(value));
    }
    return flags_to_string(*t, value);
}

std::string format_enum(FlagTable table, std::int64_t value) {
    const auto* t = table_data(table);
    if (t == nullptr) {
        return fmt::format("{}", value);
    }
    if (t->kind == XlatKind::Flags) {
        return flags_to_string(*t, static_cast<std::uint64_t>(value));
    }
    return enum_to_string(*t, value);
}

std::string_view errno_name(int err) {
    const auto& t = detail::kXlatTables[table_id(FlagTable::Errno)];
    const auto* e =
        find_value(t.entries, static_cast<std::uint64_t>(static_cast<std::int64_t>(err)));
    return e != nullptr ? e->name : std::string_view();
}

std::string signal_name(int sig) { return format_enum(FlagTable::Signal, sig); }

}  // namespace nitro
