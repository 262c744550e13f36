"""The packaging facts that pyproject.toml cannot say: the folders that make up ``openpose_plus``
(every package under them found, none listed by hand) and cffi's build hook for the C core."""
from setuptools import find_packages, setup

# folder -> import name; ``openpose_plus`` itself stays an implicit namespace.
PARTS = {"edge": "openpose_plus.edge", "host_training": "openpose_plus.host_training",
         "calibration": "openpose_plus.calibration", "evaluation": "openpose_plus.evaluation",
         "commands": "openpose_plus.commands", "benches": "openpose_plus.benches"}

packages, package_dir = [], {}
for folder, name in PARTS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += ["%s.%s" % (name, sub) for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir,
      package_data={"openpose_plus.edge": ["sinks/static/*"]},
      cffi_modules=["cffi_build/build_paf.py:ffibuilder"])
