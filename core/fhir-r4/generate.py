#!/usr/bin/env python3
"""Generates core/fhir-r4/definitions.txt, the FHIR R4 tables careledger validates imports against.

Source: the official FHIR R4 (4.0.1) definitions as HL7 publishes them in the npm package
`hl7.fhir.r4.examples` 4.0.1 (CC0-1.0): the StructureDefinitions of every resource, complex
datatype and primitive datatype, and the ValueSets and CodeSystems their required bindings
name. Nothing is written by hand: cardinalities, types, choice types, content references,
primitive regexes and value-set codes all come from those files.

    npm pack hl7.fhir.r4.examples@4.0.1          # or any copy of the package tarball
    python3 core/fhir-r4/generate.py hl7.fhir.r4.examples-4.0.1.tgz > core/fhir-r4/definitions.txt

Standard library only. The output is deterministic (sorted), so regenerating gives the same
bytes. Its format is described in core/src/record/r4/definitions.rs, which reads it.
"""

import json
import sys
import tarfile

FORMAT = "careledger-fhir-r4-definitions 1"
PACKAGE = "hl7.fhir.r4.examples"
VERSION = "4.0.1"

# JSON shape of each primitive (FHIR R4 JSON representation, section 2.6.2).
JSON_KIND = {
    "boolean": "boolean",
    "integer": "integer",
    "positiveInt": "integer",
    "unsignedInt": "integer",
    "decimal": "decimal",
}


def load(path):
    sds, value_sets, code_systems = {}, {}, {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            prefix = name.split("-", 1)[0]
            if not name.endswith(".json") or prefix not in (
                "StructureDefinition",
                "ValueSet",
                "CodeSystem",
            ):
                continue
            data = json.load(tar.extractfile(member))
            if prefix == "StructureDefinition":
                sds[data["id"]] = data
            elif prefix == "ValueSet":
                value_sets[data["url"]] = data
            else:
                code_systems[data["url"]] = data
    return sds, value_sets, code_systems


def check_package(path):
    with tarfile.open(path) as tar:
        meta = json.load(tar.extractfile("package/package.json"))
    if meta.get("name") != PACKAGE or meta.get("version") != VERSION:
        sys.exit(f"expected {PACKAGE} {VERSION}, got {meta.get('name')} {meta.get('version')}")


class NotEnumerable(Exception):
    """A value set whose codes cannot be listed from the package (external or filtered)."""


def cs_concepts(code_system):
    """(code, [descendant codes]) for every concept of a CodeSystem, nested ones included."""
    out = {}

    def walk(concepts, ancestors):
        for concept in concepts:
            code = concept["code"]
            out.setdefault(code, set())
            for ancestor in ancestors:
                out[ancestor].add(code)
            walk(concept.get("concept", []), ancestors + [code])

    walk(code_system.get("concept", []), [])
    return out


def expand(url, value_sets, code_systems, seen=()):
    """Set of (system, code) in a value set, or NotEnumerable."""
    url = url.split("|", 1)[0]
    if url in seen:
        raise NotEnumerable(url)
    vs = value_sets.get(url)
    if vs is None:
        raise NotEnumerable(url)
    compose = vs.get("compose")
    if compose is None:
        raise NotEnumerable(url)

    def part(include):
        codes = set()
        sets = [expand(v, value_sets, code_systems, seen + (url,)) for v in include.get("valueSet", [])]
        system = include.get("system")
        if system is not None:
            cs = code_systems.get(system)
            if "concept" in include:
                picked = {(system, c["code"]) for c in include["concept"]}
            else:
                if cs is None or cs.get("content") != "complete":
                    raise NotEnumerable(system)
                concepts = cs_concepts(cs)
                picked = set()
                filters = include.get("filter", [])
                if not filters:
                    picked = {(system, c) for c in concepts}
                else:
                    for f in filters:
                        if f["property"] != "concept" or f["op"] not in ("is-a", "descendent-of"):
                            raise NotEnumerable(system)
                        root = f["value"]
                        if root not in concepts:
                            raise NotEnumerable(system)
                        chosen = set(concepts[root])
                        if f["op"] == "is-a":
                            chosen.add(root)
                        picked |= {(system, c) for c in chosen}
            codes = picked
            for other in sets:
                codes &= other
        else:
            codes = set.intersection(*sets) if sets else set()
        return codes

    codes = set()
    for include in compose.get("include", []):
        codes |= part(include)
    for exclude in compose.get("exclude", []):
        codes -= part(exclude)
    if not codes:
        raise NotEnumerable(url)
    return codes


def fhir_type(element_type, path, kind):
    code = element_type["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in element_type.get("extension", []):
            if ext["url"].endswith("structuredefinition-fhir-type"):
                code = ext.get("valueUrl") or ext.get("valueUri")
        # Resource.id is `id` in the R4 specification; the snapshot says string.
        if kind == "resource" and path.count(".") == 1 and path.endswith(".id"):
            code = "id"
    return code


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    check_package(sys.argv[1])
    sds, value_sets, code_systems = load(sys.argv[1])
    core = {
        sd["type"]: sd
        for sd in sds.values()
        if sd.get("derivation") == "specialization"
        and sd["kind"] in ("primitive-type", "complex-type", "resource")
        and sd["url"] == "http://hl7.org/fhir/StructureDefinition/" + sd["type"]
    }

    out = [FORMAT, f"source\t{PACKAGE}\t{VERSION}\thttp://hl7.org/fhir/R4\tCC0-1.0"]

    # Primitives: JSON kind, regex (from the type's `value` element) and max length.
    for name in sorted(n for n, sd in core.items() if sd["kind"] == "primitive-type"):
        regex, max_len = "", "-"
        for element in core[name]["snapshot"]["element"]:
            if element["path"] == name + ".value":
                for t in element.get("type", []):
                    for ext in t.get("extension", []):
                        if ext["url"].endswith("/regex"):
                            regex = ext["valueString"]
                if "maxLength" in element:
                    max_len = str(element["maxLength"])
        out.append(f"P\t{name}\t{JSON_KIND.get(name, 'string')}\t{max_len}\t{regex}")

    value_set_ids = {}
    value_set_lines = []
    skipped = set()

    def bound_value_set(element, types):
        binding = element.get("binding")
        if not binding or binding.get("strength") != "required" or "valueSet" not in binding:
            return "-"
        url = binding["valueSet"].split("|", 1)[0]
        if url in value_set_ids:
            return value_set_ids[url]
        try:
            codes = expand(url, value_sets, code_systems)
        except NotEnumerable:
            skipped.add(url)
            return "-"
        ident = str(len(value_set_ids))
        value_set_ids[url] = ident
        name = value_sets[url].get("name", url.rsplit("/", 1)[-1])
        value_set_lines.append("\t".join(["V", ident, name, url]))
        for system in sorted({system for system, _ in codes}):
            listed = sorted(code for s, code in codes if s == system)
            value_set_lines.append("\t".join(["S", system] + listed))
        return ident

    complex_names = sorted(n for n, sd in core.items() if sd["kind"] == "complex-type")
    resource_names = sorted(n for n, sd in core.items() if sd["kind"] == "resource")
    for name in complex_names + resource_names:
        sd = core[name]
        kind = "complex" if sd["kind"] == "complex-type" else "resource"
        abstract = "abstract" if sd.get("abstract") else "concrete"
        out.append(f"T\t{name}\t{kind}\t{abstract}")
        for element in sd["snapshot"]["element"][1:]:
            path = element["path"]
            relative = path.split(".", 1)[1]
            minimum, maximum = element["min"], element["max"]
            if maximum == "0":
                continue
            if "contentReference" in element:
                target = element["contentReference"].lstrip("#").split(".", 1)[1]
                out.append(f"C\t{relative}\t{minimum}\t{maximum}\t{target}")
                continue
            types = [fhir_type(t, path, sd["kind"]) for t in element.get("type", [])]
            value_set = bound_value_set(element, types)
            out.append(f"E\t{relative}\t{minimum}\t{maximum}\t{','.join(types)}\t{value_set}")
    out.extend(value_set_lines)
    out.append("skipped-required-value-sets\t" + "\t".join(sorted(skipped)))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
