"""Write a notebook from a plain-text source, for authoring notebooks outside Jupyter.

The source file holds cells separated by lines of the form `# %% [markdown]` or `# %%` (code), the
"percent" format that Jupytext, VS Code and Spyder read. Usage: python tools/nbwrite.py SRC.py nbs/NAME.ipynb
Run `nbdev-clean` afterwards.
"""
import json, re, sys
from pathlib import Path

def parse(text):
    cells, kind, buf = [], None, []
    def flush():
        if kind is None: return
        src = '\n'.join(buf).strip('\n')
        if kind == 'markdown':
            src = '\n'.join(l[2:] if l.startswith('# ') else ('' if l == '#' else l) for l in src.splitlines())
        cells.append((kind, src))
    for line in text.splitlines():
        m = re.match(r'^# %%( \[markdown\])?\s*$', line)
        if m:
            flush(); kind, buf = ('markdown' if m.group(1) else 'code'), []
        else: buf.append(line)
    flush()
    return cells

def to_nb(cells):
    out = []
    for kind, src in cells:
        lines = src.splitlines(keepends=True)
        c = dict(cell_type=kind, metadata={}, source=lines)
        if kind == 'code': c.update(execution_count=None, outputs=[])
        out.append(c)
    return dict(cells=out, metadata={"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
                nbformat=4, nbformat_minor=5)

if __name__ == '__main__':
    src, dst = sys.argv[1:3]
    Path(dst).write_text(json.dumps(to_nb(parse(Path(src).read_text())), indent=1) + '\n')
    print(f'wrote {dst}')
