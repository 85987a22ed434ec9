"""setup.py — only to record, in the installed package, where the source
tree it came from is (fa2/_source.py), so that `pip install ./python` after
the README's in-tree build finds that build's libfa2 (fa2/_lib.py). All
metadata is in pyproject.toml; there is no compiled extension."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyRecordingSource(build_py):
    def run(self):
        super().run()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(self.build_lib, "fa2", "_source.py"), "w") as f:
            f.write("# written by setup.py at install time\nSOURCE_ROOT = %r\n" % root)


setup(cmdclass={"build_py": BuildPyRecordingSource})
