# Extra checks of the formats layer (included by tests/CMakeLists.txt).
#
# 1. test_formats_asan: the formats unit tests (hostile and fuzzed files included) rebuilt with
#    AddressSanitizer + UBSan over the sources they run, so a read past a buffer or an overflow
#    fails the suite instead of passing by luck.
# 2. formats_interop: tests/reference/check_formats_interop.py, which checks that files written
#    by hanul load in the `gguf` and `safetensors` Python packages, and the reverse.

file(GLOB hanul_formats_asan_srcs CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/src/hanul/base/*.cpp
  ${PROJECT_SOURCE_DIR}/src/hanul/formats/*.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/unit/formats/*.cpp)
# tensor.cpp calls dequantize_row (quantize.cpp); dtype.cpp holds the block sizes.
list(APPEND hanul_formats_asan_srcs
  ${PROJECT_SOURCE_DIR}/src/hanul/tensor/dtype.cpp
  ${PROJECT_SOURCE_DIR}/src/hanul/tensor/tensor.cpp
  ${PROJECT_SOURCE_DIR}/src/hanul/tensor/quantize.cpp)
add_executable(test_formats_asan ${hanul_formats_asan_srcs})
target_include_directories(test_formats_asan PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(test_formats_asan PRIVATE
  HANUL_SOURCE_DIR="${PROJECT_SOURCE_DIR}" HANUL_BINARY_DIR="${PROJECT_BINARY_DIR}")
set(hanul_asan_flags -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
target_compile_options(test_formats_asan PRIVATE ${hanul_asan_flags} -O1)
target_link_options(test_formats_asan PRIVATE ${hanul_asan_flags})
target_link_libraries(test_formats_asan PRIVATE
  fmt::fmt nlohmann_json::nlohmann_json Threads::Threads GTest::gtest_main)
# One ctest entry for the whole binary: sanitizer start-up is slow, and a single run is enough.
add_test(NAME formats_asan COMMAND test_formats_asan)
set_tests_properties(formats_asan PROPERTIES LABELS "unit;asan"
  ENVIRONMENT "HANUL_NO_MMAP=1;ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1")

# A tiny driver of hanul's GGUF / safetensors reader and writer for the Python check.
add_executable(formats_tool ${CMAKE_CURRENT_SOURCE_DIR}/tools/formats_tool.cpp)
target_link_libraries(formats_tool PRIVATE hanul_formats)

add_test(NAME formats_interop
  COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_formats_interop.py
          --tool $<TARGET_FILE:formats_tool>
          --fixture ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/stories260K-f32.gguf)
set_tests_properties(formats_interop PROPERTIES LABELS reference)
