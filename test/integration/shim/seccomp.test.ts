// The shim side of seccomp: it installs exactly the filter the plan carries (start and
// exec, independently), and a filter the kernel refuses is a start error of stage seccomp.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ShimStartError, type ExecRequest, type ShimState } from '../../../src/runtime/shim/index.js';
import { compileProfile } from '../../../src/runtime/seccomp/index.js';
import { OP } from '../../../src/runtime/seccomp/compile.js';
import { DEFAULT_CAPS } from '../../helpers/shim-plan.js';
import { makeFixture, runToExit, streamText, type Fixture } from './util.js';

let f: Fixture;
beforeAll(async () => {
  f = await makeFixture();
});
afterAll(async () => {
  await f?.cleanup();
});

const filter = (syscalls: { names: string[]; errnoRet: number }[]) =>
  compileProfile(
    { defaultAction: 'SCMP_ACT_ALLOW', architectures: [], syscalls: syscalls.map((s) => ({ ...s, action: 'SCMP_ACT_ERRNO' as const, args: [] })) },
    { hostArch: process.arch, capabilities: 0n },
    'test',
  ).program.toString('hex');

const insn = (code: number, k: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(code, 0);
  b.writeUInt32LE(k, 4);
  return b.toString('hex');
};

describe('shim seccomp', () => {
  test('the container runs under the plan filter (both install points)', async () => {
    for (const noNewPrivs of [false, true]) {
      const { state, log } = await runToExit(f, {
        argv: ['sh', '-c', 'grep Seccomp: /proc/self/status; mkdir /tmp/x'],
        noNewPrivs,
        seccomp: filter([{ names: ['mkdir', 'mkdirat'], errnoRet: 13 }]),
      });
      expect(streamText(log, 'stdout')).toBe('Seccomp:\t2\n');
      expect(streamText(log, 'stderr')).toMatch(/Permission denied/);
      expect(state.exitCode).not.toBe(0);
    }
  });

  test('a filter denying execve fails the start at stage exec (installed before execve)', async () => {
    const plan = f.plan({ argv: ['true'], noNewPrivs: true, seccomp: filter([{ names: ['execve', 'execveat'], errnoRet: 1 }]) });
    const e = await f.client.start(plan).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ShimStartError);
    expect((e as ShimStartError).details).toMatchObject({ stage: 'exec', errnoName: 'EPERM' });
  });

  test('a filter the kernel refuses is a start error of stage seccomp', async () => {
    // ja past the end of the program
    const plan = f.plan({ argv: ['true'], seccomp: insn(OP.JA, 5) + insn(OP.RET_K, 0x7fff0000) });
    const e = await f.client.start(plan).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ShimStartError);
    expect((e as ShimStartError).details).toMatchObject({ stage: 'seccomp', errnoName: 'EINVAL' });
  });

  test('an exec installs the filter its request carries', async () => {
    const plan = f.plan({ argv: ['sleep', '1000'] });
    const c: ShimState = await f.client.start(plan);
    try {
      const req = (o: Partial<ExecRequest>): ExecRequest => ({
        stateDir: plan.stateDir, pid: c.pid, cgroupProcsFiles: [], argv: ['sh', '-c', 'grep Seccomp: /proc/self/status; mkdir /tmp/e'],
        env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, additionalGids: [], capabilities: DEFAULT_CAPS, noNewPrivs: false, ...o,
      });
      const plain = await f.client.exec(req({}));
      expect(plain.stdout.toString()).toBe('Seccomp:\t0\n');
      expect(plain.exitCode).toBe(0);
      const filtered = await f.client.exec(req({ seccomp: filter([{ names: ['mkdir', 'mkdirat'], errnoRet: 13 }]) }));
      expect(filtered.stdout.toString()).toBe('Seccomp:\t2\n');
      expect(filtered.stderr.toString()).toMatch(/Permission denied/);
    } finally {
      process.kill(c.pid, 'SIGKILL');
      await f.client.waitExit(plan.stateDir);
    }
  });
});
