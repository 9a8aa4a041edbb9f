// localhost/nodelet/testprog:v1: only the static test program, as /testprog.
import { readFileSync } from 'node:fs';

export const images = [
  {
    name: 'testprog',
    refName: 'localhost/nodelet/testprog:v1',
    layers: ({ testprog }) => [{ entries: [{ path: 'testprog', type: 'file', mode: 0o755, content: readFileSync(testprog) }] }],
    config: { entrypoint: ['/testprog'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
  },
];
