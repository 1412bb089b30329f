/**
 * A topology as written in topologies/*.yaml (keys kept in the file's snake_case so that `--set`
 * paths, error messages and code all use one spelling). See schema.ts for the meaning and range
 * of each key, and the shipped YAML files for where each default comes from.
 */
export {};
//# sourceMappingURL=types.js.map