// Child process for test/unit/sys/atomic.test.ts (run with vite-node): rewrite <file>
// atomically forever, alternating two large contents (all "a" / all "b"), printing
// "wrote" after the first write, until it is killed.
import { writeFileAtomic } from '../../../src/sys/atomic.js';

const [file, sizeS] = process.argv.slice(2);
const size = Number(sizeS);
const a = Buffer.alloc(size, 'a');
const b = Buffer.alloc(size, 'b');
for (let i = 0; ; i++) {
  writeFileAtomic(file!, i % 2 ? b : a);
  if (i === 0) process.stdout.write('wrote\n');
}
