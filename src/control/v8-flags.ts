/**
 * V8 flags for a process that runs hundreds of chip isolates.
 *
 * --single-threaded-gc: each chip isolate otherwise sweeps its C++ heap (cppgc) incrementally with a
 * foreground task that re-posts itself through the event loop while the concurrent part waits for
 * one of V8's few background threads. With hundreds of isolates on two cores those threads starve
 * and the tasks spin: measured on mixtral-8x7b / groq-576 (timing, embedded), after a few runs
 * 100-200 threads were runnable, over half the CPU went to eventfd and epoll in the kernel
 * (cppgc ScheduleIncrementalSweeping), 16-token runs took 2-18 s instead of 0.4 s, and one run ended
 * in a watchdog error. With the flag, GC work is done on each chip's own thread when it is due: the
 * same sequence of runs stayed at 0.3-0.7 s, kernel time fell from ~50% to under 10%, and the peak
 * RSS fell by ~0.5 GB.
 *
 * --no-memory-reducer: V8's memory reducer starts a full (mark-compact) collection in an isolate
 * whose allocation rate drops, to give memory back. A chip's isolate goes quiet every time it waits
 * for its peers, so with hundreds of them these collections never stop: in a profile of a warm
 * 64-token run (mixtral-8x7b / groq-576, timing, embedded) memory-reducer collections took about a
 * quarter of all CPU, and run times varied 2-3x between identical runs. Without it a chip's heap is
 * collected when it fills, as usual; the 576-chip run's peak RSS rose by ~0.35 GB (5.45 to 5.8 GB).
 *
 * --max-semi-space-size=1 (MiB): a young generation grows up to 16 MiB per semi-space by default,
 * and 576 isolates that each grow theirs hold gigabytes that are mostly garbage. A chip's short-lived
 * objects are small and few survive a scavenge, so a small young generation costs little time: on the
 * same 256-token runs peak RSS fell from 6.3 to 5.3 GB (embedded) and 7.4 to 6.7 GB (NATS), with
 * wall time per token unchanged within the runs' spread.
 *
 * Known and left alone: optimised code comes late. V8 compiles hot functions with TurboFan on a few
 * background threads shared by all isolates, which get a small share of two cores against hundreds
 * of runnable chip threads: in one bench (--trace-opt), 5038 compile jobs started and 1070 finished,
 * so a chip's per-frame code mostly runs as baseline (Sparkplug) code even after thousands of tokens.
 * --no-concurrent-recompilation (compile on the chip's own thread) reached 0.5-0.75 ms per token
 * instead of ~1.1 (embedded, 1024-token runs), but the first two 1024-token runs took 6 and 4 s
 * instead of 2.8 and 1.6, and every later deoptimisation recompiles in all 576 isolates at once
 * (runs of 16 tokens took 1 s instead of 0.15); --v8-pool-size=64 (more compile threads) warmed up
 * faster but with the same stalls. Neither is adopted: a steady emulator matters more.
 *
 * V8 reads these flags when it creates an isolate, and a Worker cannot be given V8 flags of its own,
 * so they must be on the node command line of the process that spawns the chips. Setting them from
 * inside a running process (v8.setFlagsFromString) is not an option: it crashed V8 in a garbage
 * collection already under way. bin/rackemu.js re-executes node with them for commands that run
 * chips, process-isolation hosts are forked with them, and bench/ starts its children with them. A
 * program that embeds the Deployment API should start node with them (Deployment.start logs a
 * warning otherwise).
 */
export const CHIP_V8_FLAGS: readonly string[] = [
  '--single-threaded-gc',
  '--no-memory-reducer',
  '--max-semi-space-size=1',
];

/** The chip flags this process was not started with. */
export function missingChipV8Flags(execArgv: readonly string[] = process.execArgv): string[] {
  return CHIP_V8_FLAGS.filter((f) => !execArgv.includes(f));
}
