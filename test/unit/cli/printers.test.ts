// Output formats, custom columns and the column layout of `get` (src/cli/printers.ts, src/cli/client-commands.ts).
import { describe, expect, it } from 'vitest';
import { ColumnLayout, customColumnRow, eventPrinter, labelsColumn, nodePrinter, noPrinterMessage, parseCustomColumns, parseCustomColumnsFile, parseOutputFormat, PrinterError, printNonTable } from '../../../src/cli/printers.js';
import { header, podPrinter, renderGet, WatchPrinter } from '../../../src/cli/client-commands.js';
import type { Pod } from '../../../src/pod/api-types.js';

const now = new Date().toISOString();
const pod = (name: string, phase = 'Running', extra: Partial<Pod['metadata']> = {}): Pod =>
  ({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: now, labels: { app: name }, ...extra },
    spec: { containers: [{ name: 'c', image: 'busybox' }], nodeName: 'host1' },
    status: { phase, podIP: '10.1.0.2', containerStatuses: [{ name: 'c', ready: phase === 'Running', restartCount: 0, image: 'busybox', imageID: '', state: phase === 'Running' ? { running: { startedAt: now } } : { waiting: { reason: 'ContainerCreating' } } }] },
  }) as unknown as Pod;

describe('-o', () => {
  it("unknown formats: kubectl's message, allowed formats sorted", () => {
    expect(() => parseOutputFormat('xyz')).toThrow(PrinterError);
    expect(noPrinterMessage('xyz')).toBe('unable to match a printer suitable for the output format "xyz", allowed formats are: custom-columns,custom-columns-file,json,jsonpath,jsonpath-file,name,wide,yaml');
    expect(() => parseOutputFormat('json=x')).toThrow(/output format "json=x"/);
  });
  it('known formats, -o=json, jsonpath and custom-columns arguments, the file forms', () => {
    expect(parseOutputFormat(undefined)).toEqual({ kind: 'table', wide: false });
    expect(parseOutputFormat('wide')).toEqual({ kind: 'table', wide: true });
    expect(parseOutputFormat('=json')).toEqual({ kind: 'json' });
    expect(parseOutputFormat('jsonpath={.metadata.name}')).toEqual({ kind: 'jsonpath', template: '{.metadata.name}' });
    expect(parseOutputFormat('jsonpath-file=/t', () => '{.kind}')).toEqual({ kind: 'jsonpath', template: '{.kind}' });
    expect(() => parseOutputFormat('jsonpath=')).toThrow('template format specified but no template given');
    expect(() => parseOutputFormat('jsonpath={.a')).toThrow(/error parsing jsonpath \{\.a, unclosed action/);
    expect(() => parseOutputFormat('jsonpath-file=/nonexistent/x')).toThrow(/no such file/);
    expect(parseOutputFormat('custom-columns=NAME:.metadata.name,STATUS:.status.phase')).toEqual({
      kind: 'custom-columns', columns: [{ header: 'NAME', path: '{.metadata.name}' }, { header: 'STATUS', path: '{.status.phase}' }],
    });
    expect(parseOutputFormat('custom-columns-file=/f', () => 'NAME   PHASE\n.metadata.name   .status.phase\n')).toEqual({
      kind: 'custom-columns', columns: [{ header: 'NAME', path: '{.metadata.name}' }, { header: 'PHASE', path: '{.status.phase}' }],
    });
    expect(() => parseCustomColumns('NAME')).toThrow('unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>');
    expect(() => parseCustomColumnsFile('A B\n.a\n')).toThrow(/doesn't match/);
  });
  it('custom-columns cells: several results joined by commas, <none>, maps as Go prints them', () => {
    const cols = parseCustomColumns('NAME:.metadata.name,C:.spec.containers[*].name,X:.nope,L:.metadata.labels');
    expect(customColumnRow(cols, { metadata: { name: 'a', labels: { b: '2', a: '1' } }, spec: { containers: [{ name: 'x' }, { name: 'y' }] } })).toEqual(['a', 'x,y', '<none>', 'map[a:1 b:2]']);
  });
  it('name, json (4-space indent like kubectl), jsonpath over the List', () => {
    const pods = [pod('a'), pod('b')];
    expect(printNonTable({ kind: 'name' }, pods, 'pod', false)).toBe('pod/a\npod/b\n');
    expect(printNonTable({ kind: 'json' }, pods, 'pod', true)).toMatch(/^\{\n {4}"apiVersion": "v1"/);
    expect(JSON.parse(printNonTable({ kind: 'json' }, pods, 'pod', false)!).kind).toBe('List');
    expect(printNonTable({ kind: 'jsonpath', template: '{.items[*].metadata.name}' }, pods, 'pod', false)).toBe('a b');
  });
});

describe('column layout', () => {
  it("kubectl's tabwriter: widest cell + 3, at least 6, the last column unpadded", () => {
    const l = new ColumnLayout([['NAME', 'READY', 'AGE'], ['a', '1/1', '5s'], ['longer-name', '0/1', '10s']]);
    expect(l.widths).toEqual([14, 8, 6]);
    expect(l.lines([['NAME', 'READY', 'AGE'], ['a', '1/1', '5s']])).toBe('NAME          READY   AGE\na             1/1     5s\n');
    expect(new ColumnLayout([['A', 'B'], ['x', 'y']]).line(['x', 'y'])).toBe('x     y\n');
    // a cell wider than its column (a later watch row) pushes the rest
    expect(l.line(['a-name-much-longer-than-14', '1/1', '1s'])).toBe('a-name-much-longer-than-14 1/1     1s\n');
  });
  it('get pods: sorted input, wide columns, --show-labels, -A, no resources', () => {
    expect(header(true, false)).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES']);
    const wide = renderGet([pod('web')], { kind: 'table', wide: true }, podPrinter, { withNs: false, showLabels: true }).stdout;
    expect(wide).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\s+LABELS\nweb\s+1\/1\s+Running\s+0\s+\d+s\s+10\.1\.0\.2\s+host1\s+<none>\s+<none>\s+app=web\n$/);
    const all = renderGet([pod('web')], { kind: 'table', wide: false }, podPrinter, { withNs: true, showLabels: false }).stdout;
    expect(all).toMatch(/^NAMESPACE\s+NAME\s+READY/);
    expect(renderGet([], { kind: 'table', wide: false }, podPrinter, { withNs: false, showLabels: false, namespace: 'default' }).stderr).toBe('No resources found in default namespace.\n');
    expect(labelsColumn({})).toBe('<none>');
    expect(labelsColumn({ b: '1', a: '2' })).toBe('a=2,b=1');
  });
  it('watch rows keep the widths of the first rows and print one row per change', () => {
    const w = new WatchPrinter({ kind: 'table', wide: false }, podPrinter, { withNs: false, showLabels: false }, 4);
    const first = w.initial([pod('a-long-pod-name', 'Pending')]);
    const [h, r1] = first.split('\n');
    const running = w.event('MODIFIED', pod('a-long-pod-name'));
    expect(running.indexOf('1/1')).toBe(h!.indexOf('READY'));
    expect(r1!.indexOf('0/1')).toBe(h!.indexOf('READY'));
    expect(running.indexOf('Running')).toBe(h!.indexOf('STATUS'));
    expect(w.event('MODIFIED', pod('a-long-pod-name'))).toBe(''); // the same row again: nothing
    const term = pod('a-long-pod-name', 'Running', { deletionTimestamp: now });
    expect(w.event('MODIFIED', term)).toMatch(/Terminating/);
    expect(w.event('DELETED', term)).toBe(''); // no doubled Terminating
    expect(w.event('ADDED', pod('b'))).toMatch(/^b\s+1\/1/);
  });
  it('watch -o json: bare objects, or watch events with --output-watch-events', () => {
    const bare = new WatchPrinter({ kind: 'json' }, podPrinter, { withNs: false, showLabels: false });
    expect(JSON.parse(bare.event('MODIFIED', pod('a'))).metadata.name).toBe('a');
    const events = new WatchPrinter({ kind: 'json' }, podPrinter, { withNs: false, showLabels: false, outputWatchEvents: true });
    expect(JSON.parse(events.event('MODIFIED', pod('a')))).toMatchObject({ type: 'MODIFIED', object: { metadata: { name: 'a' } } });
  });
});

describe('events and nodes', () => {
  it("events: kubectl's columns, repeated events", () => {
    expect(eventPrinter.headers(false)).toEqual(['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE']);
    const t = new Date(Date.now() - 30_000).toISOString();
    const e = { metadata: { name: 'web.1' }, involvedObject: { kind: 'Pod', name: 'web' }, reason: 'BackOff', message: 'Back-off restarting', type: 'Warning', count: 3, firstTimestamp: t, lastTimestamp: now, source: { component: 'kubelet' } };
    expect(eventPrinter.row(e as never, false)).toEqual([expect.stringMatching(/^\d+s \(x3 over 3\ds\)$/), 'Warning', 'BackOff', 'pod/web', 'Back-off restarting']);
  });
  it('nodes: NAME STATUS ROLES AGE VERSION', () => {
    expect(nodePrinter.headers(false)).toEqual(['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION']);
    const n = { metadata: { name: 'h', creationTimestamp: now, labels: { 'node-role.kubernetes.io/control-plane': '' } }, spec: { unschedulable: true }, status: { conditions: [{ type: 'Ready', status: 'False' }], nodeInfo: { kubeletVersion: 'v1.36.3' } } };
    expect(nodePrinter.row(n, false)).toEqual(['h', 'NotReady,SchedulingDisabled', 'control-plane', expect.stringMatching(/^\d+s$/), 'v1.36.3']);
  });
});
