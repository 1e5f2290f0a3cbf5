"""Checks what `sam build` produced before `sam deploy` uploads it: one bootstrap per function of
template.yaml, an ELF executable for the template's architecture (the Architecture parameter's
value, default from the template, or the first argument). Prints each one's size.

    python tests/python/package_check.py [arm64|x86_64]
"""

import os
import sys

from samtranslator.yaml_helper import yaml_parse

# ELF e_machine values (System V ABI): what each Lambda architecture runs.
MACHINES = {"arm64": 0xB7, "x86_64": 0x3E}


def main(argv):
    template = yaml_parse(open("template.yaml").read())
    arch = argv[1] if len(argv) > 1 else template["Parameters"]["Architecture"]["Default"]
    want = MACHINES[arch]
    functions = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    errors = []
    for name in functions:
        path = os.path.join(".aws-sam", "build", name, "bootstrap")
        if not os.path.exists(path):
            errors.append(f"{path}: missing (run sam build)")
            continue
        with open(path, "rb") as f:
            head = f.read(20)
        machine = int.from_bytes(head[18:20], "little") if len(head) == 20 else None
        if head[:4] != b"\x7fELF":
            errors.append(f"{path}: not an ELF executable")
        elif machine != want:
            errors.append(f"{path}: ELF machine {machine:#x}, the template's architecture {arch} needs {want:#x}")
        elif not os.access(path, os.X_OK):
            errors.append(f"{path}: not executable")
        else:
            print(f"{path}: ELF {arch}, {os.path.getsize(path) / 1e6:.1f} MB")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
