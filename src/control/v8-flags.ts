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
 * V8 reads these flags when it creates an isolate, and a Worker cannot be given V8 flags of its own,
 * so they must be on the node command line of the process that spawns the chips. Setting them from
 * inside a running process (v8.setFlagsFromString) is not an option: it crashed V8 in a garbage
 * collection already under way. bin/rackemu.js re-executes node with them for commands that run
 * chips, process-isolation hosts are forked with them, and bench/ starts its children with them. A
 * program that embeds the Deployment API should start node with them (Deployment.start logs a
 * warning otherwise).
 */
export const CHIP_V8_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** The chip flags this process was not started with. */
export function missingChipV8Flags(execArgv: readonly string[] = process.execArgv): string[] {
  return CHIP_V8_FLAGS.filter((f) => !execArgv.includes(f));
}
