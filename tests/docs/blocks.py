"""The fenced code blocks of careledger's Markdown docs, and what checks them.

Every fenced block carries a language, and that language says who checks it
in CI (`bash tests/run-all.sh`):

    ```sh                  run by tests/docs/run.sh, in order, one bash
                           session per file, in a scratch directory that
                           sees the repository's files
    ```sh package=NAME     run by the package stage tests/packages/NAME.sh
                           (c, python, jvm), as an installing user would
    ```LANG package=NAME file=F   a program of the guide: the stage writes
                           it to ~/careledger-app/F before running the
                           guide's sh blocks, which build and run it
                           (c: against the installed C package; python:
                           in the wheel's virtualenv, and mypy --strict;
                           kotlin: compiled against the jar)
    ```rust                compiled and run by `cargo test --doc`: the file
                           is included as doctests (core/src/lib.rs)
    ```LANG from=PATH      must be a verbatim excerpt of the file PATH
                           (a CMakeLists.txt, a pyproject.toml, ...)
    ```text                output, diagrams: not code, not checked
    ```LANG not-in-ci: WHY cannot run here (other machines, Xcode, the
                           Android NDK, hours of fuzzing); sh blocks are
                           still parsed by `bash -n` and the repository
                           paths they name must exist

    python3 tests/docs/blocks.py check FILE...        every block accounted for; links resolve
    python3 tests/docs/blocks.py script FILE [PACKAGE] the file's plain (or PACKAGE's) sh blocks as one bash script
    python3 tests/docs/blocks.py files PACKAGE DIR FILE...
                                                      write PACKAGE's file= blocks into DIR
    python3 tests/docs/blocks.py summary FILE...      what is checked where, one line per file
"""

import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGES = {"c": ("sh", "c"), "python": ("sh", "python"), "jvm": ("sh", "kotlin")}
SHELLS = {"sh", "bash", "shell"}
UNCHECKED = {"text"}
EXCERPT_ONLY = {"toml", "cmake", "json", "yaml", "ini", "xml", "proguard", "gradle", "groovy"}
TOP_LEVEL = ("core", "ffi", "bindings", "include", "examples", "fuzz", "tests", "docs", ".ci")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class Block:
    def __init__(self, path, line, info, text):
        self.path = path
        self.line = line
        self.text = text
        words = info.strip().split(None, 1)
        self.lang = words[0].lower() if words else ""
        self.rest = words[1].strip() if len(words) > 1 else ""
        self.not_in_ci = None
        self.package = None
        self.source = None
        self.file = None
        if self.rest.startswith("not-in-ci"):
            self.not_in_ci = self.rest[len("not-in-ci"):].lstrip(":").strip()
        else:
            for tag in self.rest.split():
                if tag.startswith("package="):
                    self.package = tag[len("package="):]
                elif tag.startswith("from="):
                    self.source = tag[len("from="):]
                elif tag.startswith("file="):
                    self.file = tag[len("file="):]
                else:
                    self.unknown = tag

    @property
    def where(self):
        return f"{os.path.relpath(self.path, ROOT)}:{self.line}"


def blocks_of(path):
    """Every fenced block of a Markdown file, with its 1-based opening line."""
    found = []
    with open(path, encoding="utf-8") as source:
        lines = source.read().split("\n")
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = match.group("indent"), match.group("fence"), match.group("info")
        start = i + 1
        body = []
        i += 1
        while i < len(lines):
            closing = lines[i].strip()
            if closing.startswith(fence[0] * len(fence)) and closing.strip(fence[0]) == "":
                break
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        else:
            raise SystemExit(f"{path}:{start}: unclosed code block")
        found.append(Block(path, start, info, "\n".join(body) + "\n"))
        i += 1
    return found


def check_block(block):
    """Problems with one block (empty list: fine)."""
    problems = []
    if getattr(block, "unknown", None):
        problems.append(f"unknown tag {block.unknown!r}")
    if not block.lang:
        return ["a code block without a language: say what it is (```sh, ```text, ...)"]
    if block.not_in_ci is not None:
        if not block.not_in_ci:
            problems.append("not-in-ci needs a reason: ```LANG not-in-ci: WHY")
        if block.lang in SHELLS:
            problems += check_shell_syntax(block)
        return problems
    if block.lang in UNCHECKED:
        return problems
    if block.source:
        target = os.path.join(ROOT, block.source)
        if not os.path.isfile(target):
            problems.append(f"from={block.source}: no such file")
        elif normalise(block.text) not in normalise(open(target, encoding="utf-8").read()):
            problems.append(f"not a verbatim excerpt of {block.source}")
        return problems
    if block.lang in SHELLS:
        if block.package and block.package not in PACKAGES:
            problems.append(f"unknown package stage {block.package!r}")
        return problems + check_shell_syntax(block)
    if block.lang == "rust":
        return problems + check_rust_included(block)
    expected = {lang: name for name, (_, lang) in PACKAGES.items()}
    if block.lang in expected:
        if block.package != expected[block.lang]:
            problems.append(f"a {block.lang} block must say package={expected[block.lang]} (or not-in-ci: WHY)")
        if not block.file:
            problems.append(f"a {block.lang} block must name its file (file=NAME) for the guide's commands to build")
        return problems
    if block.lang in EXCERPT_ONLY:
        return problems + [f"a {block.lang} block must be from=PATH (a file CI uses) or not-in-ci: WHY"]
    return problems + [f"nothing checks {block.lang!r} blocks: use not-in-ci: WHY"]


def normalise(text):
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))


def check_shell_syntax(block):
    result = subprocess.run(["bash", "-n"], input=block.text, text=True, capture_output=True)
    problems = [f"bash -n: {result.stderr.strip()}"] if result.returncode else []
    for path in re.findall(r"(?<![\w./$-])((?:%s)/[\w./-]*[\w/])" % "|".join(map(re.escape, TOP_LEVEL)), block.text):
        placeholder = any(part.isupper() or "…" in part for part in path.split("/"))
        if not os.path.exists(os.path.join(ROOT, path)) and "*" not in path and not placeholder:
            problems.append(f"names {path}, which does not exist")
    return problems


def check_rust_included(block):
    relative = os.path.relpath(block.path, os.path.join(ROOT, "core", "src"))
    with open(os.path.join(ROOT, "core", "src", "lib.rs"), encoding="utf-8") as lib:
        if f'include_str!("{relative}")' not in lib.read():
            return [f"rust blocks run as doctests only if core/src/lib.rs includes {relative}"]
    return []


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def check_links(path):
    problems = []
    text = open(path, encoding="utf-8").read()
    # Links inside code are code, not links.
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
        if not os.path.exists(resolved):
            problems.append(f"link to {target}: no such file")
        elif anchor and resolved.endswith(".md") and anchor not in anchors_of(resolved):
            problems.append(f"link to {target}: no such heading")
    return problems


def anchors_of(path):
    """GitHub's anchors for a Markdown file's headings."""
    anchors = set()
    text = re.sub(r"```.*?```", "", open(path, encoding="utf-8").read(), flags=re.S)
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
        base, n = slug, 1
        while slug in anchors:
            slug = f"{base}-{n}"
            n += 1
        anchors.add(slug)
    return anchors


def command_check(files):
    problems = 0
    for path in files:
        for problem in check_links(path):
            print(f"{os.path.relpath(path, ROOT)}: {problem}")
            problems += 1
        blocks = blocks_of(path)
        for block in blocks:
            for problem in check_block(block):
                print(f"{block.where}: {problem}")
                problems += 1
            if block.file and block.not_in_ci is None:
                used = any(
                    b.lang in SHELLS and b.package == block.package and block.file in b.text
                    for b in blocks
                )
                if not used:
                    print(f"{block.where}: no package={block.package} sh block of this file uses {block.file}")
                    problems += 1
    return 1 if problems else 0


def command_script(path, package=None):
    """The plain sh blocks of one file (or those for `package`) as one bash script."""
    out = []
    for block in blocks_of(path):
        if (
            block.lang in SHELLS
            and block.not_in_ci is None
            and block.package == package
            and not block.source
        ):
            out.append(f"echo '-- {block.where}' >&2")
            out.append(block.text)
    sys.stdout.write("\n".join(out))
    return 0


def command_files(package, directory, files):
    """Write the `file=NAME` blocks for `package` to `directory`/NAME; print
    the names."""
    os.makedirs(directory, exist_ok=True)
    for path in files:
        for block in blocks_of(path):
            if block.file and block.package == package and block.not_in_ci is None:
                with open(os.path.join(directory, block.file), "w", encoding="utf-8") as out:
                    out.write(block.text)
                print(block.file)
    return 0


def command_summary(files):
    total = {}
    skipped = []
    for path in files:
        for block in blocks_of(path):
            if block.not_in_ci is not None:
                kind = "not in CI"
                skipped.append(f"  {block.where} ({block.lang}): {block.not_in_ci}")
            elif block.lang in UNCHECKED:
                kind = "text"
            elif block.source:
                kind = "excerpt"
            elif block.package:
                kind = f"package {block.package}"
            elif block.lang == "rust":
                kind = "doctest"
            else:
                kind = "run here"
            total[kind] = total.get(kind, 0) + 1
    print("docs blocks: " + ", ".join(f"{n} {k}" for k, n in sorted(total.items())))
    if skipped:
        print("not run in CI, and why:")
        print("\n".join(skipped))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "check":
        return command_check(argv[1:])
    if len(argv) in (2, 3) and argv[0] == "script":
        return command_script(argv[1], argv[2] if len(argv) == 3 else None)
    if len(argv) >= 4 and argv[0] == "files":
        return command_files(argv[1], argv[2], argv[3:])
    if len(argv) >= 2 and argv[0] == "summary":
        return command_summary(argv[1:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
