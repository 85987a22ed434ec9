import os
import sys

# the package of this source tree, unless the installed one is under test
# (FA2_TEST_INSTALLED=1, as .ci/run does after `pip install ./python`)
if not os.environ.get("FA2_TEST_INSTALLED"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
