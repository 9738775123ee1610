# End-to-end: the CLI driven as a user would (tests/e2e/test_*.py, pytest). Training has its own
# test so that ctest -j runs it beside the others.
add_test(NAME e2e_cli COMMAND ${HANUL_PYTHON} -m pytest -q -p no:cacheprovider
         --ignore=${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_train.py ${CMAKE_CURRENT_SOURCE_DIR}/e2e)
add_test(NAME e2e_train COMMAND ${HANUL_PYTHON} -m pytest -q -p no:cacheprovider
         ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_train.py)
set_tests_properties(e2e_cli e2e_train PROPERTIES ENVIRONMENT "HANUL_BIN=$<TARGET_FILE:hanul_cli>" LABELS e2e
                     TIMEOUT 600)
