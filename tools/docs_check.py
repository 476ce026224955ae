"""Process every notebook as the docs build does, without Quarto (which this machine cannot install), and check figures.

nbdev's docs processors execute the cells that `show_doc` needs (exported cells, imports, `#| exec_doc`); a cell
there that fails would break the site. This runs exactly that processing into `_proc/` (git-ignored) and exits
non-zero on any error. `nbdev-proc-nbs` does the same but first tries to install Quarto (with sudo).

Then every figure cell of the processed notebooks is checked (see CONTRIBUTING.md, "Outputs in the docs"): a cell that
displays a plotly figure must have its output there (run it in the docs build with `#| exec_doc`), stored as plotly
JSON (`application/vnd.plotly.v1+json`), never as HTML that inlines plotly.js. A figure cell is one whose output holds
a plotly figure, or whose last line shows one: `fig`, `fig_...(...)`, `..._figure(...)`, or `....show()`.
"""
import json, re, sys
from pathlib import Path

PLOTLY_JSON = "application/vnd.plotly.v1+json"
_SHOWS_FIGURE = re.compile(r"^(fig\w*|(\w+\.)*(fig_\w+|\w+_figure)\(.*\)|[\w.\[\]'\"]+\.show\(.*\))$")

def _last_line(src: str) -> str:
    lines = [ln.strip() for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return re.sub(r"\s+#.*$", "", lines[-1]) if lines else ""   # a trailing comment is not part of the expression

def figure_problems(nb_paths) -> list[str]:
    "Figure cells without an output, or with a figure stored as anything but plotly JSON (plotly.js inlined)."
    problems = []
    for p in sorted(Path(x) for x in nb_paths):
        for i, cell in enumerate(json.loads(p.read_text(encoding="utf-8"))["cells"]):
            if cell.get("cell_type") != "code": continue
            src = "".join(cell.get("source", []))
            outs = cell.get("outputs", [])
            mimes = {m for o in outs for m in o.get("data", {})}
            html = "".join("".join(o["data"]["text/html"]) for o in outs if "text/html" in o.get("data", {}))
            shows = bool(_SHOWS_FIGURE.match(_last_line(src))) or PLOTLY_JSON in mimes or "plotly" in html.lower()
            if not shows: continue
            where = f"{p.name} cell {i} ({_last_line(src)[:60]!r})"
            if not outs: problems.append(f"{where}: a figure cell without output: mark it #| exec_doc"); continue
            if PLOTLY_JSON not in mimes and ("plotly" in html.lower()):
                problems.append(f"{where}: the figure is not stored as plotly JSON ({PLOTLY_JSON})")
            if "plotly.js v" in html or len(html) > 1_000_000:
                problems.append(f"{where}: the output inlines plotly.js ({len(html):,} characters of HTML)")
    return problems

def description_problems(nb_paths) -> list[str]:
    """Title cells whose `> description` spans several lines: the docs site (fastcore's `md_frontmatter`) takes only
    the first `>` line as the page's description, so the rest would be cut off mid-sentence."""
    problems = []
    for p in sorted(Path(x) for x in nb_paths):
        cells = json.loads(p.read_text(encoding="utf-8"))["cells"]
        md = next((c for c in cells if c.get("cell_type") == "markdown"), None)
        quoted = [ln for ln in "".join(md["source"] if md else []).splitlines() if ln.startswith(">")]
        if len(quoted) > 1: problems.append(f"{p.name}: its description spans {len(quoted)} '>' lines; make it one")
    return problems

if __name__ == '__main__':  # proc_nbs starts worker processes
    from nbdev.config import get_config
    from nbdev.serve import proc_nbs
    cfg = get_config()
    n_src = len([p for p in cfg.nbs_path.glob('*.ipynb')])
    cache = proc_nbs(cfg.nbs_path, n_workers=2)
    procd = list(cache.glob('*.ipynb'))
    print(f'docs processing: {len(procd)} of {n_src} notebooks processed into {cache}')
    problems = figure_problems(procd)
    for pr in problems: print('figure check:', pr)
    print(f'figure check: {len(problems)} problem(s)')
    described = description_problems(cfg.nbs_path.glob('*.ipynb'))
    for pr in described: print('description check:', pr)
    print(f'description check: {len(described)} problem(s)')
    sys.exit(0 if len(procd) == n_src and not problems and not described else 1)
