# Quantization reference check: hanul's quantize_row / dequantize_row against
# the gguf PyPI package's numpy implementation (tests/reference/check_quants.py),
# driven through the small quant_tool executable.
add_executable(quant_tool ${CMAKE_CURRENT_SOURCE_DIR}/tools/quant_tool.cpp)
target_link_libraries(quant_tool PRIVATE hanul_tensor)

# Without HANUL_PYTHON the test fails rather than skips: a missing reference is not a pass.
add_test(NAME reference.check_quants
         COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_quants.py
                 --tool $<TARGET_FILE:quant_tool>)
set_tests_properties(reference.check_quants PROPERTIES LABELS reference TIMEOUT 300)
