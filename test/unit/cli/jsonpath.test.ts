// kubectl's JSONPath (src/cli/jsonpath.ts) against the examples of the kubectl JSONPath support page
// (kubernetes.io/docs/reference/kubectl/jsonpath) and client-go's jsonpath tests.
import { describe, expect, it } from 'vitest';
import { executeJsonPath, findResults, JsonPathError, relaxedJsonPath } from '../../../src/cli/jsonpath.js';

// the input of the documentation page
const doc = {
  kind: 'List',
  items: [
    {
      kind: 'None',
      metadata: { name: '127.0.0.1', labels: { 'kubernetes.io/hostname': '127.0.0.1' } },
      status: { capacity: { cpu: '4' }, addresses: [{ type: 'LegacyHostIP', address: '127.0.0.1' }] },
    },
    {
      kind: 'None',
      metadata: { name: '127.0.0.2' },
      status: { capacity: { cpu: '8' }, addresses: [{ type: 'LegacyHostIP', address: '127.0.0.2' }, { type: 'another', address: '127.0.0.3' }] },
    },
  ],
  users: [
    { name: 'myself', user: {} },
    { name: 'e2e', user: { username: 'admin', password: 'secret' } },
  ],
};

const pods = {
  apiVersion: 'v1',
  kind: 'List',
  items: [
    { metadata: { name: 'web', labels: { app: 'web', 'app.kubernetes.io/name': 'frontend' } }, spec: { containers: [{ name: 'c', image: 'busybox' }, { name: 'side', image: 'nginx' }] }, status: { phase: 'Running', podIP: '10.0.0.5' } },
    { metadata: { name: 'db', labels: { app: 'db' } }, spec: { containers: [{ name: 'c', image: 'postgres' }] }, status: { phase: 'Pending' } },
  ],
};

describe('kubectl JSONPath: the documented examples', () => {
  const cases: [string, string][] = [
    ['{.kind}', 'List'],
    ["{['kind']}", 'List'],
    ['{$.kind}', 'List'],
    ['{..name}', '127.0.0.1 127.0.0.2 myself e2e'],
    ['{.items[*].metadata.name}', '127.0.0.1 127.0.0.2'],
    ['{.users[0].name}', 'myself'],
    ["{.items[*]['metadata.name', 'status.capacity']}", '127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}'],
    ['{.items[?(@.metadata.name=="127.0.0.1")].status.capacity}', '{"cpu":"4"}'],
    ['{.users[?(@.name=="e2e")].user.password}', 'secret'],
    ['{.items[0].metadata.labels.kubernetes\\.io/hostname}', '127.0.0.1'],
    ['{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}', '[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] '],
    ['{.items[-1:].metadata.name}', '127.0.0.2'],
    ['{.items[0:1].metadata.name}', '127.0.0.1'],
    ['{.items[*].status.addresses[*].address}', '127.0.0.1 127.0.0.2 127.0.0.3'],
    ['{.items[1].status.addresses[?(@.type!="LegacyHostIP")].address}', '127.0.0.3'],
  ];
  for (const [tpl, want] of cases) it(tpl, () => expect(executeJsonPath(tpl, doc)).toBe(want));
});

describe('kubectl JSONPath on pods', () => {
  it('range with tabs and newlines (string literals)', () => {
    expect(executeJsonPath('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', pods)).toBe('web\tRunning\ndb\tPending\n');
  });
  it('filters on a container name; labels; quoted keys', () => {
    expect(executeJsonPath('{.items[0].spec.containers[?(@.name=="side")].image}', pods)).toBe('nginx');
    expect(executeJsonPath('{.items[*].spec.containers[?(@.name=="c")].image}', pods)).toBe('busybox postgres');
    expect(executeJsonPath('{.items[0].metadata.labels.app}', pods)).toBe('web');
    expect(executeJsonPath("{.items[0].metadata.labels['app.kubernetes.io/name']}", pods)).toBe('frontend');
  });
  it('existence filter, wildcards, text outside actions', () => {
    expect(executeJsonPath('{.items[?(@.status.podIP)].metadata.name}', pods)).toBe('web');
    expect(executeJsonPath('{.items[0].metadata.labels.*}', pods)).toBe('web frontend');
    expect(executeJsonPath('names: {.items[*].metadata.name}!', pods)).toBe('names: web db!');
  });
  it('missing keys and out-of-range indexes print nothing; objects print as JSON', () => {
    expect(executeJsonPath('{.items[0].metadata.nope}', pods)).toBe('');
    expect(executeJsonPath('{.items[7].metadata.name}', pods)).toBe('');
    expect(executeJsonPath('{.items[1].metadata.labels}', pods)).toBe('{"app":"db"}');
    expect(executeJsonPath('{.items[1].spec.containers[*].name}', pods)).toBe('c');
  });
  it('negative index, slice steps, numeric comparison', () => {
    const d = { a: [0, 1, 2, 3, 4, 5], objs: [{ n: 1 }, { n: 5 }, { n: 9 }] };
    expect(executeJsonPath('{.a[-1]}', d)).toBe('5');
    expect(executeJsonPath('{.a[0:6:2]}', d)).toBe('0 2 4');
    expect(executeJsonPath('{.a[1:3]}', d)).toBe('1 2');
    expect(executeJsonPath('{.objs[?(@.n>4)].n}', d)).toBe('5 9');
    expect(executeJsonPath('{.objs[?(@.n<=5)].n}', d)).toBe('1 5');
  });
  it('parse errors', () => {
    expect(() => executeJsonPath('{.items[*]', pods)).toThrow(JsonPathError);
    expect(() => executeJsonPath('{range .items[*]}{.a}', pods)).toThrow(/unclosed range/);
    expect(() => executeJsonPath('{end}', pods)).toThrow(/not in range/);
    expect(() => executeJsonPath('{.items[x]}', pods)).toThrow(/invalid array index/);
  });
  it('relaxed expressions of custom columns', () => {
    expect(relaxedJsonPath('.metadata.name')).toBe('{.metadata.name}');
    expect(relaxedJsonPath('metadata.name')).toBe('{.metadata.name}');
    expect(relaxedJsonPath('{.metadata.name}')).toBe('{.metadata.name}');
    expect(relaxedJsonPath('{metadata.name}')).toBe('{.metadata.name}');
    expect(findResults('{.spec.containers[*].name}', pods.items[0])).toEqual(['c', 'side']);
  });
});
