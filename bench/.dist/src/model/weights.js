export {};
//# sourceMappingURL=weights.js.map