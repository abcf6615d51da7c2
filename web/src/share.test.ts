import { describe, expect, it } from "vitest";

import { decodeShareFragment, encodeShareFragment, loadStoredDraft, parseDraft, shareUrl, storeDraft } from "./share";

const draft = {
  script: 'def main():\n    return {"π": "ünïcödé ✓", "emoji": "🐍"}\n',
  timeout_ms: 1500,
  memory_mb: 128,
  stdin: "line 1\nline 2",
};

class MemoryStorage {
  data = new Map<string, string>();
  getItem(key: string) {
    return this.data.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.data.set(key, value);
  }
}

describe("share links", () => {
  it("round-trip a draft, unicode included, through the URL fragment", () => {
    const fragment = encodeShareFragment(draft);
    expect(fragment).toMatch(/^#run=[A-Za-z0-9_-]+$/);
    expect(decodeShareFragment(fragment)).toEqual(draft);
  });

  it("build a URL on the page's origin and path", () => {
    const url = shareUrl({ origin: "http://127.0.0.1:8080", pathname: "/" }, draft);
    expect(url.startsWith("http://127.0.0.1:8080/#run=")).toBe(true);
    expect(decodeShareFragment(new URL(url).hash)).toEqual(draft);
  });

  it("refuse fragments that are not a draft", () => {
    for (const hash of ["", "#", "#run=", "#run=!!!", "#other=abc", "#run=" + btoa("not json"),
      "#run=" + btoa(JSON.stringify({ script: 1, timeout_ms: 1, memory_mb: 1 })),
      "#run=" + btoa(JSON.stringify({ script: "x", timeout_ms: -5, memory_mb: 64 })),
      "#run=" + btoa(JSON.stringify({ script: "x", timeout_ms: 1.5, memory_mb: 64 }))]) {
      expect(decodeShareFragment(hash), hash).toBeNull();
    }
  });
});

describe("drafts in storage", () => {
  it("survive a store and load", () => {
    const storage = new MemoryStorage() as unknown as Storage;
    expect(loadStoredDraft(storage)).toBeNull();
    storeDraft(storage, draft);
    expect(loadStoredDraft(storage)).toEqual(draft);
  });

  it("default a missing stdin and refuse wrong types", () => {
    expect(parseDraft({ script: "x", timeout_ms: 10, memory_mb: 64 })).toEqual({
      script: "x", timeout_ms: 10, memory_mb: 64, stdin: "",
    });
    expect(parseDraft(null)).toBeNull();
    expect(parseDraft("x")).toBeNull();
    expect(parseDraft({ script: "x", timeout_ms: "10", memory_mb: 64 })).toBeNull();
  });
});
