"""Map the repository's top-level folders into ONE installed package, ``dataengine.*``.

The product brief fixes the folders (``connectors/``, ``filters/``, ...); installed they
must never be generic top-level names (``kernels`` alone is Hugging Face's package). The
package list is computed so a new sub-package needs no edit here. Everything else about
the build lives in pyproject.toml.
"""

from setuptools import find_packages, setup

#: Repository folders installed as ``dataengine.<folder>``.
SUBPACKAGE_FOLDERS = ("connectors", "filters", "generators", "trainer", "kernels", "warehouse")

package_dir = {"dataengine": "dataengine"}
packages = find_packages(include=["dataengine", "dataengine.*"])
for folder in SUBPACKAGE_FOLDERS:
    package_dir[f"dataengine.{folder}"] = folder
    packages.append(f"dataengine.{folder}")
    packages.extend(f"dataengine.{folder}.{sub}" for sub in find_packages(where=folder))

setup(packages=packages, package_dir=package_dir)
