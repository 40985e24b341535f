"""Run the portable tests under the MicroPython Unix port.

    micropython tests/mpy_runner.py ROOT PACKAGE[,PACKAGE] [TEST_DIR ...]

Imports every module of each PACKAGE (so a module using something MicroPython
lacks fails even if no test touches it), then runs every `test_*` function of
the test modules in TEST_DIRs that declare `MICROPYTHON = True`. Prints
'N passed, N failed' and exits 1 on any failure. Written for MicroPython:
no pytest, no argparse, no pathlib.
"""

import os
import sys


def print_error(exc):
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc)
    else:
        import traceback

        traceback.print_exception(exc)


def module_names(directory):
    names = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".py") and name != "__init__.py":
            names.append(directory.replace("/", ".") + "." + name[:-3])
    return names


def is_portable(directory, module):
    path = directory + "/" + module.split(".")[-1] + ".py"
    with open(path) as source:
        return "\nMICROPYTHON = True\n" in source.read()


def import_all(package):
    failures = 0
    for name in [package] + module_names(package.replace(".", "/")):
        try:
            __import__(name)
        except Exception as exc:
            print("IMPORT FAILED %s" % name)
            print_error(exc)
            failures += 1
    return failures


def run_tests(directory):
    passed = failed = 0
    for name in module_names(directory):
        if not name.split(".")[-1].startswith("test_") or not is_portable(directory, name):
            continue
        try:
            __import__(name)
        except Exception as exc:
            print("IMPORT FAILED %s" % name)
            print_error(exc)
            failed += 1
            continue
        module = sys.modules[name]
        for attr in sorted(dir(module)):
            if not attr.startswith("test_"):
                continue
            try:
                getattr(module, attr)()
                passed += 1
            except Exception as exc:
                print("FAILED %s.%s" % (name, attr))
                print_error(exc)
                failed += 1
    return passed, failed


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    os.chdir(argv[1])
    sys.path.insert(0, ".")
    failed = 0
    for package in argv[2].split(","):
        failed += import_all(package)
    passed = 0
    for directory in argv[3:]:
        more_passed, more_failed = run_tests(directory.rstrip("/"))
        passed += more_passed
        failed += more_failed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


sys.exit(main(sys.argv))
