"""The installable package: pyproject.toml agrees with the code it ships."""

import os
import unittest

import cocaine
from tests.fakenode import ADAPTER_DIR

try:
    import tomllib
except ImportError:  # Python before 3.11
    tomllib = None


@unittest.skipIf(tomllib is None, "tomllib needs Python 3.11")
class PyprojectTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ADAPTER_DIR, "pyproject.toml"), "rb") as f:
            self.project = tomllib.load(f)

    def test_version_and_python_match_the_code(self):
        self.assertEqual(self.project["project"]["version"], cocaine.__version__)
        self.assertEqual(self.project["project"]["requires-python"], ">=3.9")
        self.assertEqual(self.project["project"].get("dependencies", []), [])

    def test_ships_the_package_and_its_type_marker(self):
        setuptools = self.project["tool"]["setuptools"]
        self.assertEqual(setuptools["packages"], ["cocaine"])
        self.assertIn("py.typed", setuptools["package-data"]["cocaine"])
        self.assertTrue(os.path.isfile(os.path.join(ADAPTER_DIR, "cocaine", "py.typed")))


if __name__ == "__main__":
    unittest.main()
