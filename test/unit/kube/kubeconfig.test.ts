import { mkdirSync, readFileSync as rf, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNodeletError } from '../../../src/errors.js';
import { loadKubeconfig, parseKubeconfig } from '../../../src/kube/kubeconfig.js';
import { makePki, type Pki } from './fake-apiserver.js';

let pki: Pki;
let caB64: string;
let certB64: string;
let keyB64: string;

beforeAll(() => {
  pki = makePki('system:node:kc-node');
  caB64 = rf(pki.caFile).toString('base64');
  certB64 = rf(pki.clientCertFile).toString('base64');
  keyB64 = rf(pki.clientKeyFile).toString('base64');
});
afterAll(() => pki?.cleanup());

function expectCode(fn: () => unknown, code: string, field?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isNodeletError(err), `expected a NodeletError ${code}, got ${String(err)}`).toBe(true);
  if (!isNodeletError(err)) return;
  expect(err.code).toBe(code);
  if (field) expect(String(err.details.field)).toMatch(field);
}

const inline = () => `
apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: ${caB64}
    tls-server-name: kubernetes
users:
- name: u1
  user:
    client-certificate-data: ${certB64}
    client-key-data: ${keyB64}
contexts:
- name: ctx1
  context: {cluster: c1, user: u1, namespace: team-a}
- name: ctx2
  context: {cluster: c1, user: u2}
current-context: ctx1
`;

describe('kubeconfig', () => {
  it('reads inline data, the current context, and the certificate CN', () => {
    const k = parseKubeconfig(inline(), '/nonexistent');
    expect(k.server).toBe('https://127.0.0.1:6443');
    expect(k.contextName).toBe('ctx1');
    expect(k.clusterName).toBe('c1');
    expect(k.userName).toBe('u1');
    expect(k.namespace).toBe('team-a');
    expect(k.tlsServerName).toBe('kubernetes');
    expect(k.ca?.toString()).toContain('BEGIN CERTIFICATE');
    expect(k.cert?.toString()).toContain('BEGIN CERTIFICATE');
    expect(k.key?.toString()).toMatch(/BEGIN (EC )?PRIVATE KEY/);
    expect(k.certCommonName).toBe('system:node:kc-node');
  });

  it('resolves relative file paths against the kubeconfig directory', () => {
    const sub = path.join(pki.dir, 'sub');
    mkdirSync(sub, { recursive: true });
    const file = path.join(sub, 'config');
    writeFileSync(
      file,
      `clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", certificate-authority: ../ca.crt}}]
users: [{name: u, user: {client-certificate: ../client.crt, client-key: ${pki.clientKeyFile}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    const k = loadKubeconfig(file);
    expect(k.file).toBe(file);
    expect(k.ca?.equals(rf(pki.caFile))).toBe(true);
    expect(k.cert?.equals(rf(pki.clientCertFile))).toBe(true);
    expect(k.certCommonName).toBe('system:node:kc-node');
  });

  it('reads a token and a tokenFile (resolved)', () => {
    const t = parseKubeconfig(
      `clusters: [{name: c, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {token: abc.def}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x`,
      '/',
    );
    expect(t.token).toBe('abc.def');
    writeFileSync(path.join(pki.dir, 'token'), 'tok-123\n');
    const f = parseKubeconfig(
      `clusters: [{name: c, cluster: {server: "https://h:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {tokenFile: token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x`,
      pki.dir,
    );
    expect(f.tokenFile).toBe(path.join(pki.dir, 'token'));
    expect(f.insecureSkipTLSVerify).toBe(true);
  });

  it('a chosen context overrides current-context', () => {
    expectCode(() => parseKubeconfig(inline(), '/', { context: 'ctx2' }), 'ERR_KUBECONFIG_USER_NOT_FOUND', /users\[name=u2\]/);
    expectCode(() => parseKubeconfig(inline(), '/', { context: 'nope' }), 'ERR_KUBECONFIG_CONTEXT_NOT_FOUND', /contexts\[name=nope\]/);
  });

  it('names the field of every missing or malformed piece', () => {
    const base = (cluster: string, user: string, extra = 'current-context: x') =>
      `clusters: [{name: c, cluster: ${cluster}}]\nusers: [{name: u, user: ${user}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n${extra}\n`;
    expectCode(() => loadKubeconfig(path.join(pki.dir, 'missing')), 'ERR_KUBECONFIG_READ');
    expectCode(() => parseKubeconfig('a: [b', '/'), 'ERR_KUBECONFIG_PARSE');
    expectCode(() => parseKubeconfig('- 1\n- 2\n', '/'), 'ERR_KUBECONFIG_PARSE');
    expectCode(() => parseKubeconfig(base('{server: "https://h"}', '{}', ''), '/'), 'ERR_KUBECONFIG_NO_CONTEXT', /current-context/);
    expectCode(() => parseKubeconfig(base('{server: "https://h"}', '{}').replace('cluster: c,', 'cluster: zz,'), '/'), 'ERR_KUBECONFIG_CLUSTER_NOT_FOUND', /clusters\[name=zz\]/);
    expectCode(() => parseKubeconfig(base('{}', '{}'), '/'), 'ERR_KUBECONFIG_FIELD', /clusters\[name=c\]\.cluster\.server/);
    expectCode(() => parseKubeconfig(base('{server: "not a url"}', '{}'), '/'), 'ERR_KUBECONFIG_FIELD', /\.server$/);
    expectCode(() => parseKubeconfig(base('{server: "ftp://h"}', '{}'), '/'), 'ERR_KUBECONFIG_FIELD', /\.server$/);
    expectCode(() => parseKubeconfig(base('{server: 5}', '{}'), '/'), 'ERR_KUBECONFIG_FIELD', /\.server$/);
    expectCode(() => parseKubeconfig(base('{server: "https://h", certificate-authority-data: "!!!"}', '{}'), '/'), 'ERR_KUBECONFIG_FIELD', /certificate-authority-data/);
    expectCode(() => parseKubeconfig(base('{server: "https://h", certificate-authority-data: "aGVsbG8="}', '{}'), '/'), 'ERR_KUBECONFIG_FIELD', /certificate-authority/);
    expectCode(() => parseKubeconfig(base('{server: "https://h", certificate-authority: nope.crt}', '{}'), pki.dir), 'ERR_KUBECONFIG_READ', /certificate-authority$/);
    expectCode(() => parseKubeconfig(base('{server: "https://h"}', `{client-certificate-data: ${certB64}}`), '/'), 'ERR_KUBECONFIG_CREDENTIALS', /client-key/);
    expectCode(() => parseKubeconfig(base('{server: "https://h"}', `{client-key-data: ${keyB64}}`), '/'), 'ERR_KUBECONFIG_CREDENTIALS', /client-certificate/);
    expectCode(() => parseKubeconfig(base('{server: "https://h"}', `{client-certificate-data: ${certB64}, client-key-data: ${certB64}}`), '/'), 'ERR_KUBECONFIG_FIELD', /client-key/);
    expectCode(() => parseKubeconfig(base('{server: "https://h"}', '{exec: {command: aws}}'), '/'), 'ERR_KUBECONFIG_UNSUPPORTED', /\.exec$/);
    expectCode(() => parseKubeconfig(base('{server: "https://h"}', '{tokenFile: /nonexistent/token}'), '/'), 'ERR_KUBECONFIG_READ', /tokenFile/);
    expectCode(() => parseKubeconfig('clusters: 5\ncurrent-context: x\ncontexts: [{name: x, context: {cluster: c}}]', '/'), 'ERR_KUBECONFIG_FIELD', /^clusters$/);
  });
});
