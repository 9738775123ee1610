# The transformers reference suite (tests/reference/test_logits.py, pytest): hanul run / convert
# on random-weight models of every supported architecture against transformers goldens.
#
# reference_models builds the models and goldens once into the build folder (a ctest fixture; it
# does nothing when they are up to date); then one test per model, so that `ctest -j2` spreads
# them over two cores and a failure names its model. Without HANUL_PYTHON the tests fail (ctest
# cannot find the executable): they never skip.
set(HANUL_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python with torch, transformers, gguf and safetensors, for the reference checks")
set(hanul_reference_work ${PROJECT_BINARY_DIR}/reference)
set(hanul_reference_models llama2 llama3 llama_linear mistral solar qwen2)  # make_models.MODELS

add_test(NAME reference_models
  COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/make_models.py
          ${hanul_reference_work}/models)
set_tests_properties(reference_models PROPERTIES
  FIXTURES_SETUP hanul_reference_models LABELS reference TIMEOUT 900)

foreach(model ${hanul_reference_models})
  add_test(NAME reference_${model}
    COMMAND ${HANUL_PYTHON} -m pytest -q -p no:cacheprovider
            ${CMAKE_CURRENT_SOURCE_DIR}/reference/test_logits.py --model ${model})
  set_tests_properties(reference_${model} PROPERTIES
    FIXTURES_REQUIRED hanul_reference_models LABELS reference TIMEOUT 600
    ENVIRONMENT
      "HANUL_BIN=$<TARGET_FILE:hanul_cli>;HANUL_REF_WORK=${hanul_reference_work};HANUL_THREADS=1")
endforeach()
