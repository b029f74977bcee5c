// The same package imported from an ES module, as `import { … } from
// 'rbprof'`. A test compiles it with the consumer in this folder.

import { readRecording, record, RbprofError, type Profile } from 'rbprof';

export async function summarize(pid: number): Promise<string> {
  try {
    const recording = await record({ pid, durationSeconds: 1 });
    const profile: Profile = await recording.done;
    return profile.toSummary({ top: 5 });
  } catch (error) {
    if (error instanceof RbprofError) {
      return `${error.code}: ${error.message}`;
    }
    throw error;
  }
}

export async function rowsOf(path: string): Promise<number> {
  const { profile, complete } = await readRecording(path);
  return complete ? profile.rows().length : 0;
}
