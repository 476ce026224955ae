"""Open every page of the docs preview (`tools/docs_preview.py`) in headless Chromium and check what a reader sees.

For each page: every plotly figure is drawn (an SVG inside its div), every formula is typeset (no KaTeX error), the
page logs no console error and raises no script error, and it makes no request off the machine (every request that
is not a local file is recorded and refused). A full-page screenshot of each page is written beside it
(`_preview/screenshots/`), to be looked at. Exit status 1 on any problem, and when Chromium is missing: this check
never skips.

Usage: python tools/docs_preview_check.py [--out _preview]
"""
import argparse, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe: raise SystemExit("docs preview check: chromium not found (make chromium installs Debian's package)")
    return exe

def check_page(browser, page_file: Path, shots: Path) -> list[str]:
    "The problems a reader would meet on one page."
    problems, requests = [], []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text[:200]}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"script error: {str(e)[:200]}"))
    def route(r):
        if r.request.url.startswith(("file://", "data:")): return r.continue_()
        requests.append(r.request.url)
        return r.abort()
    page.route("**/*", route)
    page.goto(page_file.as_uri(), wait_until="load")
    page.wait_for_timeout(300)   # KaTeX's auto-render runs on its script's load
    figures = page.locator(".preview-plotly")
    n_fig = figures.count()
    drawn = page.locator(".preview-plotly .main-svg").count()
    undrawn = page.evaluate("""() => [...document.querySelectorAll('.preview-plotly')]
        .filter(d => !d.querySelector('.main-svg')).map(d => d.id)""")
    problems += [f"figure {i} not drawn" for i in undrawn]
    n_math = page.locator(".math").count()
    untyped = page.evaluate("() => [...document.querySelectorAll('.math')].filter(e => !e.querySelector('.katex')).length")
    errors = page.locator(".katex-error").all_inner_texts()
    if untyped: problems.append(f"{untyped} of {n_math} formulas not typeset")
    problems += [f"KaTeX could not typeset: {t[:120]!r}" for t in errors]
    problems += [f"request off the machine: {u}" for u in requests]
    page.screenshot(path=str(shots / f"{page_file.stem}.png"), full_page=True)
    page.close()
    print(f"{page_file.name}: {n_fig} figures ({drawn} SVGs), {n_math} formulas, {len(problems)} problem(s)")
    return problems

def main(out: Path) -> int:
    from playwright.sync_api import sync_playwright
    pages = sorted(out.glob("*.html"))
    if not pages: raise SystemExit(f"no pages in {out}: run tools/docs_preview.py first")
    shots = out / "screenshots"
    shots.mkdir(exist_ok=True)
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=FLAGS)
        for f in pages: problems += [f"{f.name}: {pr}" for pr in check_page(browser, f, shots)]
        browser.close()
    for pr in problems: print("docs preview check:", pr)
    print(f"docs preview check: {len(pages)} pages, {len(problems)} problem(s); screenshots in {shots}")
    return 1 if problems else 0

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "_preview"))
    sys.exit(main(Path(ap.parse_args().out)))
