// Time for the node controllers, injectable so tests drive it by hand.

export interface Clock {
  /** ms since the epoch */
  now(): number;
  /** resolves after `ms`, or early (never rejecting) when `signal` aborts */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/** wait.Jitter: d + rand·factor·d */
export function jitter(ms: number, factor: number, random: () => number = Math.random): number {
  return ms + random() * factor * ms;
}

/** metav1.MicroTime on the wire: RFC 3339 with six fractional digits, UTC ("2026-12-03T07:40:00.123456Z"). */
export function formatMicroTime(ms: number): string {
  const whole = Math.floor(ms);
  const micros = Math.floor((ms - whole) * 1000);
  const iso = new Date(whole).toISOString(); // …:SS.mmmZ
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}
