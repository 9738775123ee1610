# Constrained decoding with a real model (included by tests/CMakeLists.txt).
#
# constrained_decoding: tests/reference/check_constrained_decoding.py generates 200 random JSON
# schemas (seeded), runs `hanul run --json-schema` on the default model (stories260K) at
# --temp 0.8 for each and greedily for 20 of them, and checks that every output parses and
# validates with the Python `jsonschema` package (Draft 2020-12).
set(HANUL_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python with the packages of the reference checks")
add_test(NAME constrained_decoding
  COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_constrained_decoding.py
          --hanul $<TARGET_FILE:hanul_cli>
          --model ${PROJECT_SOURCE_DIR}/tests/fixtures/stories260K-f32.gguf)
set_tests_properties(constrained_decoding PROPERTIES LABELS reference TIMEOUT 300)
