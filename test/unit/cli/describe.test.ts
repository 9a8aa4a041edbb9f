// `nodelet describe pod` as kubectl's describe: tabwriter alignment, sections, names and order.
import { describe, expect, it } from 'vitest';
import { describePod, tabwrite, tolerationText } from '../../../src/cli/describe.js';
import type { Event, Pod } from '../../../src/pod/api-types.js';

process.env.TZ = 'UTC';

describe('tabwrite (Go text/tabwriter, padding 2)', () => {
  it('aligns a column over consecutive lines that have the cell; a line without it ends the block (kubectl\'s "  IP:" under "IPs:")', () => {
    expect(tabwrite('Name:\tweb\nNamespace:\tdefault\nIPs:\n  IP:\t10.0.0.1\nQoS Class:\tBestEffort\n')).toBe(
      'Name:       web\nNamespace:  default\nIPs:\n  IP:       10.0.0.1\nQoS Class:  BestEffort\n',
    );
  });
  it('continuation lines (empty first cell) stay in the block; the last cell is never padded', () => {
    expect(tabwrite('Labels:\ta=1\n\tb=2\nStatus:\tRunning\n')).toBe('Labels:  a=1\n         b=2\nStatus:  Running\n');
    expect(tabwrite('a\tb\tc\naaaa\tbb\n')).toBe('a     b  c\naaaa  bb\n');
  });
});

describe('tolerationText', () => {
  it('renders as kubectl', () => {
    expect(tolerationText({ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 })).toBe('node.kubernetes.io/not-ready:NoExecute op=Exists for 300s');
    expect(tolerationText({ operator: 'Exists' })).toBe('op=Exists');
    expect(tolerationText({ key: 'k', operator: 'Equal', value: 'v', effect: 'NoSchedule' })).toBe('k=v:NoSchedule');
  });
});

const now = Date.parse('2026-01-02T15:10:00Z');
const pod: Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'default', uid: 'u1', labels: { tier: 'front', app: 'web' }, annotations: { 'kubernetes.io/config.source': 'api' }, creationTimestamp: '2026-01-02T15:00:00Z' },
  spec: {
    serviceAccountName: 'default',
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
    containers: [
      {
        name: 'app',
        image: 'localhost/nodelet/busybox:v1',
        command: ['sh', '-c'],
        args: ['httpd -f'],
        ports: [{ containerPort: 80, hostPort: 8080, protocol: 'TCP' }],
        env: [{ name: 'MODE', value: 'prod' }, { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'pw' } } }],
        envFrom: [{ configMapRef: { name: 'settings' } }],
        volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'cfg', mountPath: '/etc/app', readOnly: true }],
        resources: { limits: { memory: '64Mi', cpu: '100m' } },
        readinessProbe: { httpGet: { path: '/', port: 80 }, periodSeconds: 5 },
      },
      { name: 'side', image: 'localhost/nodelet/busybox:v1' },
    ],
    volumes: [{ name: 'data', emptyDir: {} }, { name: 'cfg', configMap: { name: 'settings' } }],
  } as Pod['spec'],
  status: {
    phase: 'Running',
    hostIP: '192.168.1.5',
    podIP: '10.244.0.5',
    podIPs: [{ ip: '10.244.0.5' }],
    startTime: '2026-01-02T15:00:00Z',
    qosClass: 'Burstable',
    conditions: [{ type: 'Ready', status: 'True' }, { type: 'ContainersReady', status: 'True' }] as never,
    containerStatuses: [
      { name: 'app', ready: true, restartCount: 0, image: 'x', imageID: 'sha256:abc', containerID: 'nodelet://c1', state: { running: { startedAt: '2026-01-02T15:00:01Z' } }, lastState: {} },
      { name: 'side', ready: false, restartCount: 2, image: 'x', imageID: 'sha256:abc', containerID: 'nodelet://c2', state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 3, reason: 'Error', startedAt: '2026-01-02T15:05:00Z', finishedAt: '2026-01-02T15:05:02Z' } } },
    ] as never,
  },
};
const ev = (reason: string, type: 'Normal' | 'Warning', first: string, last: string, count: number, message: string): Event =>
  ({ metadata: { name: reason }, involvedObject: { uid: 'u1' }, reason, type, firstTimestamp: first, lastTimestamp: last, count, message, source: { component: 'nodelet' } }) as Event;
const events = [
  ev('BackOff', 'Warning', '2026-01-02T15:06:00Z', '2026-01-02T15:09:50Z', 3, 'Back-off restarting failed container side'),
  ev('Started', 'Normal', '2026-01-02T15:00:01Z', '2026-01-02T15:00:01Z', 1, 'Started container app'),
];

describe('describePod', () => {
  it('lays a pod out as kubectl describe pod does', () => {
    const out = describePod(pod, events, { side: 'loading\nbroken\n' }, now);
    expect(out).toBe(EXPECTED);
  });
});

describe('describePod: status lines', () => {
  const bare = (status: Pod['status'], meta: Partial<Pod['metadata']> = {}): Pod => ({ metadata: { name: 'job', namespace: 'default', ...meta }, spec: { containers: [{ name: 'c', image: 'i' }] }, status });
  it('the phase on Status:, the reason on its own Reason: line; no IP is IPs: <none>; no events is Events: <none>', () => {
    const out = describePod(bare({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' }), [], {}, now);
    expect(out).toMatch(/^Status:\s+Failed\nReason:\s+DeadlineExceeded\nMessage:\s+Pod was active on the node longer than the specified deadline\nIP:\s*\nIPs:\s+<none>\n/m);
    expect(out).toMatch(/\nQoS Class:\s+BestEffort\nNode-Selectors:\s+<none>\nTolerations:\s+<none>\nEvents:\s+<none>\n$/);
    expect(out).toMatch(/\nVolumes:\s+<none>\n/);
  });
  it('a pod being deleted is Terminating (lasts N)', () => {
    const out = describePod(bare({ phase: 'Running' }, { deletionTimestamp: '2026-01-02T15:09:55Z' }), [], {}, now);
    expect(out).toMatch(/^Status:\s+Terminating \(lasts 5s\)$/m);
  });
});

const EXPECTED = `Name:             web
Namespace:        default
Service Account:  default
Node:             localhost/192.168.1.5
Start Time:       Fri, 02 Jan 2026 15:00:00 +0000
Labels:           app=web
                  tier=front
Annotations:      kubernetes.io/config.source: api
Status:           Running
IP:               10.244.0.5
IPs:
  IP:  10.244.0.5
Containers:
  app:
    Container ID:  nodelet://c1
    Image:         localhost/nodelet/busybox:v1
    Image ID:      sha256:abc
    Port:          80/TCP
    Host Port:     8080/TCP
    Command:
      sh
      -c
    Args:
      httpd -f
    State:          Running
      Started:      Fri, 02 Jan 2026 15:00:01 +0000
    Ready:          True
    Restart Count:  0
    Limits:
      cpu:      100m
      memory:   64Mi
    Readiness:  http-get http://:80/ delay=0s timeout=1s period=5s #success=1 #failure=3
    Environment Variables from:
      settings  ConfigMap  Optional: false
    Environment:
      MODE:      prod
      PASSWORD:  <set to the key 'pw' in secret 'creds'>  Optional: false
    Mounts:
      /data from data (rw)
      /etc/app from cfg (ro)
  side:
    Container ID:   nodelet://c2
    Image:          localhost/nodelet/busybox:v1
    Image ID:       sha256:abc
    Port:           <none>
    Host Port:      <none>
    State:          Waiting
      Reason:       CrashLoopBackOff
    Last State:     Terminated
      Reason:       Error
      Exit Code:    3 (the process exited with an error)
      Started:      Fri, 02 Jan 2026 15:05:00 +0000
      Finished:     Fri, 02 Jan 2026 15:05:02 +0000
    Ready:          False
    Restart Count:  2
    Environment:    <none>
    Mounts:         <none>
    Last Log Lines:
      loading
      broken
Conditions:
  Type              Status
  Ready             True 
  ContainersReady   True 
Volumes:
  data:
    Type:       EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:     
    SizeLimit:  <unset>
  cfg:
    Type:        ConfigMap (a volume populated by a ConfigMap)
    Name:        settings
    Optional:    false
QoS Class:       Burstable
Node-Selectors:  kubernetes.io/os=linux
Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s
Events:
  Type     Reason   Age               From     Message
  ----     ------   ----              ----     -------
  Normal   Started  9m59s             nodelet  Started container app
  Warning  BackOff  10s (x3 over 4m)  nodelet  Back-off restarting failed container side
`;
