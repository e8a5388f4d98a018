# ctest compat_fmt_header_only: fmt stays header-only (CMakeLists.txt, at
# fmt::fmt-header-only). The pip LibTorch puts its own fmt (11+) headers ahead
# of Debian's on the include path; a binary that also links Debian's libfmt.so.9
# then has undefined symbols. Checks that no built binary needs a libfmt, and
# that the sources format through pactq::format / pactq::print (common/format.h:
# header-only fmt::format in every file costs ~3.5 s of CPU each to compile).
# Arguments: READELF SOURCE_DIR BINARIES (a ;-list).
foreach(binary IN LISTS BINARIES)
  execute_process(COMMAND "${READELF}" -d "${binary}" RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf -d ${binary} failed: ${err}")
  endif()
  if(out MATCHES "NEEDED[^\n]*(libfmt[^]\n]*)")
    message(FATAL_ERROR "${binary} needs ${CMAKE_MATCH_1}: link fmt::fmt-header-only, not fmt::fmt")
  endif()
endforeach()

file(GLOB_RECURSE sources "${SOURCE_DIR}/src/*.cpp" "${SOURCE_DIR}/src/*.h"
  "${SOURCE_DIR}/tests/*.cpp" "${SOURCE_DIR}/tests/*.h" "${SOURCE_DIR}/bench/*.cpp")
foreach(source IN LISTS sources)
  if(source MATCHES "/common/format\\.(h|cpp)$")
    continue()
  endif()
  file(STRINGS "${source}" hits REGEX "fmt::(format|print)\\(")
  if(hits)
    list(GET hits 0 first)
    message(FATAL_ERROR "${source} calls fmt directly (use pactq::format / pactq::print from "
      "pactq/common/format.h):\n${first}")
  endif()
endforeach()
message(STATUS "fmt header-only, formatting through pactq::format")
