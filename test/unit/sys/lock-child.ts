// Child process for test/unit/sys/lock.test.ts (run with vite-node):
//   hold <lock>                 take the lock (waiting), print "held", hold it until stdin closes, release, print "released"
//   race <lock> <dir> <rounds>  for each round r: spin until <dir>/go-<r> exists, tryLock once, print "<r> won|lost"
//                               (a winner keeps holding: the parent resets the lock for the next round)
import * as fs from 'node:fs';
import { join } from 'node:path';
import { acquireLock, tryLock, unlock } from '../../../src/sys/lock.js';

const [mode, lock, dir, rounds] = process.argv.slice(2);

if (mode === 'hold') {
  await acquireLock(lock!);
  process.stdout.write('held\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    unlock(lock!);
    process.stdout.write('released\n');
    process.exit(0);
  });
} else if (mode === 'race') {
  process.stdout.write('ready\n');
  for (let r = 0; r < Number(rounds); r++) {
    const go = join(dir!, `go-${r}`);
    const end = Date.now() + 30_000;
    while (!fs.existsSync(go)) if (Date.now() > end) process.exit(3);
    process.stdout.write(`${r} ${tryLock(lock!) ? 'won' : 'lost'}\n`);
  }
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
} else {
  process.exit(2);
}
