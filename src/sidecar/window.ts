// A share of the sidecar's samplers: the samples of one request or push
// interval, counted as they arrive.

import {
  ProfileBuilder,
  type Profile,
  type Sample,
  type SamplerStats,
  type TargetInfo,
} from '../index';

export interface SampleWindowOptions {
  readonly rateHz: number;
  /** Keep only the samples of this process. */
  readonly pid?: number;
  /** The start in `performance.now()` milliseconds, now by default. */
  readonly startMs?: number;
  /** The end in `performance.now()` milliseconds, open by default. */
  readonly endMs?: number;
}

/**
 * The samples taken from `startMs` until `endMs`, by sample time, of
 * every target that the sidecar samples at one rate. Memory grows with
 * the distinct stacks within the window only.
 */
export class SampleWindow {
  readonly rateHz: number;
  readonly pid?: number;
  readonly startMs: number;
  /** When the window started, in milliseconds since the Unix epoch. */
  readonly startTimeMs: number;
  endMs: number;
  #target: TargetInfo | undefined;
  #builder: ProfileBuilder | undefined;
  #stats: SamplerStats = { taken: 0, late: 0, failed: 0, threadSamples: 0 };
  #closed = false;

  constructor(options: SampleWindowOptions) {
    this.rateHz = options.rateHz;
    if (options.pid !== undefined) {
      this.pid = options.pid;
    }
    const now = performance.now();
    this.startMs = options.startMs ?? now;
    this.endMs = options.endMs ?? Infinity;
    this.startTimeMs = Date.now() - (now - this.startMs);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Thread-samples counted so far. */
  get sampleCount(): number {
    return this.#builder?.sampleCount ?? 0;
  }

  /**
   * Counts the samples whose time (in `performance.now()` milliseconds,
   * `timesMs[i]` for `samples[i]`) falls in the window and in
   * `[validFromMs, validUntilMs)`, the part of time that their recording
   * covers.
   */
  add(
    target: TargetInfo,
    samples: readonly Sample[],
    timesMs: Float64Array,
    validFromMs: number,
    validUntilMs: number,
  ): void {
    if (this.#closed) {
      return;
    }
    this.#target ??= target;
    const from = Math.max(this.startMs, validFromMs);
    const until = Math.min(this.endMs, validUntilMs);
    const kept: Sample[] = [];
    for (let i = 0; i < samples.length; i++) {
      const time = timesMs[i];
      const sample = samples[i];
      if (
        time >= from &&
        time < until &&
        (this.pid === undefined || sample.thread.pid === this.pid)
      ) {
        kept.push(sample);
      }
    }
    if (kept.length === 0) {
      return;
    }
    this.#builder ??= new ProfileBuilder({
      target: this.#target,
      rateHz: this.rateHz,
      startTimeMs: Math.round(this.startTimeMs),
    });
    this.#builder.add(kept);
  }

  /** Adds to the sampler counters of the window. */
  addStats(delta: SamplerStats): void {
    if (this.#closed) {
      return;
    }
    this.#stats = {
      taken: this.#stats.taken + delta.taken,
      late: this.#stats.late + delta.late,
      failed: this.#stats.failed + delta.failed,
      threadSamples: this.#stats.threadSamples + delta.threadSamples,
    };
  }

  /** Records the target of a recording that serves the window, for the
   * profile of a window without samples. */
  noteTarget(target: TargetInfo): void {
    this.#target ??= target;
  }

  /** Ends the window and returns its profile, or undefined when no
   * recording served it. */
  close(endMs: number): Profile | undefined {
    this.#closed = true;
    const target = this.#target;
    if (target === undefined) {
      return undefined;
    }
    const builder =
      this.#builder ??
      new ProfileBuilder({
        target,
        rateHz: this.rateHz,
        startTimeMs: Math.round(this.startTimeMs),
      });
    this.#builder = undefined;
    return builder.profile({
      durationSeconds: Math.max(0, endMs - this.startMs) / 1000,
      stats: this.#stats,
    });
  }
}
