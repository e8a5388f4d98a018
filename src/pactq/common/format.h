// pactq::format and pactq::print: fmt::format and fmt::print, with the
// formatting itself compiled once (format.cpp) instead of in every file.
//
// fmt is header-only here (CMakeLists.txt: the pip LibTorch's fmt headers come
// ahead of Debian's, so linking Debian's libfmt is not an option), and a
// header-only fmt::format compiles fmt's whole formatting engine into every
// file that calls it (about 3.5 s of CPU per file). These wrappers only pack
// the arguments (fmt::make_format_args) and call one out-of-line function; the
// format string is still checked at compile time (fmt::format_string).
// Written to the fmt API that fmt 9 and fmt 11 share.
#pragma once
#include <fmt/format.h>

#include <cstdio>
#include <string>

namespace pactq {

namespace detail {
std::string vformat(fmt::string_view format, fmt::format_args args);
void vprint(std::FILE* file, fmt::string_view format, fmt::format_args args);
}  // namespace detail

template <class... T>
std::string format(fmt::format_string<T...> format_string, T&&... args) {
  return detail::vformat(format_string, fmt::make_format_args(args...));
}

template <class... T>
void print(std::FILE* file, fmt::format_string<T...> format_string, T&&... args) {
  detail::vprint(file, format_string, fmt::make_format_args(args...));
}

template <class... T>
void print(fmt::format_string<T...> format_string, T&&... args) {
  detail::vprint(stdout, format_string, fmt::make_format_args(args...));
}

}  // namespace pactq
