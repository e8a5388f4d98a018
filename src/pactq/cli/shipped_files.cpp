#include "pactq/cli/shipped_files.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace pactq::cli {

namespace fs = std::filesystem;

std::vector<std::string> shipped_file_candidates(const std::string& relative) {
  std::vector<std::string> out;
  if (const char* dir = std::getenv("PACTQ_DATA_DIR"); dir != nullptr && *dir != '\0') {
    out.push_back((fs::path(dir) / relative).string());
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back((exe.parent_path() / ".." / "share" / "pactq" / relative).string());
#ifdef PACTQ_SOURCE_DIR
  out.push_back((fs::path(PACTQ_SOURCE_DIR) / relative).string());
#endif
  if (!ec) out.push_back((exe.parent_path() / ".." / relative).string());
  out.push_back(relative);
  return out;
}

std::string find_shipped_file(const std::string& relative, bool directory) {
  for (const std::string& c : shipped_file_candidates(relative)) {
    std::error_code ec;
    const bool found = directory ? fs::is_directory(c, ec) : fs::is_regular_file(c, ec);
    if (found) return fs::weakly_canonical(c, ec).string();
  }
  return {};
}

std::string shipped_file_search_note(const std::string& relative) {
  std::string s = relative + " not found in";
  const auto candidates = shipped_file_candidates(relative);
  for (size_t i = 0; i < candidates.size(); ++i) s += (i ? ", " : " ") + candidates[i];
  return s + " (set PACTQ_DATA_DIR to the folder that holds it)";
}

}  // namespace pactq::cli
