// Atomic file replacement: write to a temporary file in the same directory,
// fsync it, then rename over the target. A reader (or a run killed at any
// moment) sees either the old complete file or the new complete file.
// Header-only and free of LibTorch, so the runtime can use it too.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

namespace pactq {

// Removes `path`.tmp.<pid> files whose process no longer exists: what a
// writer killed with SIGKILL (no unwinding) leaves behind. A temp of a live
// process (another writer right now) is kept.
inline void remove_stale_temps(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string prefix = target.filename().string() + ".tmp.";
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || pid <= 0) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
  }
}

// Calls write_to(temp_path) to produce the content, then publishes it at path.
inline void replace_file_atomically(const std::string& path,
                                    const std::function<void(const std::string&)>& write_to) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  remove_stale_temps(path);
  try {
    write_to(temp);
  } catch (...) {
    std::remove(temp.c_str());
    throw;
  }
  const int fd = ::open(temp.c_str(), O_RDONLY);
  if (fd < 0) {
    throw std::runtime_error(path + ": cannot reopen temporary file " + temp + ": " +
                             std::strerror(errno));
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temp.c_str());
    throw std::runtime_error(path + ": cannot write file: " + reason);
  }
  // Make the rename itself durable.
  const auto slash = path.find_last_of('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

inline void write_bytes_atomically(const std::string& path, const void* data, size_t size) {
  replace_file_atomically(path, [&](const std::string& temp) {
    FILE* f = std::fopen(temp.c_str(), "wb");
    if (f == nullptr) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
    const bool ok = std::fwrite(data, 1, size, f) == size;
    if (std::fclose(f) != 0 || !ok)
      throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
  });
}

}  // namespace pactq
