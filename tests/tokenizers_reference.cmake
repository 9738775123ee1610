# hanul's tokenizers against sentencepiece and HF tokenizers, line by line over a mixed
# Korean/English/code/emoji/odd-Unicode corpus (tests/reference/check_tokenizers.py): Llama 2
# (tokenizer.model and a tokenizer.json built from it), GPT-2 (GGUF and tokenizer.json) and the
# output of `hanul tokenizer train`, Llama 3 (tiktoken), and the tokenizer.json files that
# `hanul tokenizer export` writes from the mpt, starcoder, refact and deepseek-coder vocab
# GGUFs. Needs HANUL_PYTHON with sentencepiece, tokenizers, tiktoken and gguf; without it the
# test fails, it never skips.
add_test(NAME reference_tokenizers
  COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_tokenizers.py
          --hanul $<TARGET_FILE:hanul_cli> --work ${PROJECT_BINARY_DIR}/reference_tokenizers)
set_tests_properties(reference_tokenizers PROPERTIES
  LABELS reference TIMEOUT 600 ENVIRONMENT "TOKENIZERS_PARALLELISM=false")
