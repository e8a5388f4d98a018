# run(COMMAND...): runs a command in ${RUN_DIR}, stops the test with its
# output if it fails, and leaves its standard output in last_output. Shared by
# the install tests.
function(run)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${RUN_DIR}" RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()
