"""pytest options of the reference suite.

--model NAME (repeatable) limits the run to some of make_models.MODELS; ctest runs one model per
test so that `ctest -j2` spreads them over two cores and a failure names its model.
"""


def pytest_addoption(parser):
    parser.addoption("--model", action="append", default=[],
                     help="only this reference model (repeatable); default: all")
