#!/usr/bin/env python3
"""Extracts the wire facts of STS AssumeRole and GetCallerIdentity from botocore's `sts`
service model (as ../shared/reference/extract_ops.py does for the audit API) into
sts-ops.json next to this file. Usage: `.venv/bin/python docs/reference/extract_sts.py`
(the project's venv has botocore)."""
import json
import os

from botocore.loaders import Loader

OPS = ["AssumeRole", "GetCallerIdentity"]
KEYS = ("min", "max", "pattern", "enum")


def shape_facts(shapes, name):
    s = shapes[name]
    out = {"type": s["type"], **{k: s[k] for k in KEYS if k in s}}
    if s["type"] == "structure":
        out["required"] = s.get("required", [])
        out["members"] = {m: {"shape": r["shape"], **{k: shapes[r["shape"]][k] for k in KEYS if k in shapes[r["shape"]]},
                              "type": shapes[r["shape"]]["type"]} for m, r in s["members"].items()}
    return out


def main():
    model = Loader().load_service_model("sts", "service-2")
    shapes = model["shapes"]
    facts = {"metadata": {k: model["metadata"][k] for k in ("apiVersion", "protocol", "xmlNamespace", "signatureVersion", "globalEndpoint")}, "operations": {}}
    for op in OPS:
        o = model["operations"][op]
        facts["operations"][op] = {
            "http": o["http"],
            "input": shape_facts(shapes, o["input"]["shape"]),
            "output": {"resultWrapper": o["output"].get("resultWrapper"), **shape_facts(shapes, o["output"]["shape"])},
            "errors": {e["shape"]: shapes[e["shape"]].get("error", {}) for e in o.get("errors", [])},
        }
    for s in ("Credentials", "AssumedRoleUser"):
        facts[s] = shape_facts(shapes, s)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sts-ops.json")
    with open(path, "w") as f:
        json.dump(facts, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
