// Builds batches in the addon's flattened shape from readable samples.

import type { NativeProcessEvent } from '../../dist/native';
import type { RawBatch } from '../../dist/profile/data';

export interface SampleSpec {
  thread?: number;
  /** Index into running, waiting_gvl, blocked. */
  state?: number;
  /** Function ids, outermost first. */
  stack: number[];
  /** Line per frame; 1 for every frame when absent. */
  lines?: number[];
  timeNs?: number;
}

export interface BatchSpec {
  functions?: Array<[number, string, string?]>;
  threads?: Array<[number, string?]>;
  samples?: SampleSpec[];
  stats?: Partial<RawBatch['stats']>;
  warnings?: string[];
  processes?: NativeProcessEvent[];
  end?: { reason: string; message?: string };
}

/** A batch as the addon hands it over. */
export type FakeBatch = RawBatch & {
  processes: NativeProcessEvent[];
  end?: { reason: string; message?: string };
};

export function makeBatch(
  spec: BatchSpec,
): FakeBatch {
  const samples = spec.samples ?? [];
  const frameStarts = [0];
  const frameFunctions: number[] = [];
  const frameLines: number[] = [];
  for (const sample of samples) {
    sample.stack.forEach((fn, i) => {
      frameFunctions.push(fn);
      frameLines.push(sample.lines?.[i] ?? 1);
    });
    frameStarts.push(frameFunctions.length);
  }
  const batch: FakeBatch = {
    functions: (spec.functions ?? []).map(([id, name, path]) => ({
      id,
      name,
      path: path ?? '/app/app.rb',
      kind: 'ruby',
    })),
    threads: (spec.threads ?? []).map(([id, name]) => ({
      id,
      pid: 100,
      tid: 100 + id,
      ...(name === undefined ? {} : { name }),
    })),
    timesNs: Float64Array.from(
      samples.map((s, i) => s.timeNs ?? i * 10_000_000),
    ),
    threadIds: Uint32Array.from(samples.map((s) => s.thread ?? 0)),
    states: Uint8Array.from(samples.map((s) => s.state ?? 0)),
    frameStarts: Uint32Array.from(frameStarts),
    frameFunctions: Uint32Array.from(frameFunctions),
    frameLines: Uint32Array.from(frameLines),
    stats: {
      taken: samples.length,
      late: 0,
      failed: 0,
      threadSamples: samples.length,
      ...spec.stats,
    },
    warnings: spec.warnings ?? [],
    processes: spec.processes ?? [],
  };
  if (spec.end !== undefined) {
    batch.end = spec.end;
  }
  return batch;
}
