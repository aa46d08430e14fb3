// SPDX-License-Identifier: MIT
#pragma once

#include <string>

namespace nitro::cli {

/// Finds nitro's TCG plugin: $NITRO_PLUGIN, else next to the nitro binary (build tree), else
/// in the install prefix (<prefix>/lib/nitro). Throws nitro::Error naming the places tried.
std::string find_plugin();

}  // namespace nitro::cli
