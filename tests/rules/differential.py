"""Evaluate careledger's generated CEL cases with cel-python and compare.

Reads JSON lines from stdin (see tests/src/bin/cel_cases.rs): each has
`expr`, `input` (bound to `resource`) and careledger's `result`, a tagged
value ({"int": 1}, {"list": [...]}, ...) or {"error": "..."}. Prints one
line per disagreement and a closing 'N passed, N failed' line; exits 1 on
any disagreement.
"""
import json
import math
import sys

import celpy
from celpy import celtypes


def tagged(value):
    """cel-python's result in careledger's tagged form, or None if it is an error."""
    if isinstance(value, celpy.CELEvalError) or isinstance(value, Exception):
        return None
    if isinstance(value, celtypes.BoolType):
        return {"bool": bool(value)}
    if isinstance(value, celtypes.UintType):
        return {"uint": int(value)}
    if isinstance(value, celtypes.IntType):
        return {"int": int(value)}
    if isinstance(value, celtypes.DoubleType):
        return {"double": float(value)}
    if isinstance(value, celtypes.StringType):
        return {"string": str(value)}
    if isinstance(value, celtypes.BytesType):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, celtypes.ListType):
        items = [tagged(v) for v in value]
        if any(i is None for i in items):
            return None
        return {"list": items}
    if isinstance(value, celtypes.MapType):
        entries = [[tagged(k), tagged(v)] for k, v in value.items()]
        if any(k is None or v is None for k, v in entries):
            return None
        return {"map": sorted(entries, key=json.dumps)}
    if value is None:
        return {"null": None}
    # Some cel-python operators (`+` on strings and lists) return plain Python values.
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"double": value}
    if isinstance(value, str):
        return {"string": value}
    if isinstance(value, (list, tuple)):
        items = [tagged(v) for v in value]
        if any(i is None for i in items):
            return None
        return {"list": items}
    return {"other": type(value).__name__}


def same(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        return all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def main():
    env = celpy.Environment()
    passed = failed = 0
    for line in sys.stdin:
        case = json.loads(line)
        ours = case["result"]
        try:
            program = env.program(env.compile(case["expr"]))
            theirs = tagged(program.evaluate({"resource": celpy.json_to_cel(case["input"])}))
        except Exception:  # cel-python raises for compile errors and some evaluation errors
            theirs = None
        ours_error = "error" in ours
        if ours_error and theirs is None:
            passed += 1
        elif not ours_error and theirs is not None and same(ours, theirs):
            passed += 1
        else:
            failed += 1
            print(json.dumps({"expr": case["expr"], "input": case["input"],
                              "careledger": ours, "cel-python": theirs}))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
