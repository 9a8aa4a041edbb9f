// Label and field selectors as the API server parses them (k8s.io/apimachinery/pkg/labels and
// pkg/fields), pure; shared by the local API (?labelSelector=, ?fieldSelector=) and the CLI (-l,
// --field-selector).
//
//   labels: `app=web,tier!=db`, `app==web`, `env in (a,b)`, `env notin (a)`, `key`, `!key`, `n>3`, `n<3`
//   fields: `metadata.name=web,status.phase!=Running` (`=`, `==`, `!=`; `\,` `\=` `\\` escape)

export class SelectorError extends Error {}

export type LabelOp = 'exists' | 'doesNotExist' | '=' | '!=' | 'in' | 'notin' | 'gt' | 'lt';
export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function checkKey(k: string): void {
  const name = k.includes('/') ? k.slice(k.indexOf('/') + 1) : k;
  if (!QUALIFIED_NAME.test(k) || name.length > 63 || (k.includes('/') && k.indexOf('/') > 253))
    throw new SelectorError(`unable to parse requirement: <nil>: Invalid value: ${JSON.stringify(k)}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`);
}

function checkValue(v: string): void {
  if (v.length > 63 || !LABEL_VALUE.test(v))
    throw new SelectorError(`unable to parse requirement: <nil>: Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`);
}

/** Splits on commas that are not inside parentheses. */
function splitRequirements(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (depth < 0) throw new SelectorError(`unable to parse requirement: found ')', expected: ',' or end of string`);
    if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (depth !== 0) throw new SelectorError(`unable to parse requirement: found '', expected: ')'`);
  out.push(cur);
  return out;
}

/** labels.Parse: an empty selector matches everything. */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  if (selector.trim() === '') return [];
  const reqs: LabelRequirement[] = [];
  for (const raw of splitRequirements(selector)) {
    const r = raw.trim();
    if (r === '') throw new SelectorError(`found ',', expected: !, identifier, or 'end of string'`);
    let m: RegExpExecArray | null;
    if ((m = /^!\s*([^\s=!<>(),]+)$/.exec(r))) {
      checkKey(m[1]!);
      reqs.push({ key: m[1]!, op: 'doesNotExist', values: [] });
    } else if ((m = /^([^\s=!<>(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(r))) {
      checkKey(m[1]!);
      const values = m[3]!.split(',').map((v) => v.trim());
      for (const v of values) checkValue(v);
      reqs.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.trim() === '' ? [] : values });
      if (m[2] === 'in' && m[3]!.trim() === '') throw new SelectorError(`unable to parse requirement: for 'in', 'notin' operators, values set can't be empty`);
    } else if ((m = /^([^\s=!<>(),]+)\s*(==|=|!=|>|<)\s*([^\s=!<>(),]*)$/.exec(r))) {
      checkKey(m[1]!);
      const op = m[2]!;
      if (op === '>' || op === '<') {
        if (!/^-?\d+$/.test(m[3]!)) throw new SelectorError(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer`);
        reqs.push({ key: m[1]!, op: op === '>' ? 'gt' : 'lt', values: [m[3]!] });
      } else {
        checkValue(m[3]!);
        reqs.push({ key: m[1]!, op: op === '!=' ? '!=' : '=', values: [m[3]!] });
      }
    } else if ((m = /^([^\s=!<>(),]+)$/.exec(r))) {
      checkKey(m[1]!);
      reqs.push({ key: m[1]!, op: 'exists', values: [] });
    } else throw new SelectorError(`unable to parse requirement: ${JSON.stringify(r)}: expected a key, !key, key=value, key!=value, key in (v1,v2), key notin (v1,v2)`);
  }
  return reqs;
}

export function matchLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'exists': return has;
      case 'doesNotExist': return !has;
      case '=': return has && v === r.values[0];
      case '!=': return !has || v !== r.values[0];
      case 'in': return has && r.values.includes(v!);
      case 'notin': return !has || !r.values.includes(v!);
      case 'gt': return has && /^-?\d+$/.test(v!) && Number(v) > Number(r.values[0]);
      case 'lt': return has && /^-?\d+$/.test(v!) && Number(v) < Number(r.values[0]);
    }
  });
}

export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

/** Splits on `sep` that is not escaped by a backslash. */
function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length) {
      cur += s[i]! + s[i + 1]!;
      i++;
    } else if (s[i] === sep) {
      out.push(cur);
      cur = '';
    } else cur += s[i];
  }
  out.push(cur);
  return out;
}

const unescapeField = (s: string) => s.replace(/\\(.)/g, '$1');

/** fields.ParseSelector. */
export function parseFieldSelector(selector: string): FieldRequirement[] {
  if (selector.trim() === '') return [];
  return splitUnescaped(selector, ',').map((term) => {
    const m = /^((?:\\.|[^\\=!])*?)\s*(==|!=|=)\s*((?:\\.|[^\\])*)$/.exec(term);
    if (!m || !m[1]!.trim()) throw new SelectorError(`invalid selector: '${selector}'; can't understand '${term}'`);
    return { field: unescapeField(m[1]!.trim()), op: m[2] === '!=' ? '!=' : '=', value: unescapeField(m[3]!) };
  });
}

/** The fields the API server lets select pods by (pkg/registry/core/pod PodToSelectableFields). */
export function podFields(pod: {
  metadata: { name?: string; namespace?: string };
  spec?: { nodeName?: string; restartPolicy?: string; schedulerName?: string; serviceAccountName?: string; hostNetwork?: boolean };
  status?: { phase?: string; podIP?: string; nominatedNodeName?: string };
}): Record<string, string> {
  return {
    'metadata.name': pod.metadata.name ?? '',
    'metadata.namespace': pod.metadata.namespace ?? 'default',
    'spec.nodeName': pod.spec?.nodeName ?? '',
    'spec.restartPolicy': pod.spec?.restartPolicy ?? '',
    'spec.schedulerName': pod.spec?.schedulerName ?? '',
    'spec.serviceAccountName': pod.spec?.serviceAccountName ?? '',
    'spec.hostNetwork': String(pod.spec?.hostNetwork ?? false),
    'status.phase': pod.status?.phase ?? '',
    'status.podIP': pod.status?.podIP ?? '',
    'status.nominatedNodeName': pod.status?.nominatedNodeName ?? '',
  };
}

/** Throws SelectorError (`field label not supported: X`) for a field `fields` does not have. */
export function checkFields(reqs: FieldRequirement[], supported: readonly string[]): void {
  for (const r of reqs) if (!supported.includes(r.field)) throw new SelectorError(`field label not supported: ${r.field}`);
}

export function matchFields(reqs: FieldRequirement[], fields: Record<string, string>): boolean {
  return reqs.every((r) => (r.op === '=' ? fields[r.field] === r.value : fields[r.field] !== r.value));
}

export const POD_FIELDS: readonly string[] = Object.keys(podFields({ metadata: {} }));
