# generate/generator.cpp runs Llama::forward, so the generate layer sits on the model layer
# (DESIGN.md: generate/ is above model/). Until CMakeLists.txt says
# `hanul_layer(generate hanul_tokenizer hanul_model)`, the unit binary links the model itself.
if(TARGET test_generate)
  target_link_libraries(test_generate PRIVATE hanul_model)
endif()
