import type { TransferProgress } from './types.ts';

/**
 * Turns the SDKs' progress signals (per part, per chunk, sometimes repeated or briefly backwards
 * after a retry) into what callers were promised: cumulative, increasing, ending exactly at total.
 */
export function progressReporter(total: number, callback: ((progress: TransferProgress) => void) | undefined) {
  let reported = -1;
  const emit = (bytes: number) => {
    reported = bytes;
    callback?.({ bytes, total });
  };
  return {
    update(bytes: number): void {
      const clamped = Math.min(bytes, total);
      if (clamped > reported) emit(clamped);
    },
    finish(): void {
      if (reported !== total) emit(total);
    },
  };
}
