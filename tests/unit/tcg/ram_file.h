// SPDX-License-Identifier: MIT
// Guest RAM for the plugin's tests and benchmark on the fake QEMU: a file this process maps, as QEMU maps
// its memory backend (the plugin only reads a file its QEMU maps), laid out as guest-physical
// memory below 4 GiB. Sparse: only the pages a test writes take memory.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nitro::tcg {

class RamFile {
public:
    explicit RamFile(size_t size) : size_(size), path_("/dev/shm/nitro-test-ram-" + std::to_string(getpid())) {
        fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(size_)) != 0) throw std::runtime_error("RamFile: " + path_);
        void* m = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (m == MAP_FAILED) throw std::runtime_error("RamFile: mmap " + path_);
        bytes_ = static_cast<char*>(m);
    }
    ~RamFile() {
        munmap(bytes_, size_);
        close(fd_);
        unlink(path_.c_str());
    }
    RamFile(const RamFile&) = delete;
    RamFile& operator=(const RamFile&) = delete;
    void put(uint64_t phys, const std::string& b) { std::memcpy(bytes_ + phys, b.data(), b.size()); }
    const std::string& path() const { return path_; }
    size_t size() const { return size_; }

private:
    size_t size_;
    std::string path_;
    int fd_ = -1;
    char* bytes_ = nullptr;
};

}  // namespace nitro::tcg
