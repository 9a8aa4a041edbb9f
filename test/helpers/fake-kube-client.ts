// What the unit tests' in-memory KubeClients share (test/unit/cluster/fake-client.ts: ConfigMaps, Secrets,
// watches and tokens for the object resolver; test/unit/node/fakes.ts: Nodes and Leases for the node
// controllers): the API server's Status errors, and every call recorded, with failures injected per method
// and resource. Each fake adds the verbs it serves.
import { KubeApiError } from '../../src/kube/errors.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';

/** A failed call as HttpKubeClient reports it: the API server's Status with `reason` and `message`. */
export function apiError(httpStatus: number, reason: string, message = reason): KubeApiError {
  return new KubeApiError({
    httpStatus,
    status: { kind: 'Status', status: 'Failure', reason, message, code: httpStatus },
    method: 'X',
    path: '/fake',
    server: 'https://fake',
  });
}

export interface RecordedCall {
  method: string;
  ref: ResourceRef;
}

export abstract class RecordingKubeClient<C extends RecordedCall> {
  readonly server = 'https://fake';
  readonly user = 'system:node:n1';
  readonly calls: C[] = [];
  readonly objects = new Map<string, KubeObject>();
  private failures: { method: C['method']; resource?: string; error: Error }[] = [];

  /** The next call of `method` (on `resource`) throws `error`, `times` times in a row. Queue several for several failures. */
  failNext(method: C['method'], error: Error, resource?: string, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push({ method, resource, error });
  }

  callsOf(method: C['method'], resource?: string, subresource?: string): C[] {
    return this.calls.filter(
      (c) => c.method === method && (resource === undefined || c.ref.resource === resource) && (subresource === undefined || c.ref.subresource === subresource),
    );
  }

  /** Records the call; throws the first failure queued for it (and drops that failure). */
  protected record(c: C): void {
    this.calls.push(c);
    const i = this.failures.findIndex((f) => f.method === c.method && (f.resource === undefined || f.resource === c.ref.resource));
    if (i >= 0) {
      const [f] = this.failures.splice(i, 1);
      throw f!.error;
    }
  }

  async close(): Promise<void> {}
}
