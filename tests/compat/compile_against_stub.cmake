# ctest compat_allocator_torch_2x: compiles allocator_2x_check.cpp (common/
# torch_compat.h and train/counting_allocator.h) with -fsyntax-only against the
# LibTorch 2.x stub in stub_torch_2x/, then checks that no LibTorch header from
# outside the stub was read (Debian's 1.13 headers are in /usr/include, where a
# missing stub would silently fall through to them).
# Arguments: CXX SOURCE_DIR.
set(stub "${SOURCE_DIR}/tests/compat/stub_torch_2x")
set(flags -std=c++17 -Wall -Wextra -DPACTQ_EXPECT_TORCH_2X_STUB
  -I${stub} -I${SOURCE_DIR}/src)
set(source "${SOURCE_DIR}/tests/compat/allocator_2x_check.cpp")

execute_process(COMMAND "${CXX}" ${flags} -fsyntax-only "${source}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "does not compile against the LibTorch 2.x stub:\n${out}\n${err}")
endif()
if(err)
  message(WARNING "${err}")
endif()

execute_process(COMMAND "${CXX}" ${flags} -M "${source}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE deps ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "dependency listing failed:\n${err}")
endif()
string(REPLACE "\\\n" " " deps "${deps}")
string(REGEX REPLACE "[ \t\r\n]+" ";" deps "${deps}")
foreach(dep IN LISTS deps)
  if(dep MATCHES "/(ATen|c10|torch|caffe2)/" AND NOT dep MATCHES "^${stub}/")
    message(FATAL_ERROR "read a LibTorch header outside the stub: ${dep}\n"
      "(add what it needs to tests/compat/stub_torch_2x, as PyTorch 2.x declares it)")
  endif()
endforeach()
message(STATUS "compiles against the LibTorch 2.x stub")
