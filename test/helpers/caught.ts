// The error a promise rejects with, to look at as a value (its class, code, fields); a promise that
// fulfils fails the test.
export async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}
