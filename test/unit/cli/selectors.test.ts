// Label and field selectors (src/api/selectors.ts) as apimachinery's labels.Parse and fields.ParseSelector.
import { describe, expect, it } from 'vitest';
import { checkFields, matchFields, matchLabels, parseFieldSelector, parseLabelSelector, podFields, POD_FIELDS, SelectorError } from '../../../src/api/selectors.js';

const web = { app: 'web', tier: 'frontend', env: 'prod' };
const db = { app: 'db', tier: 'db' };
const sel = (s: string, l: Record<string, string> | undefined) => matchLabels(parseLabelSelector(s), l);

describe('label selectors', () => {
  it('equality: =, ==, !=, several requirements are ANDed', () => {
    expect(sel('app=web', web)).toBe(true);
    expect(sel('app==web', web)).toBe(true);
    expect(sel('app=web', db)).toBe(false);
    expect(sel('app=web,tier!=db', web)).toBe(true);
    expect(sel('tier!=db', db)).toBe(false);
    expect(sel('tier!=db', {})).toBe(true); // != matches a missing label
    expect(sel('app=web,env=dev', web)).toBe(false);
  });
  it('set-based: in, notin, exists, !key', () => {
    expect(sel('env in (prod,staging)', web)).toBe(true);
    expect(sel('env in (a,b)', web)).toBe(false);
    expect(sel('env in (a,b)', db)).toBe(false);
    expect(sel('env notin (a,b)', db)).toBe(true);
    expect(sel('env notin (prod)', web)).toBe(false);
    expect(sel('env', web)).toBe(true);
    expect(sel('env', db)).toBe(false);
    expect(sel('!env', db)).toBe(true);
    expect(sel('!env', web)).toBe(false);
    expect(sel('app in (web, db),!env', db)).toBe(true);
  });
  it('gt/lt, qualified keys, the empty selector', () => {
    expect(sel('n>3', { n: '5' })).toBe(true);
    expect(sel('n<3', { n: '5' })).toBe(false);
    expect(sel('app.kubernetes.io/name=x', { 'app.kubernetes.io/name': 'x' })).toBe(true);
    expect(sel('', undefined)).toBe(true);
    expect(parseLabelSelector('env in (a,b)')).toEqual([{ key: 'env', op: 'in', values: ['a', 'b'] }]);
  });
  it('errors', () => {
    expect(() => parseLabelSelector('app=web,')).toThrow(SelectorError);
    expect(() => parseLabelSelector('env in (a,b')).toThrow(SelectorError);
    expect(() => parseLabelSelector('a=b c')).toThrow(SelectorError);
    expect(() => parseLabelSelector('-bad=x')).toThrow(/Invalid value/);
    expect(() => parseLabelSelector('n>x')).toThrow(/integer/);
    expect(() => parseLabelSelector('app=(web')).toThrow(/unable to parse/);
  });
  it('the forms kubectl -l takes (nodelet get/logs -l)', () => {
    expect(sel('app=web', { app: 'web' })).toBe(true);
    expect(sel('app==web', { app: 'db' })).toBe(false);
    expect(sel('app=web,tier!=db', { app: 'web', tier: 'front' })).toBe(true);
    expect(sel('env in (a, b)', { env: 'b' })).toBe(true);
    expect(sel('env notin (a,b),app', { env: 'c', app: 'x' })).toBe(true);
    expect(sel('!legacy', { legacy: '1' })).toBe(false);
    expect(sel('', { any: 'thing' })).toBe(true);
  });
});

describe('field selectors', () => {
  const pod = { metadata: { name: 'web', namespace: 'prod' }, spec: { nodeName: 'node1' }, status: { phase: 'Running' } };
  const f = (s: string) => matchFields(parseFieldSelector(s), podFields(pod));
  it('=, ==, != on pod fields', () => {
    expect(f('metadata.name=web')).toBe(true);
    expect(f('metadata.name==web')).toBe(true);
    expect(f('metadata.name!=web')).toBe(false);
    expect(f('status.phase=Running,metadata.namespace=prod')).toBe(true);
    expect(f('status.phase=Pending')).toBe(false);
    expect(f('spec.nodeName=node1')).toBe(true);
    expect(f('spec.nodeName!=node2')).toBe(true);
    expect(f('')).toBe(true);
  });
  it('escapes, unknown fields, malformed terms', () => {
    expect(parseFieldSelector('metadata.name=a\\,b')).toEqual([{ field: 'metadata.name', op: '=', value: 'a,b' }]);
    expect(() => checkFields(parseFieldSelector('spec.foo=x'), POD_FIELDS)).toThrow('field label not supported: spec.foo');
    expect(() => parseFieldSelector('metadata.name')).toThrow(SelectorError);
  });
});
