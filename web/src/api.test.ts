import { describe, expect, it } from "vitest";

import { FALLBACK_LIMITS, limitsFromOpenApi } from "./api";

describe("limitsFromOpenApi", () => {
  it("reads the running server's limits from its document", () => {
    const doc = {
      components: {
        schemas: {
          ExecuteRequest: {
            properties: {
              script: { maxLength: 1000 },
              timeout_ms: { default: 1234, maximum: 9999 },
              memory_mb: { default: 64, minimum: 32, maximum: 512 },
            },
          },
        },
      },
    };
    expect(limitsFromOpenApi(doc)).toEqual({
      defaultTimeoutMs: 1234,
      maxTimeoutMs: 9999,
      defaultMemoryMb: 64,
      minMemoryMb: 32,
      maxMemoryMb: 512,
      maxScriptBytes: 1000,
    });
  });

  it("falls back field by field", () => {
    expect(limitsFromOpenApi({})).toEqual(FALLBACK_LIMITS);
    expect(limitsFromOpenApi(null)).toEqual(FALLBACK_LIMITS);
    const partial = { components: { schemas: { ExecuteRequest: { properties: { timeout_ms: { default: "x" } } } } } };
    expect(limitsFromOpenApi(partial).defaultTimeoutMs).toBe(FALLBACK_LIMITS.defaultTimeoutMs);
  });
});
