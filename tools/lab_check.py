"""Drive the live explorers in JupyterLab through headless Chromium with the network cut, and check the static twins.

What it checks, as a researcher on a GPU cluster without internet would meet it:

1. JupyterLab (this Python's) opens a notebook that builds `tsw_explorer` and `alpha_explorer` on an experiment
   folder (the committed demo, `nbs/data/demo_experiment`, or `--synthetic`), and runs it. The browser may reach
   the local server only: every other request is refused and counted (must be 0), as are console errors (0).
2. Each explorer's figure draws (a `.js-plotly-plot` with at least one trace); dragging the batch slider, choosing
   another run or seed, and pressing play redraw it (the drawn counter rises and the title changes); each redraw's
   time from the user's action is printed.
3. No text of the α view (tick labels, axis and subplot titles, legend) overlaps a panel or another text.
4. The static twins saved with plotly's defaults (`fig.write_html(path)`) open in Chromium without playing (the
   frame and data are the same 2 s later), play on ▶ only, and log no console error.

Screenshots of every step go to `--shots` (default /tmp/lab_check_shots). Exit status 0 when everything holds, 1 on a
failed check, 2 when a prerequisite is missing. It installs nothing: JupyterLab comes with the `notebook` extra
(`pip install -e ".[notebook]"`), playwright with `dev`, Chromium from Debian's `chromium` package.

Usage: python tools/lab_check.py [--synthetic] [--experiment DIR] [--shots DIR] [--keep]
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOCAL = ("http://127.0.0.1:", "ws://127.0.0.1:", "http://localhost:", "ws://localhost:", "data:", "blob:", "about:")

# Boxes of every text and panel of the plotly figure in a document; pairs that intersect (more than 1 px).
OVERLAPS_JS = r"""() => {
  const gd = document.querySelector('.js-plotly-plot'); if (!gd) return ['no figure'];
  const box = (e) => e.getBoundingClientRect(), out = [];
  const items = [];
  gd.querySelectorAll('.draglayer .nsewdrag').forEach((e, i) => items.push({kind: 'panel ' + i, r: box(e), panel: 1}));
  const texts = ['.xtick text', '.ytick text', '.g-gtitle text', '.infolayer .annotation', '.legend',
                 '.infolayer [class^="g-x"][class$="title"] text', '.infolayer [class^="g-y"][class$="title"] text'];
  texts.forEach((sel) => gd.querySelectorAll(sel).forEach((e) => {
    const r = box(e); if (r.width > 0 && r.height > 0 && (e.textContent || sel === '.legend'))
      items.push({kind: sel + ' "' + (e.textContent || '').slice(0, 30) + '"', r: r, panel: 0});
  }));
  const hit = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
                        Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
    const a = items[i], b = items[j];
    if (a.panel && b.panel) continue;                                   // panels tile the plot area
    if (a.kind.startsWith('.legend') || b.kind.startsWith('.legend')) { if (!(a.panel || b.panel)) continue; }
    if (hit(a.r, b.r)) out.push(a.kind + ' overlaps ' + b.kind);
  }
  return out;
}"""

FIGURE_STATE_JS = """() => { const gd = document.getElementById('mrpo-plot');
  return gd && gd._fullLayout ? {drawn: +(gd.getAttribute('data-mrpo-drawn') || 0), title: gd._fullLayout.title.text,
          plotly_ms: +(gd.getAttribute('data-mrpo-ms') || 0), at: +(gd.getAttribute('data-mrpo-at') || 0),
          traces: document.querySelectorAll('.trace').length, message: document.getElementById('mrpo-msg').textContent,
          message_shown: getComputedStyle(document.getElementById('mrpo-msg')).display !== 'none'} : null }"""

class Check:
    "Collects pass/fail lines and timings."
    def __init__(self): self.failures, self.lines, self.times = [], [], {}
    def ok(self, cond, what):
        self.lines.append(("PASS " if cond else "FAIL ") + what)
        print(self.lines[-1], flush=True)
        if not cond: self.failures.append(what)
        return cond

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def prerequisites() -> dict:
    "Versions of what this check needs; exits 2 naming what is missing (this tool installs nothing)."
    missing, versions = [], {}
    for mod, hint in (("jupyterlab", 'pip install -e ".[notebook]"'), ("playwright", 'pip install -e ".[dev]"'),
                      ("ipykernel", 'pip install -e ".[notebook]"')):
        try: __import__(mod); versions[mod] = metadata.version(mod)
        except ImportError: missing.append(f"{mod} ({hint})")
    if not Path(CHROMIUM).exists(): missing.append(f"{CHROMIUM} (apt-get install --no-install-recommends chromium)")
    if missing: sys.exit("lab check: missing " + "; ".join(missing))
    import plotly
    versions["plotly"], versions["chromium"] = plotly.__version__, subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    return versions

def experiment(args, work: Path) -> Path:
    "The folder the explorers open: --experiment, the committed demo, or a synthetic one."
    if args.experiment: return Path(args.experiment).resolve()
    demo = ROOT / "nbs" / "data" / "demo_experiment"
    if not args.synthetic and (demo / "runs").is_dir(): return demo
    from mrpo_nb.testing import write_synthetic_experiment
    methods = ("mrpo-vaw", "mdpo-tsw-piv5", "mrpo-swcw")
    return write_synthetic_experiment(work / "synthetic", seeds=(0, 1), methods=methods)

def write_notebook(work: Path, exp: Path) -> Path:
    code = [f"from mrpo_nb.widgets import tsw_explorer, alpha_explorer\nEXP = {str(exp)!r}",
            "tsw = tsw_explorer(EXP)\ntsw", "alpha = alpha_explorer(EXP)\nalpha"]
    cells = [dict(cell_type="code", id=f"c{i}", metadata={}, execution_count=None, outputs=[], source=s)
             for i, s in enumerate(code)]
    meta = dict(kernelspec=dict(name="python3", display_name="Python 3", language="python"))
    (work / "explorers.ipynb").write_text(json.dumps(dict(cells=cells, metadata=meta, nbformat=4, nbformat_minor=5)))
    return work / "explorers.ipynb"

def start_lab(work: Path, port: int, token: str):
    "JupyterLab on 127.0.0.1 with a private config, no news and no update checks; returns the process."
    settings = work / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    quiet = {"fetchNews": "false", "checkForUpdates": False}
    (settings / "notification.jupyterlab-settings").write_text(json.dumps(quiet))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(work / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
               IPYTHONDIR=str(work / "ipython"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.extension_manager=readonly", "--allow-root"]
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(240):
        if proc.poll() is not None: sys.exit(f"lab check: JupyterLab exited early; see {work / 'lab.log'}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=1); return proc
        except OSError: time.sleep(0.25)
    proc.terminate(); sys.exit(f"lab check: JupyterLab did not answer in 60 s; see {work / 'lab.log'}")

def watch(page, blocked, errors):
    "Record console errors and script errors of the page and its frames."
    page.on("console", lambda m: errors.append(f"console: {m.text[:300]}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"script: {str(e)[:300]}"))
    page.on("websocket", lambda ws: None if ws.url.startswith(LOCAL) else blocked.append(ws.url))

def figure_state(root):
    return root.locator("iframe").first.element_handle().content_frame().evaluate(FIGURE_STATE_JS)

NOW_JS = "() => performance.timeOrigin + performance.now()"   # epoch ms, the clock the figure page stamps draws with

def wait_redraw(root, before: int, since: float, timeout: float = 20.0):
    "Seconds from `since` (epoch ms, the user's action) to the figure's next draw (its counter passes `before`)."
    t0 = time.time()
    while time.time() - t0 < timeout:
        s = figure_state(root)
        if s and s["drawn"] > before: return (s["at"] - since) / 1000
        time.sleep(0.05)
    return None

def drag_slider(page, root, to: float) -> float:
    "Drag the batch slider's handle to fraction `to` of its track, as a user would; the time of release (epoch ms)."
    track, handle = root.locator(".noUi-target").first, root.locator(".noUi-handle").first
    track.scroll_into_view_if_needed()
    tb, hb = track.bounding_box(), handle.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2); page.mouse.down()
    page.mouse.move(tb["x"] + to * tb["width"], hb["y"] + hb["height"] / 2, steps=8)
    released = page.evaluate(NOW_JS); page.mouse.up()
    return released

def check_explorer(page, c: Check, root, name: str, shots: Path):
    "The figure draws; the slider, the selector and play redraw it; the α view has no overlap."
    frame_el = root.locator("iframe").first
    frame_el.scroll_into_view_if_needed()
    t0, s = time.time(), None
    while time.time() - t0 < 60 and not (s and s["drawn"] >= 1):
        s = figure_state(root); time.sleep(0.1)
    c.ok(bool(s and s["drawn"] >= 1 and s["traces"] >= 1 and not s["message_shown"]),
         f"{name}: the figure draws ({s and s['traces']} traces): {s and s['title'][:70]!r}")
    root.screenshot(path=str(shots / f"lab_{name}_opened.png"))
    readout = root.locator(".widget-readout").first
    before, value = s["drawn"], readout.inner_text()
    dt = wait_redraw(root, before, drag_slider(page, root, 0.0))
    after = figure_state(root)
    c.ok(dt is not None and after["title"] != s["title"] and readout.inner_text() != value,
         f"{name}: dragging the slider from batch {value} to {readout.inner_text()} redraws "
         f"({'%.2f s' % dt if dt is not None else 'no redraw'} from release, of which Plotly.react "
         f"{after['plotly_ms']} ms): {after['title'][:70]!r}")
    c.times[f"{name}_slider_s"] = round(dt, 2) if dt is not None else None
    root.screenshot(path=str(shots / f"lab_{name}_slider.png"))
    select = root.locator("select").first
    if select.count():
        before, title = after["drawn"], after["title"]
        labels = select.locator("option").all_inner_texts()
        c.ok(len(set(labels)) == len(labels), f"{name}: the selector's {len(labels)} choices are unique: {labels}")
        since = page.evaluate(NOW_JS); select.select_option(index=len(labels) - 1)
        dt = wait_redraw(root, before, since); after = figure_state(root)
        c.ok(dt is not None and after["title"] != title,
             f"{name}: choosing {labels[-1]!r} redraws ({'%.2f s' % dt if dt else 'no redraw'}): "
             f"{after['title'][:70]!r}")
        c.times[f"{name}_select_s"] = round(dt, 2) if dt is not None else None
    before = after["drawn"]
    since = page.evaluate(NOW_JS)
    root.locator(".widget-play button").first.click()                 # play: the slider steps on its own
    dt = wait_redraw(root, before + 1, since, timeout=15)
    c.ok(dt is not None, f"{name}: play steps through batches (2 redraws in {'%.2f s' % dt if dt else '> 15 s'})")
    page.wait_for_timeout(1000)
    root.screenshot(path=str(shots / f"lab_{name}_played.png"))
    overlaps = frame_el.element_handle().content_frame().evaluate(OVERLAPS_JS)
    c.ok(not overlaps, f"{name}: no text overlaps a panel or another text" + (f": {overlaps[:4]}" if overlaps else ""))

def check_lab(browser, c: Check, exp: Path, work: Path, shots: Path):
    port, token = free_port(), os.urandom(8).hex()
    t0 = time.time(); proc = start_lab(work, port, token); c.times["lab_start_s"] = round(time.time() - t0, 1)
    blocked, errors = [], []
    try:
        context = browser.new_context(viewport=dict(width=1400, height=1000))
        def route(r):
            if r.request.url.startswith(LOCAL): return r.continue_()
            blocked.append(r.request.url); r.abort()
        context.route("**/*", route)
        page = context.new_page(); watch(page, blocked, errors)
        t0 = time.time()
        page.goto(f"http://127.0.0.1:{port}/lab/tree/explorers.ipynb?token={token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=90000)
        page.evaluate("""async () => { const nb = window.jupyterapp.shell.currentWidget;
            await nb.context.ready; await nb.sessionContext.ready;
            await window.jupyterapp.commands.execute('notebook:run-all-cells'); }""")
        roots = page.locator("[class*='mrpo-explorer-']")
        roots.nth(1).wait_for(timeout=120000)
        c.times["open_and_run_s"] = round(time.time() - t0, 1)
        c.ok(roots.count() == 2, f"JupyterLab {page.evaluate('window.jupyterapp.version')}: two explorers shown")
        check_explorer(page, c, roots.nth(0), "tsw", shots)
        check_explorer(page, c, roots.nth(1), "alpha", shots)
        page.screenshot(path=str(shots / "lab_notebook.png"))
        c.ok(not blocked, f"JupyterLab: no request off the machine ({len(blocked)} refused: {blocked[:3]})")
        c.ok(not errors, f"JupyterLab: no console or script error ({len(errors)}: {errors[:3]})")
        context.close()
    finally:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill()

def check_twin(browser, c: Check, fig, name: str, work: Path, shots: Path):
    "A static twin saved with plotly's defaults: drawn whole, still after 2 s, plays on ▶, no console error."
    f = work / f"{name}_twin.html"; fig.write_html(f)
    blocked, errors = [], []
    page = browser.new_page(viewport=dict(width=1300, height=1100))
    watch(page, blocked, errors)
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "about:", "blob:"))
               else (blocked.append(r.request.url), r.abort()))
    page.goto(f.as_uri()); page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30000)
    read = ("() => { const gd = document.querySelector('.js-plotly-plot'); return {active: gd._fullLayout.sliders[0]"
            ".active, title: gd._fullLayout.title.text, y: gd._fullData.map(t => Array.from(t.y || []))} }")
    first = page.evaluate(read); page.wait_for_timeout(2000); later = page.evaluate(read)
    c.ok(first == later and first["active"] == len(fig.frames) - 1,
         f"{name} twin: opens on its last batch and stays there (slider step {later['active']} after 2 s)")
    page.screenshot(path=str(shots / f"twin_{name}_opened.png"), full_page=True)
    overlaps = page.evaluate(OVERLAPS_JS)
    c.ok(not overlaps, f"{name} twin: no text overlaps a panel or another text"
         + (f": {overlaps[:4]}" if overlaps else ""))
    page.locator(".updatemenu-button").first.click()                     # ▶
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')._fullLayout.sliders[0].active < "
                           f"{len(fig.frames) - 1}", timeout=10000)      # it started from the first batch
    page.wait_for_function(f"() => document.querySelector('.js-plotly-plot')._fullLayout.sliders[0].active === "
                           f"{len(fig.frames) - 1}", timeout=60000)
    page.wait_for_timeout(600)
    end = page.evaluate(read)
    c.ok(end["title"] == fig.frames[-1].layout.title.text, f"{name} twin: ▶ plays to the last frame, drawn whole")
    page.screenshot(path=str(shots / f"twin_{name}_played.png"), full_page=True)
    c.ok(not errors and not blocked, f"{name} twin: no console error, no request ({errors[:3]}, {blocked[:3]})")
    page.close()

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", help="experiment folder to open (default: the committed demo)")
    ap.add_argument("--synthetic", action="store_true", help="a synthetic experiment instead of the demo")
    ap.add_argument("--shots", default="/tmp/lab_check_shots", help="where the screenshots go")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (notebook, lab.log)")
    args = ap.parse_args()
    t_start = time.time()
    versions = prerequisites()
    shots = Path(args.shots); shots.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lab_check_"))
    c = Check()
    try:
        from playwright.sync_api import sync_playwright
        from mrpo_nb.widgets import alpha_static_figure, tsw_static_figure
        exp = experiment(args, work); write_notebook(work, exp)
        print(f"lab check: {exp} with {versions}", flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                check_lab(browser, c, exp, work, shots)
                check_twin(browser, c, tsw_static_figure(exp), "tsw", work, shots)
                check_twin(browser, c, alpha_static_figure(exp), "alpha", work, shots)
            finally: browser.close()
    except Exception as e:   # a step that could not run is a failure too, with its reason
        c.ok(False, f"the check could not finish: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
    finally:
        if args.keep: print(f"lab check: work folder kept: {work}")
        else: shutil.rmtree(work, ignore_errors=True)
    c.times["total_s"] = round(time.time() - t_start, 1)
    (shots / "lab_check.json").write_text(json.dumps(dict(versions=versions, times=c.times, lines=c.lines), indent=1))
    print(f"lab check: {len(c.lines) - len(c.failures)}/{len(c.lines)} checks passed; times {c.times}; "
          f"screenshots in {shots}")
    sys.exit(1 if c.failures else 0)

if __name__ == "__main__":
    main()
