// Time for the node controllers, injectable so tests drive it by hand.
import { sleep } from '../sys/proc.js';

export interface Clock {
  /** ms since the epoch */
  now(): number;
  /** resolves after `ms`, or early (never rejecting) when `signal` aborts */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  // sys/proc's sleep rejects only when the signal aborts: that is the early end here
  sleep: (ms, signal) => sleep(Math.max(0, ms), signal).catch(() => {}),
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
