/** Index of each step kind in per-kind arrays and in StepWindow.kinds ([prefill, decode]). */
export const KIND = { prefill: 0, decode: 1 } as const;
