// kubectl's output and get verbs with the real CLI bundle against a real daemon: -o formats (jsonpath,
// custom-columns, name, an unknown one), get pods (sorted, wide, -l, --show-labels, --field-selector),
// the API's labelSelector/fieldSelector (lists and watches), get -w alignment and -o json watch output,
// get events, get nodes (GET /api/v1/nodes), delete -f, version.
import { afterEach, describe, expect, it } from 'vitest';
import { BUSYBOX, makeEnv, run, start, waitUntil, writeManifest, type Env } from './helpers.js';
import { api, startDaemon, stopAndClean, waitPod, watch, cstatus, type DaemonHandle } from './daemon-helpers.js';

let env: Env | undefined;
let daemon: DaemonHandle | undefined;
afterEach(async () => {
  await stopAndClean(daemon, env);
  daemon = undefined;
  env = undefined;
});

const podDoc = (name: string, labels: Record<string, string>, cmd = 'exec sleep 1000', restartPolicy = 'Always') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: ${JSON.stringify(labels)}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: ${restartPolicy}
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", ${JSON.stringify(cmd)}] }
`;

describe('nodelet get/delete/version as kubectl prints them', () => {
  it('-o formats, selectors, wide, labels, events, nodes, delete -f, version', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const sock = ['--socket', daemon.socket];
    const cli = (...args: string[]) => run([...env!.globals, ...args, ...sock]);
    // created in reverse order: get sorts by name
    const file = writeManifest(env, 'pods.yaml', [podDoc('zeta', { app: 'web', tier: 'db' }), podDoc('alpha', { app: 'web', tier: 'frontend', env: 'a' }), podDoc('done', { app: 'job' }, 'exit 0', 'Never')].join('---\n'));
    const r = await cli('apply', '-f', file);
    expect(r.stdout).toBe('pod/zeta created\npod/alpha created\npod/done created\n');
    for (const n of ['zeta', 'alpha']) await waitPod(daemon.socket, n, (p) => cstatus(p, 'c')?.ready);
    await waitPod(daemon.socket, 'done', (p) => p.status?.phase === 'Succeeded');

    // unknown -o: kubectl's message, exit 1
    const bad = await cli('get', 'pods', '-o', 'xyz');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error: unable to match a printer suitable for the output format "xyz", allowed formats are: custom-columns,custom-columns-file,json,jsonpath,jsonpath-file,name,wide,yaml\n');

    const names = await cli('get', 'pods', '-o', 'name');
    expect(names.stdout).toBe('pod/alpha\npod/done\npod/zeta\n');
    const table = await cli('get', 'pods');
    expect(table.stdout.split('\n').slice(1, 4).map((l) => l.split(/\s+/)[0])).toEqual(['alpha', 'done', 'zeta']);
    expect(table.stdout).toMatch(/\ndone\s+0\/1\s+Completed\s+0\s+\d+s\n/);

    const jp = await cli('get', 'pods', '-o', 'jsonpath={.items[*].metadata.name}');
    expect(jp.stdout).toBe('alpha done zeta');
    const range = await cli('get', 'pods', '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}');
    expect(range.stdout).toBe('alpha\tRunning\ndone\tSucceeded\nzeta\tRunning\n');
    const filter = await cli('get', 'pods', 'alpha', '-o', `jsonpath={.spec.containers[?(@.name=="c")].image}{" "}{.metadata.labels.app}{" "}{.metadata.labels['tier']}`);
    expect(filter.stdout).toBe(`${BUSYBOX} web frontend`);
    const tplFile = writeManifest(env, 'tpl.txt', '{.items[0].metadata.name}');
    expect((await cli('get', 'pods', '-o', `jsonpath-file=${tplFile}`)).stdout).toBe('alpha');

    const cc = await cli('get', 'pods', '-o', 'custom-columns=NAME:.metadata.name,STATUS:.status.phase,IMAGE:.spec.containers[*].image');
    expect(cc.stdout).toMatch(new RegExp(`^NAME\\s+STATUS\\s+IMAGE\\nalpha\\s+Running\\s+${BUSYBOX.replace(/[./]/g, '\\$&')}\\ndone\\s+Succeeded\\s+\\S+\\nzeta\\s+Running\\s+\\S+\\n$`));
    const ccFile = writeManifest(env, 'cols.txt', 'NAME   TIER\n.metadata.name   .metadata.labels.tier\n');
    expect((await cli('get', 'pods', '-o', `custom-columns-file=${ccFile}`)).stdout).toMatch(/^NAME\s+TIER\nalpha\s+frontend\ndone\s+<none>\nzeta\s+db\n$/);

    const wide = await cli('get', 'pods', '-o', 'wide');
    expect(wide.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\nalpha\s+1\/1\s+Running\s+0\s+\d+s\s+10\.\d+\.\d+\.\d+\s+\S+\s+<none>\s+<none>\n/);

    // label selectors (client flag → the API's labelSelector)
    const l = async (s: string) => (await cli('get', 'pods', '-l', s, '-o', 'name')).stdout;
    expect(await l('app=web,tier!=db')).toBe('pod/alpha\n');
    expect(await l('tier in (db,frontend)')).toBe('pod/alpha\npod/zeta\n');
    expect(await l('!env')).toBe('pod/done\npod/zeta\n');
    expect(await l('env')).toBe('pod/alpha\n');
    expect(await l('app notin (web)')).toBe('pod/done\n');
    const badSel = await cli('get', 'pods', '-l', 'app in (a');
    expect(badSel.code).toBe(1);
    expect(badSel.stderr).toMatch(/^error: unable to parse requirement/);
    const shown = await cli('get', 'pods', '-l', 'app=job', '--show-labels');
    expect(shown.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+LABELS\ndone\s+0\/1\s+Completed\s+0\s+\d+s\s+app=job\n$/);
    const none = await cli('get', 'pods', '-l', 'app=nothing');
    expect(none.stdout).toBe('');
    expect(none.stderr).toBe('No resources found in default namespace.\n');

    // field selectors
    const f = async (s: string) => (await cli('get', 'pods', '--field-selector', s, '-o', 'name')).stdout;
    expect(await f('status.phase=Running')).toBe('pod/alpha\npod/zeta\n');
    expect(await f('status.phase!=Running')).toBe('pod/done\n');
    expect(await f('metadata.name==zeta')).toBe('pod/zeta\n');
    expect(await f('metadata.namespace=default,metadata.name!=alpha')).toBe('pod/done\npod/zeta\n');
    const nodeName = (await api(daemon.socket, 'GET', '/api/v1/namespaces/default/pods/alpha')).json.spec.nodeName;
    if (nodeName) expect(await f(`spec.nodeName=${nodeName}`)).toBe('pod/alpha\npod/done\npod/zeta\n');
    expect(await f('spec.nodeName=elsewhere')).toBe('');
    const badField = await cli('get', 'pods', '--field-selector', 'spec.foo=x');
    expect(badField.code).toBe(1);
    expect(badField.stderr).toContain('field label not supported: spec.foo');
    // the API itself: lists (all namespaces and namespaced) and watches
    expect((await api(daemon.socket, 'GET', '/api/v1/pods?labelSelector=app%3Dweb&fieldSelector=status.phase%3DRunning')).json.items.map((p: any) => p.metadata.name).sort()).toEqual(['alpha', 'zeta']);
    expect((await api(daemon.socket, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Djob')).json.items.map((p: any) => p.metadata.name)).toEqual(['done']);
    expect((await api(daemon.socket, 'GET', '/api/v1/pods?labelSelector=a%20in%20(')).status).toBe(400);
    const w = watch(daemon.socket, '/api/v1/namespaces/default/pods?watch=1&labelSelector=tier%3Ddb');
    await waitUntil(() => w.events.length >= 1, 5000, 'watch ADDED');
    await new Promise((res) => setTimeout(res, 300));
    w.stop();
    expect([...new Set(w.events.map((e) => e.object.metadata.name))]).toEqual(['zeta']);

    // events
    const ev = await cli('get', 'events');
    expect(ev.stdout).toMatch(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\n/);
    expect(ev.stdout).toMatch(/\n\d+s\s+Normal\s+Started\s+pod\/alpha\s+Started container c\n/);
    expect((await cli('get', 'events', '-A')).stdout).toMatch(/^NAMESPACE\s+LAST SEEN\s+TYPE/);
    expect((await cli('get', 'events', '--field-selector', 'involvedObject.name=zeta', '-o', 'jsonpath={.items[*].involvedObject.name}')).stdout).toMatch(/^zeta( zeta)*$/);

    // nodes: this host, real conditions and capacity
    const nodes = await api(daemon.socket, 'GET', '/api/v1/nodes');
    expect(nodes.json.kind).toBe('NodeList');
    const node = nodes.json.items[0];
    expect(node.status.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    expect(Number(node.status.capacity.cpu)).toBeGreaterThan(0);
    expect(node.status.capacity.memory).toMatch(/^\d+Ki$/);
    const gn = await cli('get', 'nodes');
    expect(gn.stdout).toMatch(new RegExp(`^NAME\\s+STATUS\\s+ROLES\\s+AGE\\s+VERSION\\n${node.metadata.name}\\s+Ready\\s+<none>\\s+\\d+s\\s+v1\\.\\d+\\.\\d+\\n$`));
    expect((await cli('get', 'nodes', '-o', 'name')).stdout).toBe(`node/${node.metadata.name}\n`);
    expect((await cli('get', 'nodes', '-o', 'wide')).stdout).toMatch(/INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME\n.*nodelet:\/\/\S+\n$/);
    expect((await cli('get', 'nodes', node.metadata.name, '-o', 'jsonpath={.status.nodeInfo.kubeletVersion}')).stdout).toMatch(/^v1\.\d+\.\d+$/);

    // version
    const v = await cli('version');
    expect(v.stdout).toMatch(/^Client Version: v\d+\.\d+\.\d+\nServer Version: v\d+\.\d+\.\d+\n$/);
    expect((await run([...env.globals, 'version', '--client', '--socket', '/nonexistent.sock'])).stdout).toMatch(/^Client Version: v\S+\n$/);
    const vj = JSON.parse((await cli('version', '-o', 'json')).stdout);
    expect(vj.clientVersion.gitVersion).toBe(vj.serverVersion.gitVersion);
    expect((await cli('version', '-o', 'yaml')).stdout).toMatch(/^clientVersion:\n/);

    // delete -f
    const del = await cli('delete', '-f', file, '--grace-period', '0');
    expect(del.stdout).toBe('pod "zeta" deleted\npod "alpha" deleted\npod "done" deleted\n');
    expect((await api(daemon.socket, 'GET', '/api/v1/pods')).json.items).toEqual([]);
    const again = await cli('delete', '-f', file);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`Error from server (NotFound): error when deleting "${file}": pods "zeta" not found`);
    expect((await cli('delete', '-f', file, '--ignore-not-found')).code).toBe(0);
  });

  it('get -w: rows aligned with the header, one row per change, -o json bare objects or watch events', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const sock = ['--socket', daemon.socket];
    const cli = (...args: string[]) => run([...env!.globals, ...args, ...sock]);
    const first = writeManifest(env, 'first.yaml', podDoc('a-pod-with-a-long-name', { app: 'w' }));
    await cli('apply', '-f', first);
    await waitPod(daemon.socket, 'a-pod-with-a-long-name', (p) => cstatus(p, 'c')?.ready);
    const w = start([...env.globals, 'get', 'pods', '-w', ...sock]);
    const wj = start([...env.globals, 'get', 'pods', '-w', '-o', 'json', ...sock]);
    const we = start([...env.globals, 'get', 'pods', '-w', '-o', 'json', '--output-watch-events', ...sock]);
    await w.waitFor(/a-pod-with-a-long-name\s+1\/1\s+Running/);
    const second = writeManifest(env, 'second.yaml', podDoc('b', { app: 'w' }));
    await cli('apply', '-f', second);
    await w.waitFor(/\nb\s+1\/1\s+Running/);
    expect((await cli('delete', 'pod', 'b', '--grace-period', '1')).code).toBe(0);
    await w.waitFor(/\nb\s+\S+\s+Terminating/);
    await new Promise((res) => setTimeout(res, 1000)); // the DELETED event
    for (const p of [w, wj, we]) p.child.kill('SIGTERM');
    await Promise.all([w.done, wj.done, we.done]);

    const lines = w.stdout().trimEnd().split('\n');
    const head = lines[0]!;
    expect(head).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    expect(lines[1]).toMatch(/^a-pod-with-a-long-name\s+1\/1\s+Running/);
    for (const line of lines.slice(1)) {
      // every row's READY and STATUS start under their headers
      expect(line.search(/\d\/\d/)).toBe(head.indexOf('READY'));
      expect(line.search(/(Pending|ContainerCreating|Running|Terminating|Completed|Error)/)).toBe(head.indexOf('STATUS'));
    }
    const bRows = lines.filter((x) => x.startsWith('b '));
    expect(bRows.filter((x) => /Terminating/.test(x)).length).toBeLessThanOrEqual(2); // 1/1 then 0/1 at most: never the same row twice
    for (let i = 1; i < bRows.length; i++) expect(bRows[i]!.replace(/\s+\d+s$/, '')).not.toBe(bRows[i - 1]!.replace(/\s+\d+s$/, ''));
    expect(lines.filter((x) => x.startsWith('a-pod-with-a-long-name'))).toHaveLength(1);

    const objs = (s: string) => s.split(/\n(?=\{)/).filter(Boolean).map((x) => JSON.parse(x));
    const bare = objs(wj.stdout());
    expect(bare[0]).toMatchObject({ kind: 'Pod', metadata: { name: 'a-pod-with-a-long-name' } });
    expect(bare.every((o) => o.kind === 'Pod' && !('type' in o))).toBe(true);
    expect(bare.some((o) => o.metadata.name === 'b')).toBe(true);
    const evs = objs(we.stdout());
    expect(evs[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'a-pod-with-a-long-name' } } });
    expect(evs.map((e) => e.type)).toContain('MODIFIED');
    expect(evs.at(-1)).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'b' } } });
  });
});
