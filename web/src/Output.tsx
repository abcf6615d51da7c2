import { CircleAlert, CircleCheck, Clock, Cpu, MemoryStick } from "lucide-react";

import type { RunState } from "./App";
import { formatBytes, formatMs, formatResult } from "./format";
import { errorLine } from "./trace";

// Limits that stopped the script, as opposed to errors in the script itself.
const LIMIT_TYPES = new Set(["timeout", "memory_limit", "output_limit", "killed"]);

function Stream({ title, text }: { title: string; text: string | undefined }) {
  const id = `out-${title.toLowerCase()}`;
  return (
    <section className="block" aria-labelledby={id}>
      <h3 id={id}>{title}</h3>
      {text ? (
        <pre className="stream" tabIndex={0} aria-labelledby={id}>
          {text}
        </pre>
      ) : (
        <p className="empty">(empty)</p>
      )}
    </section>
  );
}

export function Output({ run }: { run: RunState }) {
  if (run.kind === "failed") {
    return (
      <div className="outcome outcome-error" role="alert">
        <CircleAlert aria-hidden="true" size={18} />
        <span>{run.message}</span>
      </div>
    );
  }
  if (run.kind !== "done") return null;

  const { body, httpStatus, elapsedMs } = run.report;
  const ok = httpStatus === 200 && !body.error_type;
  const ran = body.usage !== undefined;
  const line = body.error_type
    ? errorLine(body.trace, body.error_type === "syntax_error" ? body.error : undefined)
    : null;
  const kind = ok ? "ok" : LIMIT_TYPES.has(body.error_type ?? "") ? "limit" : "error";

  return (
    <div className="output" data-outcome={ok ? "ok" : body.error_type}>
      <div className={`outcome outcome-${kind}`}>
        {ok ? <CircleCheck aria-hidden="true" size={18} /> : <CircleAlert aria-hidden="true" size={18} />}
        <div>
          <p className="outcome-title">
            {ok ? (
              "Success"
            ) : (
              <>
                <span className="badge badge-error">{body.error_type}</span> HTTP {httpStatus}
              </>
            )}
          </p>
          {!ok && <p className="error-message">{body.error}</p>}
          {line !== null && <p className="error-line">Line {line} is highlighted in the editor.</p>}
        </div>
      </div>

      {ok && (
        <section className="block" aria-labelledby="out-result">
          <h3 id="out-result">Result</h3>
          <pre className="result" tabIndex={0} aria-labelledby="out-result">
            {formatResult(body.result)}
          </pre>
        </section>
      )}
      {body.trace ? (
        <section className="block" aria-labelledby="out-trace">
          <h3 id="out-trace">Traceback</h3>
          <pre className="trace" tabIndex={0} aria-labelledby="out-trace">
            {body.trace}
          </pre>
        </section>
      ) : null}
      {ran && (
        <>
          <Stream title="Stdout" text={body.stdout} />
          <Stream title="Stderr" text={body.stderr} />
        </>
      )}

      <section className="block" aria-labelledby="out-run">
        <h3 id="out-run">Run</h3>
        <dl className="facts">
          {body.usage && (
            <>
              <div>
                <dt>
                  <Clock aria-hidden="true" size={14} /> Wall
                </dt>
                <dd>{formatMs(body.usage.wall_ms)}</dd>
              </div>
              <div>
                <dt>
                  <Cpu aria-hidden="true" size={14} /> CPU
                </dt>
                <dd>{formatMs(body.usage.cpu_ms)}</dd>
              </div>
              <div>
                <dt>
                  <MemoryStick aria-hidden="true" size={14} /> Peak memory
                </dt>
                <dd>{formatBytes(body.usage.peak_memory_bytes)}</dd>
              </div>
            </>
          )}
          {body.isolation && (
            <div>
              <dt>Isolation</dt>
              <dd>
                <span className="badge">{body.isolation}</span>
              </dd>
            </div>
          )}
          {body.start && (
            <div>
              <dt>Start</dt>
              <dd>
                <span className="badge">{body.start}</span>
              </dd>
            </div>
          )}
          {body.truncated && (
            <div>
              <dt>Output</dt>
              <dd>truncated</dd>
            </div>
          )}
          <div>
            <dt>Round trip</dt>
            <dd>{formatMs(elapsedMs)}</dd>
          </div>
          {body.request_id && (
            <div>
              <dt>Request id</dt>
              <dd>
                <code>{body.request_id}</code>
              </dd>
            </div>
          )}
        </dl>
      </section>
    </div>
  );
}
