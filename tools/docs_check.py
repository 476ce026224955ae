"""Process every notebook as the docs build does, without Quarto (which this machine cannot install).

nbdev's docs processors execute the cells that `show_doc` needs (exported cells, imports, `#| exec_doc`); a cell
there that fails would break the site. This runs exactly that processing into `_proc/` (git-ignored) and exits
non-zero on any error. `nbdev-proc-nbs` does the same but first tries to install Quarto (with sudo).
"""
import sys
from nbdev.config import get_config
from nbdev.serve import proc_nbs

if __name__ == '__main__':  # proc_nbs starts worker processes
    cfg = get_config()
    n_src = len([p for p in cfg.nbs_path.glob('*.ipynb')])
    cache = proc_nbs(cfg.nbs_path, n_workers=2)
    n_out = len(list(cache.glob('*.ipynb')))
    print(f'docs processing: {n_out} of {n_src} notebooks processed into {cache}')
    sys.exit(0 if n_out == n_src else 1)
