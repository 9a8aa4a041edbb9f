// kubectl's JSONPath dialect (k8s.io/client-go/util/jsonpath), pure: a template of text and `{…}` actions.
//
//   {.items[*].metadata.name}                  fields, wildcards; several results are joined by a space
//   {.items[0]} {.items[-1:]} {.items[0:4:2]}  index (negative from the end), slices [start:end:step]
//   {.metadata.labels['app.kubernetes.io/name']} {['a','b']}  quoted keys, unions
//   {..name}                                   recursive descent
//   {.spec.containers[?(@.name=="c")].image}   filters: == != < > <= >=, or existence [?(@.x)]
//   {range .items[*]}{.metadata.name}{"\t"}{end}  iteration; string literals with \n \t \" \\
//
// Missing keys print nothing (kubectl sets AllowMissingKeys); strings print raw, numbers and booleans as
// text, objects and arrays as compact JSON.

export class JsonPathError extends Error {}

type Seg =
  | { t: 'field'; name: string } // '*' = every value
  | { t: 'recursive' }
  | { t: 'index'; items: IndexItem[] }
  | { t: 'filter'; left: Operand; op?: string; right?: Operand };

type IndexItem = { kind: 'key'; key: string } | { kind: 'index'; i: number } | { kind: 'slice'; start?: number; end?: number; step?: number } | { kind: 'all' };

type Operand = { t: 'path'; root: '@' | '$'; segs: Seg[] } | { t: 'literal'; value: unknown };

type Node =
  | { t: 'text'; text: string }
  | { t: 'path'; root: '@' | '$'; segs: Seg[] }
  | { t: 'literal'; value: string }
  | { t: 'range'; path: { root: '@' | '$'; segs: Seg[] }; body: Node[] };

// ------------------------------------------------------------------ parsing

/** Parses a template; throws JsonPathError (kubectl: `error parsing jsonpath TEMPLATE, REASON`). */
export function parseJsonPath(template: string): Node[] {
  const stack: Node[][] = [[]];
  const ranges: Extract<Node, { t: 'range' }>[] = [];
  let i = 0;
  let text = '';
  const flush = () => {
    if (text) stack.at(-1)!.push({ t: 'text', text });
    text = '';
  };
  while (i < template.length) {
    const ch = template[i]!;
    if (ch !== '{') {
      text += ch;
      i++;
      continue;
    }
    flush();
    const end = findClose(template, i + 1);
    if (end < 0) throw new JsonPathError('unclosed action');
    const action = template.slice(i + 1, end).trim();
    i = end + 1;
    if (action === 'end') {
      const r = ranges.pop();
      if (!r) throw new JsonPathError('not in range, nothing to end');
      stack.pop();
      continue;
    }
    const m = /^range\s+([\s\S]*)$/.exec(action);
    if (m) {
      const p = parseExpression(m[1]!.trim());
      if (p.t !== 'path') throw new JsonPathError(`range over a literal: ${m[1]}`);
      const r: Extract<Node, { t: 'range' }> = { t: 'range', path: p, body: [] };
      stack.at(-1)!.push(r);
      ranges.push(r);
      stack.push(r.body);
      continue;
    }
    for (const part of splitTopLevel(action, ' ')) stack.at(-1)!.push(parseExpression(part));
  }
  flush();
  if (ranges.length) throw new JsonPathError('unclosed range, missing {end}');
  return stack[0]!;
}

/** The index of the `}` closing an action that starts at `from`, skipping quoted strings and brackets. */
function findClose(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"' || c === "'") {
      i = skipString(s, i);
      if (i < 0) return -1;
    } else if (c === '[' || c === '(') depth++;
    else if (c === ']' || c === ')') depth--;
    else if (c === '}' && depth <= 0) return i;
  }
  return -1;
}

function skipString(s: string, at: number): number {
  const q = s[at]!;
  for (let i = at + 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === q) return i;
  }
  return -1;
}

/** Splits on `sep` outside strings, brackets and parentheses. */
function splitTopLevel(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"' || c === "'") {
      const j = skipString(s, i);
      if (j < 0) throw new JsonPathError(`unterminated string in ${s}`);
      cur += s.slice(i, j + 1);
      i = j;
      continue;
    }
    if (c === '[' || c === '(') depth++;
    if (c === ']' || c === ')') depth--;
    if (c === sep && depth === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function unquote(lit: string): string {
  const q = lit[0]!;
  const body = lit.slice(1, -1);
  return body.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", '0': '\0' })[c] ?? (c === q ? c : `\\${c}`));
}

function parseExpression(expr: string): Extract<Node, { t: 'path' | 'literal' }> {
  if (expr.startsWith('"') || expr.startsWith("'")) {
    if (skipString(expr, 0) !== expr.length - 1) throw new JsonPathError(`unterminated string ${expr}`);
    return { t: 'literal', value: unquote(expr) };
  }
  return { t: 'path', ...parsePath(expr) };
}

function parsePath(expr: string): { root: '@' | '$'; segs: Seg[] } {
  let i = 0;
  let root: '@' | '$' = '@';
  if (expr[0] === '$' || expr[0] === '@') {
    root = expr[0] === '$' ? '$' : '@';
    i = 1;
  }
  const segs: Seg[] = [];
  const ident = /[A-Za-z0-9_\-/*\\]/;
  const readName = () => {
    let name = '';
    while (i < expr.length && (ident.test(expr[i]!) || (expr[i] === '\\' && i + 1 < expr.length))) {
      if (expr[i] === '\\') {
        name += expr[i + 1]; // `\.` escapes a dot inside a key
        i += 2;
      } else name += expr[i++];
    }
    return name;
  };
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '.') {
      if (expr[i + 1] === '.') {
        segs.push({ t: 'recursive' });
        i += 2;
        if (expr[i] === '[') continue;
      } else i++;
      if (i >= expr.length) break; // `{.}`: the current object
      if (expr[i] === '[') continue;
      const name = readName();
      if (!name) throw new JsonPathError(`unrecognized character in action: ${JSON.stringify(expr[i])}`);
      segs.push({ t: 'field', name });
    } else if (c === '[') {
      const end = matchBracket(expr, i);
      if (end < 0) throw new JsonPathError(`unterminated array`);
      segs.push(parseBracket(expr.slice(i + 1, end).trim()));
      i = end + 1;
    } else if (/[A-Za-z_]/.test(c) && segs.length === 0) {
      segs.push({ t: 'field', name: readName() }); // `{metadata.name}` without the leading dot
    } else if (c === ' ') i++;
    else throw new JsonPathError(`unrecognized character in action: ${JSON.stringify(c)}`);
  }
  return { root, segs };
}

function matchBracket(s: string, at: number): number {
  let depth = 0;
  for (let i = at; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"' || c === "'") {
      i = skipString(s, i);
      if (i < 0) return -1;
    } else if (c === '[') depth++;
    else if (c === ']' && --depth === 0) return i;
  }
  return -1;
}

function parseBracket(inner: string): Seg {
  if (inner.startsWith('?')) {
    const m = /^\?\s*\(([\s\S]*)\)$/.exec(inner);
    if (!m) throw new JsonPathError(`invalid filter: [${inner}]`);
    return parseFilter(m[1]!.trim());
  }
  const items: IndexItem[] = splitTopLevel(inner, ',').map((p): IndexItem => {
    if (p === '*') return { kind: 'all' };
    if (p.startsWith('"') || p.startsWith("'")) return { kind: 'key', key: unquote(p) };
    if (p.includes(':')) {
      const parts = p.split(':').map((x) => x.trim());
      if (parts.length > 3) throw new JsonPathError(`invalid array index ${p}`);
      const num = (x: string | undefined) => {
        if (x === undefined || x === '') return undefined;
        if (!/^-?\d+$/.test(x)) throw new JsonPathError(`invalid array index ${p}`);
        return Number(x);
      };
      return { kind: 'slice', start: num(parts[0]), end: num(parts[1]), step: num(parts[2]) };
    }
    if (/^-?\d+$/.test(p)) return { kind: 'index', i: Number(p) };
    throw new JsonPathError(`invalid array index ${p}`);
  });
  if (!items.length) throw new JsonPathError('empty array index');
  return { t: 'index', items };
}

function parseFilter(s: string): Seg {
  const m = /^(.+?)\s*(==|!=|<=|>=|<|>|=~)\s*(.+)$/.exec(s);
  if (!m) return { t: 'filter', left: parseOperand(s) };
  if (m[2] === '=~') throw new JsonPathError(`regular expressions are not supported in filters: ${s}`);
  return { t: 'filter', left: parseOperand(m[1]!.trim()), op: m[2], right: parseOperand(m[3]!.trim()) };
}

function parseOperand(s: string): Operand {
  if (s.startsWith('"') || s.startsWith("'")) return { t: 'literal', value: unquote(s) };
  if (/^-?\d+(\.\d+)?$/.test(s)) return { t: 'literal', value: Number(s) };
  if (s === 'true' || s === 'false') return { t: 'literal', value: s === 'true' };
  if (s === 'nil' || s === 'null') return { t: 'literal', value: null };
  if (s.startsWith('@') || s.startsWith('$')) return { t: 'path', ...parsePath(s) };
  throw new JsonPathError(`unrecognized identifier ${s}`);
}

// ------------------------------------------------------------------ evaluation

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function children(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (isObj(v)) return Object.keys(v).sort().map((k) => v[k]);
  return [];
}

function descendants(v: unknown, out: unknown[] = []): unknown[] {
  out.push(v);
  for (const c of children(v)) descendants(c, out);
  return out;
}

function sliceOf(arr: unknown[], s: { start?: number; end?: number; step?: number }): unknown[] {
  const n = arr.length;
  const step = s.step ?? 1;
  if (step === 0) throw new JsonPathError('step must not be 0');
  const norm = (x: number) => (x < 0 ? Math.max(0, n + x) : Math.min(n, x));
  const out: unknown[] = [];
  if (step > 0) {
    const a = s.start === undefined ? 0 : norm(s.start);
    const b = s.end === undefined ? n : norm(s.end);
    for (let i = a; i < b; i += step) out.push(arr[i]);
  } else {
    const a = s.start === undefined ? n - 1 : Math.min(n - 1, s.start < 0 ? n + s.start : s.start);
    const b = s.end === undefined ? -1 : s.end < 0 ? n + s.end : s.end;
    for (let i = a; i > b && i >= 0; i += step) out.push(arr[i]);
  }
  return out;
}

function applySeg(values: unknown[], seg: Seg, root: unknown): unknown[] {
  // a union ([0,1], ['a','b']) takes each of its members over all values in turn, as client-go's evalUnion
  // (a quoted member of a union is a path: ['metadata.name', 'status.capacity'], as kubectl's documentation shows)
  if (seg.t === 'index' && seg.items.length > 1)
    return seg.items.flatMap((it) =>
      it.kind === 'key' ? values.flatMap((v) => evalPath({ root: '@', ...parsePathOf(it.key) }, v, root)) : applySeg(values, { t: 'index', items: [it] }, root),
    );
  const out: unknown[] = [];
  for (const v of values) {
    switch (seg.t) {
      case 'recursive':
        out.push(...descendants(v));
        break;
      case 'field':
        if (seg.name === '*') out.push(...children(v));
        else if (isObj(v) && seg.name in v) out.push(v[seg.name]);
        break;
      case 'index':
        for (const it of seg.items) {
          if (it.kind === 'all') out.push(...children(v));
          else if (it.kind === 'key') {
            if (isObj(v) && it.key in v) out.push(v[it.key]);
          } else if (Array.isArray(v)) {
            if (it.kind === 'index') {
              const i = it.i < 0 ? v.length + it.i : it.i;
              if (i >= 0 && i < v.length) out.push(v[i]);
            } else out.push(...sliceOf(v, it));
          }
        }
        break;
      case 'filter':
        for (const el of children(v)) if (filterMatches(el, seg, root)) out.push(el);
        break;
    }
  }
  return out;
}

function parsePathOf(key: string): { segs: Seg[] } {
  return { segs: parsePath(key.startsWith('.') || key.startsWith('[') ? key : `.${key}`).segs };
}

function evalPath(p: { root: '@' | '$'; segs: Seg[] }, cur: unknown, root: unknown): unknown[] {
  let values = [p.root === '$' ? root : cur];
  for (const s of p.segs) values = applySeg(values, s, root);
  return values;
}

function operandValues(o: Operand, el: unknown, root: unknown): unknown[] {
  return o.t === 'literal' ? [o.value] : evalPath(o, el, root);
}

function filterMatches(el: unknown, f: Extract<Seg, { t: 'filter' }>, root: unknown): boolean {
  const left = operandValues(f.left, el, root);
  if (!f.op) return left.length > 0 && left.some((x) => x !== null && x !== undefined);
  const right = operandValues(f.right!, el, root);
  return left.some((a) => right.some((b) => compare(a, f.op!, b)));
}

function compare(a: unknown, op: string, b: unknown): boolean {
  if (op === '==') return a === b || (typeof a === 'number' && typeof b === 'number' && a === b);
  if (op === '!=') return a !== b;
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) return false;
  const x = a as number | string;
  const y = b as number | string;
  return op === '<' ? x < y : op === '>' ? x > y : op === '<=' ? x <= y : x >= y;
}

/** How kubectl prints one result. */
export function formatValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function render(nodes: Node[], cur: unknown, root: unknown): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.text;
    else if (n.t === 'literal') out += n.value;
    else if (n.t === 'path') out += evalPath(n, cur, root).map(formatValue).join(' ');
    else for (const v of evalPath(n.path, cur, root)) out += render(n.body, v, root);
  }
  return out;
}

/** Evaluates a template against `data` (kubectl -o jsonpath=TEMPLATE). */
export function executeJsonPath(template: string, data: unknown): string {
  return render(parseJsonPath(template), data, data);
}

/** The results of one path expression (`{…}` or bare), for custom columns. */
export function findResults(template: string, data: unknown): unknown[] {
  const nodes = parseJsonPath(template);
  const out: unknown[] = [];
  for (const n of nodes) {
    if (n.t === 'path') out.push(...evalPath(n, data, data));
    else if (n.t === 'literal') out.push(n.value);
  }
  return out;
}

/** kubectl's RelaxedJSONPathExpression: `a.b`, `.a.b`, `{a.b}`, `{.a.b}` → `{.a.b}`. */
export function relaxedJsonPath(expr: string): string {
  if (expr === '') return expr;
  const m = /^\{\.?([^{}]+)\}$|^\.?([^{}]+)$/.exec(expr);
  if (!m) throw new JsonPathError("unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'");
  const spec = m[1] ?? m[2]!;
  return `{.${spec}}`;
}
