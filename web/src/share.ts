// The IDE's document (script, limits, stdin): kept in local storage across reloads and carried
// in a share URL's fragment (#run=<base64url of its JSON>). The fragment never reaches the
// server, so a shared script is not logged anywhere on the way.

export interface Draft {
  script: string;
  timeout_ms: number;
  memory_mb: number;
  stdin: string;
}

const STORAGE_KEY = "pysandbox.draft.v1";
const FRAGMENT_KEY = "run";

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Anything that is not a well-formed draft is refused (null), field by field: a share link or a
// storage entry from elsewhere must not put garbage into the inputs.
export function parseDraft(value: unknown): Draft | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.script !== "string") return null;
  const int = (x: unknown) => (typeof x === "number" && Number.isInteger(x) && x > 0 ? x : null);
  const timeout = int(v.timeout_ms);
  const memory = int(v.memory_mb);
  if (timeout === null || memory === null) return null;
  return {
    script: v.script,
    timeout_ms: timeout,
    memory_mb: memory,
    stdin: typeof v.stdin === "string" ? v.stdin : "",
  };
}

export function encodeShareFragment(draft: Draft): string {
  const json = JSON.stringify({
    script: draft.script,
    timeout_ms: draft.timeout_ms,
    memory_mb: draft.memory_mb,
    stdin: draft.stdin,
  });
  return `#${FRAGMENT_KEY}=${toBase64Url(new TextEncoder().encode(json))}`;
}

export function decodeShareFragment(hash: string): Draft | null {
  const params = new URLSearchParams(hash.startsWith("#") ? hash.slice(1) : hash);
  const encoded = params.get(FRAGMENT_KEY);
  if (!encoded) return null;
  try {
    const json = new TextDecoder("utf-8", { fatal: true }).decode(fromBase64Url(encoded));
    return parseDraft(JSON.parse(json));
  } catch {
    return null;
  }
}

export function shareUrl(location: { origin: string; pathname: string }, draft: Draft): string {
  return location.origin + location.pathname + encodeShareFragment(draft);
}

export function loadStoredDraft(storage: Storage): Draft | null {
  try {
    const text = storage.getItem(STORAGE_KEY);
    return text ? parseDraft(JSON.parse(text)) : null;
  } catch {
    return null;
  }
}

export function storeDraft(storage: Storage, draft: Draft): void {
  try {
    storage.setItem(STORAGE_KEY, JSON.stringify(draft));
  } catch {
    // Storage full or disabled (private mode): the IDE works without it.
  }
}
