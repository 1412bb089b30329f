/** Prompts of mixed lengths and lengths of output, more than one batch (or micro-batch) holds at once. */
export const MIXED_REQUESTS = [
  { promptIds: [1, 2, 3, 4, 5], maxTokens: 6 },
  { promptIds: [7], maxTokens: 3 },
  { promptIds: [9, 8, 7, 6, 5, 4, 3, 2], maxTokens: 4 },
  { promptIds: [11, 12, 13], maxTokens: 1 },
  { promptIds: [20, 21], maxTokens: 5 },
  { promptIds: [3, 3, 3, 3], maxTokens: 2 },
] as const;
