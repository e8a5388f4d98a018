# ctest install_cli: `cmake --install` puts the pactq command and the files it
# ships (int8 peer, ONNX Runtime runner, trained models) under a clean prefix,
# and the installed command finds them there, from any working directory,
# without the source tree. Arguments: BUILD_DIR WORK_DIR.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/elsewhere")

set(RUN_DIR "${WORK_DIR}/elsewhere")
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)

set(prefix "${WORK_DIR}/prefix")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
set(pactq "${prefix}/bin/pactq")
if(NOT EXISTS "${pactq}")
  message(FATAL_ERROR "cmake --install did not install the pactq command")
endif()
# The installed copy's files, not the source tree's (PACTQ_DATA_DIR unset).
set(ENV{PACTQ_DATA_DIR} "")
run("${pactq}" models)
if(NOT last_output MATCHES "trained models in ${prefix}/share/pactq/trained")
  message(FATAL_ERROR "pactq models did not list the installed trained models:\n${last_output}")
endif()
run("${pactq}" bench run --help)
if(NOT last_output MATCHES "${prefix}/share/pactq/bench/peers/py_int8_peer.py")
  message(FATAL_ERROR "bench run does not find the installed int8 peer:\n${last_output}")
endif()
run("${pactq}" bench onnx --help)
if(NOT last_output MATCHES "${prefix}/share/pactq/tools/ort")
  message(FATAL_ERROR "bench onnx does not find the installed ONNX Runtime runner:\n${last_output}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
