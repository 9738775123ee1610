# hanul convert carries the tokenizer across formats (tests/reference/check_tokenizer_export.py):
# the llama-spm and gpt-2 vocab fixtures inside tiny GGUF models, converted to a HF folder and back,
# checked with HF tokenizers / transformers (same ids as llama.cpp's vectors and as hanul) and
# gguf-py (the tokenizer.ggml.* keys llama.cpp reads). Fails (never skips) without HANUL_PYTHON.
add_test(NAME reference_tokenizer_export
  COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_tokenizer_export.py
          $<TARGET_FILE:hanul_cli> ${PROJECT_SOURCE_DIR}/tests/fixtures/tokenizer
          ${PROJECT_BINARY_DIR}/reference/tokenizer_export)
set_tests_properties(reference_tokenizer_export PROPERTIES LABELS reference TIMEOUT 600)
