# Gradient reference check: every backward op of kernels/ref/ops_backward.h (and
# the cpu twins), one whole transformer block and AdamW / clip_grad_norm_ against
# PyTorch autograd and torch.optim (tests/reference/check_grads.py), driven through
# the small grad_tool executable.
add_executable(grad_tool ${CMAKE_CURRENT_SOURCE_DIR}/tools/grad_tool.cpp)
target_link_libraries(grad_tool PRIVATE hanul_kernels hanul_formats)

# Without HANUL_PYTHON the test fails rather than skips: a missing reference is not a pass.
add_test(NAME reference.check_grads
         COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_grads.py
                 --tool $<TARGET_FILE:grad_tool>)
set_tests_properties(reference.check_grads PROPERTIES LABELS reference TIMEOUT 120)
