// Per-container restartPolicy and restartPolicyRules (KEP-5307 ContainerRestartRules, on in kube-apiserver and
// kubelet v1.36): validation as the API server reports it, and containerShouldRestart (pkg/api/v1/pod/util.go).
// Ground truth for the messages: k8s.io/kubernetes v1.36.3 validation.ValidatePodCreate run from the module cache
// on the same pods (Go 1.26), except the two lines marked below.
import { describe, expect, it } from 'vitest';
import { loadManifests, ManifestError } from '../../../src/pod/manifest.js';
import { containerShouldRestart, findMatchingContainerRestartRule } from '../../../src/pod/actions.js';
import type { Container, ContainerRestartRule, RestartPolicy } from '../../../src/pod/api-types.js';

const errorsOf = (spec: Record<string, unknown>): string[] => {
  try {
    loadManifests(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec }), 'p.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return (e as Error).message.split('\n').slice(1).map((l) => l.replace(/^\* /, ''));
  }
  return [];
};
const rule = (operator: string, values: number[], action = 'Restart') => ({ action, exitCodes: { operator, values } });

describe('validation (validateContainerRestartPolicy, validateInitContainerRestartPolicy)', () => {
  it('accepts a container restartPolicy on app and regular init containers, rules on each, sidecars with rules', () => {
    expect(
      errorsOf({
        restartPolicy: 'Always',
        initContainers: [
          { name: 'i', image: 'i', restartPolicy: 'Never', restartPolicyRules: [rule('NotIn', [0, -5, 300])] },
          { name: 's', image: 'i', restartPolicy: 'Always', restartPolicyRules: [rule('In', [1])] },
        ],
        containers: [
          { name: 'a', image: 'i', restartPolicy: 'OnFailure' },
          { name: 'b', image: 'i', restartPolicy: 'Never', restartPolicyRules: [rule('In', [42]), rule('NotIn', [0, 1])] },
          { name: 'c', image: 'i', restartPolicy: 'Always' },
        ],
      }),
    ).toEqual([]);
  });

  it('an unknown restartPolicy, on app and init containers', () => {
    expect(errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicy: 'Sometimes' }] })).toEqual([
      'spec.containers[0].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"',
    ]);
    expect(errorsOf({ initContainers: [{ name: 'i', image: 'i', restartPolicy: 'Sometimes', restartPolicyRules: [{ action: 'Restart' }] }], containers: [{ name: 'a', image: 'i' }] })).toEqual([
      'spec.initContainers[0].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"',
      'spec.initContainers[0].restartPolicyRules[0].exitCodes: Required value: must be specified',
    ]);
  });

  it('rules need the container restartPolicy (an init container reports only that)', () => {
    expect(errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicyRules: [rule('In', [42])] }] })).toEqual([
      'spec.containers[0].restartPolicy: Required value: must specify restartPolicy when restart rules are used',
    ]);
    expect(errorsOf({ initContainers: [{ name: 'i', image: 'i', restartPolicyRules: [{ action: 'Foo' }] }], containers: [{ name: 'a', image: 'i' }] })).toEqual([
      'spec.initContainers[0].restartPolicy: Required value: must specify restartPolicy when restart rules are used',
    ]);
  });

  it('action, exitCodes and operator of each rule', () => {
    expect(errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicy: 'Never', restartPolicyRules: [rule('In', [1], 'Foo'), { exitCodes: { operator: 'Between' } }, { action: 'Restart' }] }] })).toEqual([
      // the API server also lists "RestartAllContainers", which nodelet refuses (below)
      'spec.containers[0].restartPolicyRules[0].action: Unsupported value: "Foo": supported values: "Restart"',
      'spec.containers[0].restartPolicyRules[1].action: Unsupported value: "": supported values: "Restart"',
      'spec.containers[0].restartPolicyRules[1].exitCodes.operator: Unsupported value: "Between": supported values: "In", "NotIn"',
      'spec.containers[0].restartPolicyRules[2].exitCodes: Required value: must be specified',
    ]);
  });

  it('at most 20 rules and 255 exit codes a rule', () => {
    const many = Array.from({ length: 21 }, () => rule('In', [1]));
    expect(errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicy: 'Never', restartPolicyRules: many }] })).toEqual([
      'spec.containers[0].restartPolicyRules: Too many: 21: must have at most 20 items',
    ]);
    expect(errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicy: 'Never', restartPolicyRules: [rule('In', Array.from({ length: 256 }, (_, i) => i))] }] })).toEqual([
      'spec.containers[0].restartPolicyRules[0].exitCodes.values: Too many: 256: must have at most 255 items',
    ]);
    expect(errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicy: 'Never', restartPolicyRules: many.slice(1) }] })).toEqual([]);
  });

  it('RestartAllContainers (accepted by a v1.36 API server) is refused by name: nodelet does not restart pods in place', () => {
    const errs = errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicy: 'Never', restartPolicyRules: [rule('In', [1], 'RestartAllContainers')] }] });
    expect(errs).toEqual([
      'spec.containers[0].restartPolicyRules[0].action: Unsupported value: "RestartAllContainers": not supported by nodelet (the in-place restart of every container of the pod); supported values: "Restart"',
    ]);
    expect(errorsOf({ initContainers: [{ name: 's', image: 'i', restartPolicy: 'Always', restartPolicyRules: [rule('In', [1], 'RestartAllContainers')] }], containers: [{ name: 'a', image: 'i' }] })[0]).toMatch(
      /^spec\.initContainers\[0\]\.restartPolicyRules\[0\]\.action: Unsupported value: "RestartAllContainers": not supported by nodelet/,
    );
  });

  it('a regular init container with a restartPolicy is still no sidecar: no probes or lifecycle', () => {
    expect(errorsOf({ initContainers: [{ name: 'i', image: 'i', restartPolicy: 'Never', livenessProbe: { exec: { command: ['true'] } } }], containers: [{ name: 'a', image: 'i' }] })).toEqual([
      'spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always',
    ]);
  });

  it('the rule shape: unknown fields are strict decoding errors, wrong types stop validation', () => {
    expect(errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicy: 'Never', restartPolicyRules: [{ action: 'Restart', exitCode: {} }] }] })).toContain(
      'strict decoding error: unknown field "spec.containers[0].restartPolicyRules[0].exitCode"',
    );
    expect(errorsOf({ containers: [{ name: 'a', image: 'i', restartPolicy: 'Never', restartPolicyRules: [{ action: 'Restart', exitCodes: { operator: 'In', values: ['42'] } }] }] })).toEqual([
      'spec.containers[0].restartPolicyRules[0].exitCodes.values[0]: Invalid value: "42": must be an integer, not string',
    ]);
  });
});

describe('containerShouldRestart / findMatchingContainerRestartRule (pkg/api/v1/pod/util.go)', () => {
  const c = (restartPolicy?: Container['restartPolicy'], rules?: ContainerRestartRule[]): Container => ({ name: 'c', image: 'i', restartPolicy, restartPolicyRules: rules });
  const rules: ContainerRestartRule[] = [
    { action: 'Restart', exitCodes: { operator: 'In', values: [42, 43] } },
    { action: 'Restart', exitCodes: { operator: 'NotIn', values: [0, 1, 2, 42, 43] } },
  ];
  const table: [string, Container, RestartPolicy, number, boolean][] = [
    ['no container policy: the pod\'s Always', c(), 'Always', 0, true],
    ['no container policy: the pod\'s OnFailure, 0', c(), 'OnFailure', 0, false],
    ['no container policy: the pod\'s OnFailure, 1', c(), 'OnFailure', 1, true],
    ['no container policy: the pod\'s Never', c(), 'Never', 1, false],
    ['rules without a container policy are ignored', c(undefined, rules), 'Never', 42, false],
    ['container Never overrides pod Always', c('Never'), 'Always', 1, false],
    ['container Always overrides pod Never', c('Always'), 'Never', 0, true],
    ['container OnFailure under pod Never: 1', c('OnFailure'), 'Never', 1, true],
    ['container OnFailure under pod Never: 0', c('OnFailure'), 'Never', 0, false],
    ['Never + In [42,43]: 42 restarts', c('Never', rules), 'Never', 42, true],
    ['Never + NotIn: 7 restarts', c('Never', rules), 'Never', 7, true],
    ['Never + rules: 1 matches none → Never', c('Never', rules), 'Always', 1, false],
    ['Never + rules: 0 matches none → Never', c('Never', rules), 'Always', 0, false],
    ['OnFailure + rules: 1 matches none → OnFailure', c('OnFailure', rules), 'Never', 1, true],
    ['rule without exitCodes never matches', c('Never', [{ action: 'Restart' }]), 'Always', 1, false],
  ];
  it.each(table)('%s', (_n, ctr, pod, code, want) => expect(containerShouldRestart(ctr, { restartPolicy: pod }, code)).toBe(want));

  it('the first matching rule wins, in order', () => {
    const ordered: ContainerRestartRule[] = [
      { action: 'Restart', exitCodes: { operator: 'NotIn', values: [1] } },
      { action: 'Restart', exitCodes: { operator: 'In', values: [2] } },
    ];
    expect(findMatchingContainerRestartRule(c('Never', ordered), 2)).toBe(ordered[0]);
    expect(findMatchingContainerRestartRule(c('Never', ordered), 1)).toBeUndefined();
    expect(findMatchingContainerRestartRule(c('Never', [{ action: 'Restart', exitCodes: { operator: 'In' } }]), 0)).toBeUndefined();
  });
});
