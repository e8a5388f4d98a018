#include "pactq/common/format.h"

namespace pactq::detail {

std::string vformat(fmt::string_view format, fmt::format_args args) {
  return fmt::vformat(format, args);
}

void vprint(std::FILE* file, fmt::string_view format, fmt::format_args args) {
  fmt::vprint(file, format, args);
}

}  // namespace pactq::detail
