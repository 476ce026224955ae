"""Wrap the lines over 120 characters in a notebook's exported cells, for `make lint` (ruff E501).

Usage: python tools/nbwrap.py nbs/NAME.ipynb [...]; then nbdev-clean, nbdev-export, and READ THE DIFF.
What it does, only where the result is still valid Python: a one-line docstring becomes a wrapped triple-quoted one;
a line inside brackets breaks after the rightmost ", " that fits (continuation aligned with the bracket), else inside
a string literal at a space (implicit concatenation; an f-string's prefix is repeated); a trailing comment of a
statement moves to its own line above. It leaves alone (and lists) what it cannot do safely, including trailing
comments inside brackets (nbdev's docments: a parameter's comment documents it). It breaks at the rightmost comma, which
may sit inside an inner tuple: prefer a hand edit where the result reads badly.
"""
import json, sys, textwrap, re
W = 120

def scan(line, cont=None):
    "Events of one line: strings, commas inside brackets, a comment. `cont`: the indent if the line continues a bracket."
    i, n = 0, len(line)
    stack = [cont - 1] if cont is not None else []           # open bracket columns
    out = []             # (col, kind, data)
    while i < n:
        c = line[i]
        if c == '#':
            out.append((i, 'comment', None)); break
        m = re.match(r'([rRbBfFuU]{0,2})("""|\'\'\'|"|\')', line[i:])
        if m and (m.group(1) == '' or not (i > 0 and (line[i-1].isalnum() or line[i-1] == '_'))):
            prefix, q = m.group(1), m.group(2)
            start = i; j = i + len(prefix) + len(q)
            fstr = 'f' in prefix.lower(); braces = 0
            safe = []    # positions of spaces where the string may be split
            while j < n:
                ch = line[j]
                if ch == '\\' and 'r' not in prefix.lower(): j += 2; continue
                if fstr and ch == '{':
                    if line[j:j+2] == '{{' and braces == 0: j += 2; continue
                    braces += 1
                elif fstr and ch == '}':
                    if line[j:j+2] == '}}' and braces == 0: j += 2; continue
                    braces -= 1
                elif line.startswith(q, j) and braces == 0:
                    break
                elif ch == ' ' and braces == 0 and len(q) == 1: safe.append(j)
                j += 1
            end = j + len(q)
            out.append((start, 'string', dict(prefix=prefix, q=q, end=end, safe=safe, depth=len(stack),
                                               indent=(stack[-1] + 1) if stack else None)))
            i = end; continue
        if c in '([{': stack.append(i)
        elif c in ')]}':
            if stack: stack.pop()
        elif c == ',' and stack and i + 1 < n and line[i+1] == ' ':
            out.append((i + 1, 'comma', dict(indent=stack[-1] + 1)))
        i += 1
    return out

def split_line(line, cont=None):
    "One long code line -> list of lines (or None if no safe split found)."
    if len(line) <= W: return [line]
    ev = scan(line, cont)
    # a trailing comment: move it above
    com = [e for e in ev if e[1] == 'comment']
    if com:
        col = com[0][0]; code = line[:col].rstrip(); ind = len(line) - len(line.lstrip())
        if code.strip() and (cont is not None or depth_after(code, 0) > 0): return None   # a docments comment: by hand
        if code.strip():
            text = line[col:].lstrip('#').strip()
            cl = textwrap.wrap(text, W - ind - 2)
            return [' ' * ind + '# ' + t for t in cl] + split_line(code)
        # a comment line: rewrap
        return [' ' * ind + '# ' + t for t in textwrap.wrap(line.strip().lstrip('#').strip(), W - ind - 2)]
    # comma break: rightmost comma before W
    commas = [e for e in ev if e[1] == 'comma' and e[0] < W - 1 and e[2]['indent'] < e[0]]
    if commas:
        col, _, d = commas[-1]
        head, tail = line[:col].rstrip(), line[col:].lstrip()
        if len(head) <= W and tail:
            rest = split_line(' ' * d['indent'] + tail, d['indent'] if (cont is not None and d['indent'] == cont) else None)
            if rest is not None: return [head] + rest
    # split a string literal at a space, inside brackets
    for col, kind, d in reversed(ev):
        if kind != 'string' or d['depth'] == 0 or col >= W: continue
        cands = [s for s in d['safe'] if s < W - 2 and s > col + len(d['prefix']) + 1]
        if not cands: continue
        s = cands[-1]
        head = line[:s + 1] + d['q']
        ind = d['indent'] if d['indent'] is not None and d['indent'] <= col else col
        ind = min(ind, col)
        tail = ' ' * ind + d['prefix'] + d['q'] + line[s + 1:]
        if len(head) <= W:
            rest = split_line(tail, cont)
            if rest is not None: return [head] + rest
    return None

def depth_after(line, depth):
    i, n, q = 0, len(line), None
    while i < n:
        c = line[i]
        if q:
            if c == '\\': i += 2; continue
            if line.startswith(q, i): i += len(q); q = None; continue
        elif c == '#': break
        elif line.startswith('"""', i) or line.startswith("'''", i): q = line[i:i+3]; i += 3; continue
        elif c in '"\'': q = c
        elif c in '([{': depth += 1
        elif c in ')]}': depth -= 1
        i += 1
    return max(depth, 0)

def docstring(line, prev, depth=0):
    s = line.strip()
    if not ((prev.rstrip().endswith(':') or depth == 0) and re.match(r'^"[^"].*"$', s) and s.count('"') == 2): return None
    ind = len(line) - len(line.lstrip())
    body = s[1:-1]
    parts = textwrap.wrap(body, W - ind - 3, break_long_words=False, break_on_hyphens=False)
    out = [' ' * ind + '"""' + parts[0]] + [' ' * ind + p for p in parts[1:]]
    out[-1] += '"""'
    return out

def fix_cell(src):
    lines = src.split('\n'); out = []; changed = bad = 0; depth = 0
    for k, l in enumerate(lines):
        before, depth = depth, depth_after(l, depth)
        if len(l) <= W: out.append(l); continue
        d = docstring(l, out[-1] if out else '', before)
        cont = (len(l) - len(l.lstrip())) if before > 0 else None
        new = d if d else split_line(l, cont)
        if new is None: out.append(l); bad += 1; print('  left as it is:', l.strip()[:100], file=sys.stderr)
        else: out.extend(new); changed += 1
    return '\n'.join(out), changed, bad

def main(p):
    nb = json.load(open(p)); tc = tb = 0
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or not src.startswith('#| export'): continue
        new, ch, b = fix_cell(src); tc += ch; tb += b
        c['source'] = new.splitlines(keepends=True)
    open(p, 'w').write(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    print(p, 'fixed', tc, 'unfixed', tb)

if __name__ == '__main__':
    for p in sys.argv[1:]: main(p)
