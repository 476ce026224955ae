"""Run the notebooks' tests with `nbdev-test` and close with one plain summary line.

`nbdev-test` says "Success." or lists the failing notebooks; CI wants a closing line it can read, so this
wrapper runs it (all flags passed through), counts the notebooks that were tested, and prints
`nbdev-test: N passed, M failed` (one per notebook) as its last line. Exit status is nbdev-test's.
"""
import re, subprocess, sys, time
from pathlib import Path

root = Path(__file__).resolve().parents[1]
nbs = sorted(p for p in (root/'nbs').rglob('*.ipynb') if not any(part.startswith(('.', '_')) for part in p.relative_to(root/'nbs').parts))
cmd = [str(Path(sys.executable).with_name('nbdev-test')), '--timing', '--do-print', *sys.argv[1:]]
print('running:', ' '.join(cmd), flush=True)
start = time.time()
proc = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print(proc.stdout, flush=True)
failed = set()
if proc.returncode:
    m = re.search(r'Failed On The Following Notebooks:\s*=+\s*(.*)$', proc.stdout, re.S)
    if m: failed = {ln.strip() for ln in m.group(1).splitlines() if ln.strip().endswith('.ipynb')}
    if not failed: failed = {'(nbdev-test itself)'}
n_failed = len(failed)
n_passed = max(len(nbs) - n_failed, 0) if proc.returncode else len(nbs)
print(f'tested {len(nbs)} notebooks in {time.time()-start:.0f} s')
print(f'nbdev-test: {n_passed} passed, {n_failed} failed')
sys.exit(proc.returncode)
