# End-to-end: the CLI driven as a user would (tests/e2e/test_*.py, pytest).
add_test(NAME e2e_cli COMMAND ${HANUL_PYTHON} -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_SOURCE_DIR}/e2e)
set_tests_properties(e2e_cli PROPERTIES ENVIRONMENT "HANUL_BIN=$<TARGET_FILE:hanul_cli>" LABELS e2e TIMEOUT 600)
