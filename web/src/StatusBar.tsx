import { Activity, FileJson, ShieldCheck } from "lucide-react";

import type { Health } from "./api";

function poolText(health: Health): string {
  const pool = health.pool;
  if (!pool) return "pool: unknown";
  if (!pool.enabled) return `pool: off${pool.reason ? ` (${pool.reason})` : ""}`;
  return `pool: ${pool.ready ?? 0} ready, ${pool.busy ?? 0} busy`;
}

export function StatusBar({ health, error }: { health: Health | null; error: string | null }) {
  const mode = health?.isolation?.mode;
  return (
    <footer className="statusbar" aria-label="Server status">
      {error ? (
        <span className="status-item status-bad">Server unreachable: {error}</span>
      ) : health ? (
        <>
          <span className="status-item" title={health.isolation?.reason ?? "isolation mode of this server"}>
            <ShieldCheck aria-hidden="true" size={14} />
            <span>mode</span>
            <span className={`badge mode-badge mode-${mode ?? "unknown"}`} data-testid="mode-badge">
              {mode ?? "unknown"}
            </span>
          </span>
          <span className="status-item" data-testid="pool-state">
            <Activity aria-hidden="true" size={14} />
            {poolText(health)}
          </span>
          {health.admission && (
            <span className="status-item">
              {health.admission.in_flight ?? 0}/{health.admission.max_concurrency ?? "?"} running,{" "}
              {health.admission.queued ?? 0} queued
            </span>
          )}
          {health.status !== "ok" && <span className="status-item status-bad">{health.status}</span>}
          {health.version && <span className="status-item">v{health.version}</span>}
        </>
      ) : (
        <span className="status-item">Connecting…</span>
      )}
      <a className="status-item status-link" href="openapi.json">
        <FileJson aria-hidden="true" size={14} />
        API (OpenAPI)
      </a>
    </footer>
  );
}
