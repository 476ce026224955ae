"""Render the processed notebooks (`_proc/`, made by `tools/docs_check.py`) to static HTML pages with an index.

Quarto, which builds the documentation site, cannot be installed on the machines this project is developed and
tested on. This is its stand-in, so that a person (and `tools/docs_preview_check.py`, in headless Chromium) can see
what a reader of the site would see: the prose with its maths, the code a page shows, and every output the docs
build keeps (printed values, `show_doc` tables, plotly figures). It follows the Quarto cell options the notebooks use
(`#| echo: false`, `#| output: asis`, `#| include: false`, `#| output: false`).

Everything a page needs is local: plotly.js from the plotly package, KaTeX (the site's `html-math-method`) from
`.cache/katex` (`make katex-assets` installs it from npm), and the project's `styles.css`. A remote image (the Colab
badge) becomes a plain link, so that a page makes no request off this machine.

Usage: python tools/docs_preview.py [--proc _proc] [--out _preview]
"""
import argparse, html, json, re, shutil
from pathlib import Path
import yaml
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

ROOT = Path(__file__).resolve().parents[1]
PLOTLY_JSON = "application/vnd.plotly.v1+json"
KATEX = ROOT / ".cache/katex/node_modules/katex/dist"
_md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

# Code (fenced or inline) is set aside first, so that a `$` inside code is never read as maths.
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\\w$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\w)", re.S)

def markdown(text: str) -> str:
    "Markdown with TeX maths to HTML: the maths kept verbatim (escaped) inside the delimiters KaTeX's auto-render reads."
    held = []
    def hold(s):
        held.append(s)
        return f"MATHHELD{len(held) - 1}END"
    def math(m):
        if m.group(1) is not None: return hold(f'<div class="math display">\\[{html.escape(m.group(1))}\\]</div>')
        return hold(f'<span class="math inline">\\({html.escape(m.group(2))}\\)</span>')
    parts, last = [], 0
    for m in _CODE.finditer(text):   # maths is looked for between code spans only
        parts += [_MATH.sub(math, text[last:m.start()]), m.group(0)]
        last = m.end()
    parts.append(_MATH.sub(math, text[last:]))
    # Pandoc's link attributes ([source](url){target="_blank" ...}, in show_doc's output) are Quarto's, not CommonMark's
    src = re.sub(r"(\]\([^)\s]+\))\{[^}\n]*\}", r"\1", "".join(parts))
    out = _md.render(src)
    out = re.sub(r"MATHHELD(\d+)END", lambda m: held[int(m.group(1))], out)
    return _local_images(out)

def _local_images(h: str) -> str:
    "A remote <img> becomes its alt text, so the page makes no request off the machine (the link around it stays)."
    return re.sub(r'<img [^>]*src="https?://[^"]*"[^>]*?alt="([^"]*)"[^>]*>|<img [^>]*alt="([^"]*)"[^>]*src="https?://[^"]*"[^>]*>',
                  lambda m: f'<span class="remote-image">{html.escape(m.group(1) or m.group(2) or "image")}</span>', h)

def cell_options(src: str) -> tuple[dict, str]:
    "The `#| key: value` options at the top of a code cell, and the source without them."
    opts, lines = {}, src.splitlines()
    while lines and lines[0].startswith("#|"):
        key, _, value = lines.pop(0)[2:].partition(":")
        opts[key.strip()] = value.strip() or True
    return opts, "\n".join(lines).strip("\n")

_plot_ids = iter(range(10**9))

def plotly_div(fig: dict) -> str:
    "A plotly figure (its JSON) drawn on page load by the local plotly.js."
    i = next(_plot_ids)
    spec = json.dumps(dict(data=fig.get("data", []), layout=fig.get("layout", {})), separators=(",", ":")).replace("</", "<\\/")
    return (f'<div class="preview-plotly" id="plotly-{i}"></div>\n<script>(() => {{ const f = {spec}; '
            f'Plotly.newPlot("plotly-{i}", f.data, f.layout, {{responsive: true}}); }})();</script>')

def output_html(out: dict, asis: bool) -> str:
    "One output as HTML: plotly JSON before HTML before images before markdown before text."
    kind = out.get("output_type")
    if kind == "stream": return f'<pre class="output stream">{html.escape("".join(out.get("text", "")))}</pre>'
    if kind == "error":
        return f'<pre class="output error">{html.escape(out.get("ename", "") + ": " + out.get("evalue", ""))}</pre>'
    data = out.get("data", {})
    text = lambda k: "".join(data[k]) if isinstance(data[k], list) else data[k]
    if PLOTLY_JSON in data: return plotly_div(data[PLOTLY_JSON])
    if "text/html" in data and "cdn.plot.ly" in text("text/html"):
        return ""   # plotly's notebook_connected stub, which loads plotly.js from its CDN: the JSON is drawn instead
    if "text/html" in data: return f'<div class="output html">{_local_images(text("text/html"))}</div>'
    for img in ("image/png", "image/jpeg"):
        if img in data: return f'<img class="output" src="data:{img};base64,{text(img).strip()}">'
    if "text/markdown" in data:
        return markdown(text("text/markdown")) if asis else f'<div class="output markdown">{markdown(text("text/markdown"))}</div>'
    if "text/plain" in data: return f'<pre class="output">{html.escape(text("text/plain"))}</pre>'
    return ""

def code_cell(cell: dict) -> str:
    opts, src = cell_options("".join(cell.get("source", [])))
    if str(opts.get("include", "")).lower() == "false": return ""
    parts = []
    if src and str(opts.get("echo", "")).lower() != "false":
        parts.append(highlight(src, PythonLexer(), HtmlFormatter(cssclass="source")))
    if str(opts.get("output", "")).lower() != "false":
        parts += [output_html(o, opts.get("output") == "asis") for o in cell.get("outputs", [])]
    return "\n".join(p for p in parts if p)

def inline(text) -> str:
    "A front-matter field as Quarto shows it: inline Markdown (code spans, emphasis, links), no raw HTML."
    return MarkdownIt("commonmark", {"html": False}).renderInline(str(text))

def front_matter(cell: dict) -> dict:
    src = "".join(cell.get("source", [])).strip()
    if not src.startswith("---"): return {}
    try: return yaml.safe_load(src.strip("-\n")) or {}
    except yaml.YAMLError: return {}

def page(nb: dict, name: str) -> tuple[str, dict]:
    "A notebook as one HTML body, and its front matter (title, description)."
    meta, body = {}, []
    for cell in nb["cells"]:
        if cell["cell_type"] == "raw": meta.update(front_matter(cell))
        elif cell["cell_type"] == "markdown": body.append(markdown("".join(cell["source"])))
        elif cell["cell_type"] == "code": body.append(code_cell(cell))
    head = f"<h1>{html.escape(str(meta.get('title', name)))}</h1>"
    if meta.get("description"): head += f'<p class="description">{inline(meta["description"])}</p>'
    return head + "\n".join(b for b in body if b), meta

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} – mrpo_nb (docs preview)</title>
<link rel="stylesheet" href="assets/katex/katex.min.css"><link rel="stylesheet" href="assets/styles.css">
<style>{css}</style>
<script src="assets/plotly.min.js"></script>
<script defer src="assets/katex/katex.min.js"></script>
<script defer src="assets/katex/contrib/auto-render.min.js"
  onload="renderMathInElement(document.body, {{throwOnError: false, delimiters: [
    {{left: '\\\\[', right: '\\\\]', display: true}}, {{left: '\\\\(', right: '\\\\)', display: false}}]}})"></script>
</head><body><nav><a href="index.html">mrpo_nb</a>{nav}</nav><main>{body}</main>
<footer>Static preview of the documentation site, rendered from <code>_proc/</code> by
<code>tools/docs_preview.py</code> (the site itself is built by Quarto).</footer></body></html>"""

CSS = """body{font-family:system-ui,sans-serif;margin:0;display:flex;color:#222}
nav{width:15rem;flex:none;padding:1rem;border-right:1px solid #ddd;font-size:.9rem;position:sticky;top:0;height:100vh;
overflow:auto;box-sizing:border-box}nav a{display:block;margin:.2rem 0;text-decoration:none}
main{max-width:75rem;padding:1rem 2rem;min-width:0}footer{display:none}
pre,.source{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.85rem;border-radius:4px}
pre.error{background:#fee}.description{font-size:1.1rem;color:#555}table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;font-size:.9rem}.preview-plotly{width:100%;min-height:300px}
blockquote{border-left:4px solid #ccd;margin-left:0;padding-left:1rem;color:#444}
.remote-image{font-size:.8rem;border:1px solid #ccc;padding:0 .3rem;border-radius:3px}"""

def copy_assets(out: Path):
    import plotly
    a = out / "assets"
    a.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data/plotly.min.js", a / "plotly.min.js")
    if not KATEX.exists(): raise SystemExit(f"KaTeX not found at {KATEX}: run `make katex-assets` (npm install)")
    shutil.copytree(KATEX, a / "katex", dirs_exist_ok=True)
    css = ROOT / "nbs/styles.css"
    shutil.copy(css, a / "styles.css") if css.exists() else (a / "styles.css").write_text("")

def main(proc: Path, out: Path) -> list[Path]:
    nbs = sorted(proc.glob("*.ipynb"), key=lambda p: (p.stem != "index", p.stem))
    if not nbs: raise SystemExit(f"no processed notebooks in {proc}: run tools/docs_check.py (make docs-check) first")
    if out.exists(): shutil.rmtree(out)
    copy_assets(out)
    pages = [(p.stem, *page(json.loads(p.read_text(encoding="utf-8")), p.stem)) for p in nbs]
    nav = "".join(f'<a href="{n}.html">{html.escape(str(m.get("title", n)))}</a>' for n, _, m in pages
                  if n != "index")   # the index is the "mrpo_nb" link at the top
    written = []
    for name, body, meta in pages:
        f = out / f"{name}.html"
        f.write_text(TEMPLATE.format(title=html.escape(str(meta.get("title", name))), css=CSS, nav=nav, body=body),
                     encoding="utf-8")
        written.append(f)
    rows = "".join(f'<tr><td><a href="{n}.html">{html.escape(str(m.get("title", n)))}</a></td>'
                   f'<td>{inline(m.get("description", ""))}</td></tr>' for n, _, m in pages)
    (out / "pages.html").write_text(TEMPLATE.format(title="All pages", css=CSS, nav=nav,
                                                    body=f"<h1>All pages</h1><table>{rows}</table>"), encoding="utf-8")
    written.append(out / "pages.html")
    if not (out / "index.html").exists(): shutil.copy(out / "pages.html", out / "index.html")
    return written

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proc", default=str(ROOT / "_proc"))
    ap.add_argument("--out", default=str(ROOT / "_preview"))
    a = ap.parse_args()
    files = main(Path(a.proc), Path(a.out))
    print(f"docs preview: {len(files)} pages in {a.out} (open {Path(a.out) / 'index.html'})")
