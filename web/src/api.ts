// The HTTP API as the IDE uses it: POST /execute, GET /healthz, GET /openapi.json. Types follow
// the OpenAPI document the server publishes (/openapi.json).

export interface Usage {
  wall_ms: number;
  cpu_ms: number;
  peak_memory_bytes: number;
}

// What /execute answers: a run's result or an error. Run fields are present whenever the script
// ran (success, or a 422 from the script's own fault or a limit).
export interface ExecuteResponse {
  result?: unknown;
  error?: string;
  error_type?: string;
  request_id?: string;
  stdout?: string;
  stderr?: string;
  trace?: string;
  signal?: string;
  usage?: Usage;
  isolation?: string;
  start?: string;
  truncated?: boolean;
}

export interface ExecuteParams {
  script: string;
  timeout_ms: number;
  memory_mb: number;
  stdin: string;
}

export interface RunReport {
  httpStatus: number;
  body: ExecuteResponse;
  elapsedMs: number;
}

export async function execute(params: ExecuteParams, signal: AbortSignal): Promise<RunReport> {
  const started = performance.now();
  const body: Record<string, unknown> = {
    script: params.script,
    timeout_ms: params.timeout_ms,
    memory_mb: params.memory_mb,
  };
  if (params.stdin !== "") body.stdin = params.stdin;
  const response = await fetch("execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  const text = await response.text();
  let parsed: ExecuteResponse;
  try {
    parsed = JSON.parse(text) as ExecuteResponse;
  } catch {
    parsed = {
      error: `The server answered HTTP ${response.status} with a body that is not JSON.`,
      error_type: "invalid_response",
    };
  }
  return { httpStatus: response.status, body: parsed, elapsedMs: performance.now() - started };
}

export interface PoolState {
  enabled?: boolean;
  ready?: number;
  busy?: number;
  restarts?: number;
  reason?: string;
}

export interface Health {
  status: string;
  version?: string;
  isolation?: { mode?: string; reason?: string };
  pool?: PoolState;
  admission?: { max_concurrency?: number; in_flight?: number; queued?: number; queue_size?: number };
}

export async function fetchHealth(signal?: AbortSignal): Promise<Health> {
  const response = await fetch("healthz", { signal, cache: "no-store" });
  // 503 while draining still carries the body.
  return (await response.json()) as Health;
}

export interface Limits {
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  defaultMemoryMb: number;
  minMemoryMb: number;
  maxMemoryMb: number;
  maxScriptBytes: number;
}

export const FALLBACK_LIMITS: Limits = {
  defaultTimeoutMs: 5000,
  maxTimeoutMs: 30000,
  defaultMemoryMb: 256,
  minMemoryMb: 32,
  maxMemoryMb: 2048,
  maxScriptBytes: 256 * 1024,
};

interface SchemaProperty {
  default?: number;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
}

// The running server's limits, read from its OpenAPI document (the request schema carries
// them as default/minimum/maximum), so the inputs offer what this server accepts.
export function limitsFromOpenApi(doc: unknown): Limits {
  const props = (doc as {
    components?: { schemas?: { ExecuteRequest?: { properties?: Record<string, SchemaProperty> } } };
  })?.components?.schemas?.ExecuteRequest?.properties;
  if (!props) return FALLBACK_LIMITS;
  const pick = (value: number | undefined, fallback: number) =>
    typeof value === "number" && Number.isFinite(value) ? value : fallback;
  return {
    defaultTimeoutMs: pick(props.timeout_ms?.default, FALLBACK_LIMITS.defaultTimeoutMs),
    maxTimeoutMs: pick(props.timeout_ms?.maximum, FALLBACK_LIMITS.maxTimeoutMs),
    defaultMemoryMb: pick(props.memory_mb?.default, FALLBACK_LIMITS.defaultMemoryMb),
    minMemoryMb: pick(props.memory_mb?.minimum, FALLBACK_LIMITS.minMemoryMb),
    maxMemoryMb: pick(props.memory_mb?.maximum, FALLBACK_LIMITS.maxMemoryMb),
    maxScriptBytes: pick(props.script?.maxLength, FALLBACK_LIMITS.maxScriptBytes),
  };
}

export async function fetchLimits(): Promise<Limits> {
  const response = await fetch("openapi.json");
  if (!response.ok) return FALLBACK_LIMITS;
  return limitsFromOpenApi(await response.json());
}
