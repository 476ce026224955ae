"""`make lint`: ruff on the exported library (rules and the 120-character limit in pyproject.toml).

One exception ruff cannot express: nbdev-export writes each module's `__all__` list itself and wraps it at 120
characters *after* the 11-character `__all__ = [` prefix, so a generated `__all__` line may reach 131. Those lines
are not ours to wrap (the notebooks are the source); every other line of the library must fit in 120.
The same holds for a module docstring's summary: nbdev-export copies the notebook's `> description` line, which
must stay one line (the docs site takes only the first `>` line as the page's description).
"""
import json, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]

def generated_lines(path: Path) -> set[int]:
    "1-based line numbers of a module's generated `__all__ = [...]` block and of its docstring's summary line."
    lines, out, inside = path.read_text().splitlines(), set(), False
    if lines and lines[0].startswith('"""'): out.add(1)
    for i, line in enumerate(lines, 1):
        if line.startswith("__all__ = ["): inside = True
        if inside:
            out.add(i)
            if line.rstrip().endswith("]"): inside = False
    return out

if __name__ == "__main__":
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "mrpo_nb", "--output-format", "json"], cwd=root, capture_output=True, text=True)
    if proc.returncode not in (0, 1): sys.exit(proc.stderr or proc.stdout)
    found, generated = [], {}
    for v in json.loads(proc.stdout or "[]"):
        p = Path(v["filename"])
        if v["code"] == "E501" and v["location"]["row"] in generated.setdefault(p, generated_lines(p)): continue
        found.append(f"{p.relative_to(root)}:{v['location']['row']}:{v['location']['column']}: {v['code']} {v['message']}")
    print("\n".join(found))
    print(f"ruff: {len(found)} problem(s) in mrpo_nb" + ("" if found else " (clean)"))
    sys.exit(1 if found else 0)
