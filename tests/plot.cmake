# The training loss chart (train/metrics.h write_loss_plot_svg) checked from the
# outside: tests/reference/check_loss_plot.py writes known records, has
# loss_plot_tool draw them, parses the SVG with xml.etree and maps every plotted
# point back to its record through the axis transform (read from the chart's
# data attributes and, independently, from its tick labels).
add_executable(loss_plot_tool ${CMAKE_CURRENT_SOURCE_DIR}/tools/loss_plot_tool.cpp)
target_link_libraries(loss_plot_tool PRIVATE hanul_train)

# Without HANUL_PYTHON the test fails rather than skips: a missing reference is not a pass.
add_test(NAME reference.check_loss_plot
         COMMAND ${HANUL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_loss_plot.py
                 --tool $<TARGET_FILE:loss_plot_tool>)
set_tests_properties(reference.check_loss_plot PROPERTIES LABELS reference TIMEOUT 60)
