// SPDX-License-Identifier: MIT
// Which processes nitro trace reports: --pid, --process, and with --follow the processes they
// create, their children's children and so on (as strace -f follows a program's children).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>

#include "nitro/syscall.h"

namespace nitro::cli {

class ProcessFilter {
  public:
    /// pid 0 and an empty name: every process. follow: also the descendants of the selected
    /// processes, whatever they are named or become (execve).
    ProcessFilter(std::int64_t pid, std::string name, bool follow);

    /// Whether anything is filtered.
    bool active() const { return pid_ != 0 || !name_.empty(); }

    /// Whether sc is reported; with follow, it also learns the processes sc's process creates.
    /// A process is followed from its first event whose parent is followed (a new process's
    /// first event is its return from the creating call, while its creator lives), or from its
    /// creator's return with its pid (a clone with CLONE_PARENT has another parent). A followed
    /// process that calls exit_group is forgotten (its pid may be given to an unrelated process
    /// later); its descendants stay followed.
    bool wanted(const Syscall& sc);

    /// The processes followed now (with follow): the selected ones seen and their living
    /// descendants.
    const std::unordered_set<std::int64_t>& followed() const { return followed_; }
    /// How many processes were followed in all, those that ended included.
    std::size_t processes_followed() const { return added_; }

  private:
    bool selected(const Process& p) const;
    void follow(std::int64_t pid) { added_ += followed_.insert(pid).second ? 1 : 0; }

    std::int64_t pid_;
    std::string name_;
    bool follow_;
    std::unordered_set<std::int64_t> followed_;
    std::size_t added_ = 0;
};

}  // namespace nitro::cli
