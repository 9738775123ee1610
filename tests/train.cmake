# One training step against PyTorch: tests/reference/check_train_step.py writes a
# small random transformers LlamaForCausalLM (untied and tied embeddings), runs
# train_step_tool (train/train_step.h) for one step on a token batch and the same
# step in torch (CrossEntropy mean, clip_grad_norm_, torch.optim.AdamW), and
# compares the loss and every updated weight.
add_executable(train_step_tool ${CMAKE_CURRENT_SOURCE_DIR}/tools/train_step_tool.cpp)
target_link_libraries(train_step_tool PRIVATE hanul_train hanul_formats)

# Without HANUL_PYTHON the test fails rather than skips: a missing reference is not a pass.
add_test(NAME reference.check_train_step
         COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_train_step.py
                 --tool $<TARGET_FILE:train_step_tool>)
set_tests_properties(reference.check_train_step PROPERTIES LABELS reference TIMEOUT 300)

# A `hanul train` checkpoint loads in transformers / tokenizers and agrees with hanul (tokens,
# logits through safetensors and GGUF, chat template): tests/reference/check_train_checkpoint.py.
add_test(NAME reference.check_train_checkpoint
         COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_train_checkpoint.py
                 --hanul $<TARGET_FILE:hanul_cli>)
set_tests_properties(reference.check_train_checkpoint PROPERTIES LABELS reference TIMEOUT 600)
