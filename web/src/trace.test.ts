import { describe, expect, it } from "vitest";

import { errorLine } from "./trace";

describe("errorLine", () => {
  it("takes the innermost frame of the script", () => {
    const trace =
      'Traceback (most recent call last):\n  File "<script>", line 7, in main\n  File "<script>", line 2, in average\nZeroDivisionError: division by zero\n';
    expect(errorLine(trace, undefined)).toBe(2);
  });

  it("ignores frames outside the script", () => {
    const trace =
      'Traceback (most recent call last):\n  File "<script>", line 4, in main\n  File "/usr/lib/python3/dist-packages/pandas/core/frame.py", line 900, in f\nValueError: x\n';
    expect(errorLine(trace, undefined)).toBe(4);
  });

  it("reads a syntax error's line from its trace or its sentence", () => {
    expect(errorLine('  File "<script>", line 1\n    def main(\n            ^\nSyntaxError: x\n', undefined)).toBe(1);
    expect(errorLine("", "expected ':' (line 3)")).toBe(3);
  });

  it("gives null when there is no line", () => {
    expect(errorLine("", "the script did not finish within 1000 ms")).toBeNull();
    expect(errorLine(undefined, undefined)).toBeNull();
  });
});
