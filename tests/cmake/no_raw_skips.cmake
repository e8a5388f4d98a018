# Every test skip goes through tests/skip.h (PACTQ_SKIP_HARDWARE for what a
# machine lacks, PACTQ_SKIP_MISSING for what setup provides, which fails in
# CI): a raw GTEST_SKIP would let CI pass by skipping. Run with -DSOURCE_DIR=.
file(GLOB_RECURSE sources ${SOURCE_DIR}/tests/*.cpp ${SOURCE_DIR}/tests/*.h)
set(found "")
foreach(f IN LISTS sources)
  if(f MATCHES "/tests/skip\\.h$")
    continue()
  endif()
  file(STRINGS ${f} lines REGEX "GTEST_SKIP")
  if(lines)
    list(APPEND found ${f})
  endif()
endforeach()
if(found)
  list(JOIN found ", " names)
  message(FATAL_ERROR "GTEST_SKIP outside tests/skip.h in ${names}: use PACTQ_SKIP_HARDWARE "
    "(a CPU feature or GPU this machine lacks) or PACTQ_SKIP_MISSING (data or tools scripts/setup "
    "provides; a failure under PACTQ_STRICT_SKIPS=1)")
endif()
