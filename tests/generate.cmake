# Extra checks of the generate layer (included by tests/CMakeLists.txt).
#
# generate_json_schema: tests/reference/check_json_schema.py re-validates the 200 random
# schema walks of test_generate with the Python `jsonschema` package (Draft 2020-12).
if(TARGET test_generate)
  set(HANUL_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
      "Python with the packages of the reference checks")
  add_test(NAME generate_json_schema
    COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_json_schema.py
            --tool $<TARGET_FILE:test_generate>)
  set_tests_properties(generate_json_schema PROPERTIES LABELS reference)
endif()
