# ctest install_and_build_example: installs this build into a clean prefix,
# builds examples/classify against the installed package (find_package(pactq
# COMPONENTS runtime): the source tree is not visible to it) and runs it on a
# demo .pqm, linked to the static runtime and to the shared C library.
# Arguments: BUILD_DIR SOURCE_DIR WORK_DIR WRITE_DEMO GENERATOR.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(RUN_DIR "${WORK_DIR}")
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
# The shared C library with its SONAME link chain (the .so.X.Y name is the SONAME).
file(GLOB shared_c "${WORK_DIR}/prefix/lib*/libpactq_c.so*")
list(LENGTH shared_c shared_c_count)
if(NOT shared_c_count EQUAL 3)
  message(FATAL_ERROR "expected libpactq_c.so, .so.X.Y and .so.X.Y.Z installed, got: ${shared_c}")
endif()
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/examples/classify" -B "${WORK_DIR}/example"
  -G "${GENERATOR}" -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${WORK_DIR}/example")
run("${WRITE_DEMO}" "${WORK_DIR}/demo.pqm")
run("${WORK_DIR}/example/classify" "${WORK_DIR}/demo.pqm")
if(NOT last_output MATCHES "grey: class [0-9]+ \\(c[0-9]\\) logit")
  message(FATAL_ERROR "unexpected classify output: ${last_output}")
endif()
set(static_output "${last_output}")
run("${WORK_DIR}/example/classify_shared" "${WORK_DIR}/demo.pqm")
if(NOT last_output STREQUAL static_output)
  message(FATAL_ERROR "classify_shared (libpactq_c.so) printed ${last_output}, classify ${static_output}")
endif()
# A bad model file: one clear line, non-zero exit.
file(WRITE "${WORK_DIR}/bad.pqm" "not a model")
execute_process(COMMAND "${WORK_DIR}/example/classify" "${WORK_DIR}/bad.pqm"
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "bad.pqm")
  message(FATAL_ERROR "a bad model must fail with a message naming it: rc ${rc}, ${err}")
endif()
message(STATUS "classify: ${last_output}")
file(REMOVE_RECURSE "${WORK_DIR}")
