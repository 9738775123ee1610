# Chat templates against transformers (included by tests/CMakeLists.txt).
#
# chat_templates: tests/reference/check_chat_templates.py renders every template in
# tests/fixtures/chat_templates/ on a set of conversations with transformers' own Jinja setup
# (needs jinja2 in the venv) and checks that `hanul template` prints the same bytes, or fails
# where transformers raises.
set(HANUL_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python with the packages of the reference checks")
add_test(NAME chat_templates
  COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_chat_templates.py
          --hanul $<TARGET_FILE:hanul_cli>)
set_tests_properties(chat_templates PROPERTIES LABELS reference TIMEOUT 600)
