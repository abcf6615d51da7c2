import { Ban, ChevronDown, Link2, LoaderCircle, Play } from "lucide-react";
import { useCallback, useEffect, useRef, useState } from "react";

import { execute, fetchHealth, fetchLimits, FALLBACK_LIMITS, type Health, type Limits, type RunReport } from "./api";
import { Editor, type EditorHandle } from "./Editor";
import { DEFAULT_EXAMPLE, EXAMPLES } from "./examples";
import { formatMs } from "./format";
import { Output } from "./Output";
import { decodeShareFragment, type Draft, loadStoredDraft, shareUrl, storeDraft } from "./share";
import { StatusBar } from "./StatusBar";
import { errorLine } from "./trace";

export type RunState =
  | { kind: "idle" }
  | { kind: "running"; started: number }
  | { kind: "done"; report: RunReport }
  | { kind: "cancelled"; elapsedMs: number }
  | { kind: "failed"; message: string; elapsedMs: number };

const HEALTH_INTERVAL_MS = 15000;
const IS_MAC = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform);
export const RUN_SHORTCUT = IS_MAC ? "⌘+Enter" : "Ctrl+Enter";

// On a narrow screen the output is below the editor: bring its top into view once a run ends,
// unless it is already visible.
function revealOutput(pane: HTMLElement | null) {
  if (!pane) return;
  const top = pane.getBoundingClientRect().top;
  if (top >= 0 && top < window.innerHeight * 0.8) return;
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  window.requestAnimationFrame(() => pane.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" }));
}

function initialDraft(): { draft: Draft; fromLink: boolean } {
  const shared = decodeShareFragment(window.location.hash);
  if (shared) return { draft: shared, fromLink: true };
  const stored = loadStoredDraft(window.localStorage);
  if (stored) return { draft: stored, fromLink: false };
  return {
    draft: {
      script: DEFAULT_EXAMPLE.script,
      timeout_ms: FALLBACK_LIMITS.defaultTimeoutMs,
      memory_mb: FALLBACK_LIMITS.defaultMemoryMb,
      stdin: "",
    },
    fromLink: false,
  };
}

export function App() {
  const [initial] = useState(initialDraft);
  const [draft, setDraft] = useState<Draft>(initial.draft);
  const [limits, setLimits] = useState<Limits>(FALLBACK_LIMITS);
  const [run, setRun] = useState<RunState>({ kind: "idle" });
  const [now, setNow] = useState(() => performance.now());
  const [health, setHealth] = useState<Health | null>(null);
  const [healthError, setHealthError] = useState<string | null>(null);
  const [share, setShare] = useState<{ url: string; note: string } | null>(null);
  const [notice, setNotice] = useState(initial.fromLink ? "Loaded the script from the shared link." : "");

  const editor = useRef<EditorHandle>(null);
  const outputPane = useRef<HTMLElement>(null);
  const abort = useRef<AbortController | null>(null);
  const draftRef = useRef(draft);
  draftRef.current = draft;
  const running = run.kind === "running";

  // Keep the document across reloads; a shared link's fragment is dropped once it is loaded,
  // so that a reload shows the latest edits rather than the link's original.
  useEffect(() => storeDraft(window.localStorage, draft), [draft]);
  useEffect(() => {
    if (initial.fromLink) history.replaceState(null, "", window.location.pathname + window.location.search);
  }, [initial.fromLink]);

  useEffect(() => {
    let cancelled = false;
    fetchLimits()
      .then((l) => {
        if (!cancelled) setLimits(l);
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, []);

  const refreshHealth = useCallback(() => {
    fetchHealth()
      .then((h) => {
        setHealth(h);
        setHealthError(null);
      })
      .catch((e: unknown) => setHealthError(e instanceof Error ? e.message : String(e)));
  }, []);
  useEffect(() => {
    refreshHealth();
    const timer = window.setInterval(refreshHealth, HEALTH_INTERVAL_MS);
    return () => window.clearInterval(timer);
  }, [refreshHealth]);

  // The elapsed-time display ticks only while a run is in flight.
  useEffect(() => {
    if (!running) return;
    const timer = window.setInterval(() => setNow(performance.now()), 100);
    return () => window.clearInterval(timer);
  }, [running]);

  const startRun = useCallback(async () => {
    if (abort.current) return;  // one run at a time
    const controller = new AbortController();
    abort.current = controller;
    const started = performance.now();
    setNow(started);
    setRun({ kind: "running", started });
    setNotice("");
    editor.current?.showErrorLine(null);
    const params = { ...draftRef.current, script: editor.current?.getDoc() ?? draftRef.current.script };
    try {
      const report = await execute(params, controller.signal);
      setRun({ kind: "done", report });
      const body = report.body;
      if (body.error_type) {
        editor.current?.showErrorLine(
          errorLine(body.trace, body.error_type === "syntax_error" ? body.error : undefined),
        );
      }
    } catch (e) {
      const elapsedMs = performance.now() - started;
      if (controller.signal.aborted) {
        setRun({ kind: "cancelled", elapsedMs });
      } else {
        setRun({
          kind: "failed",
          message: `The request failed: ${e instanceof Error ? e.message : String(e)}`,
          elapsedMs,
        });
      }
    } finally {
      abort.current = null;
      refreshHealth();
      revealOutput(outputPane.current);
    }
  }, [refreshHealth]);

  const cancelRun = useCallback(() => abort.current?.abort(), []);

  // Ctrl/Cmd+Enter runs from anywhere on the page (the editor handles it itself and marks the
  // event handled); Escape cancels a run in flight.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.defaultPrevented) return;
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        void startRun();
      } else if (event.key === "Escape" && abort.current) {
        event.preventDefault();
        cancelRun();
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [startRun, cancelRun]);

  const loadExample = (id: string) => {
    const example = EXAMPLES.find((e) => e.id === id);
    if (!example) return;
    editor.current?.setDoc(example.script);
    setDraft({
      script: example.script,
      timeout_ms: example.timeout_ms ?? limits.defaultTimeoutMs,
      memory_mb: example.memory_mb ?? limits.defaultMemoryMb,
      stdin: example.stdin ?? "",
    });
    // Focus stays on the menu: arrow keys there load one example after another, and moving focus
    // on each would be a change of context on input.
    setNotice(`Loaded the example “${example.title}”. Undo (Ctrl+Z) in the editor brings the previous script back.`);
  };

  const makeShareLink = async () => {
    const url = shareUrl(window.location, { ...draft, script: editor.current?.getDoc() ?? draft.script });
    let note = "Copy this link to share the script and its settings.";
    try {
      await navigator.clipboard.writeText(url);
      note = "Link copied to the clipboard.";
    } catch {
      // No clipboard outside secure contexts: the field below is selectable.
    }
    setShare({ url, note });
  };

  const setNumber = (field: "timeout_ms" | "memory_mb") => (event: React.ChangeEvent<HTMLInputElement>) => {
    const value = event.target.valueAsNumber;
    if (Number.isFinite(value) && value > 0) setDraft((d) => ({ ...d, [field]: Math.round(value) }));
  };

  const elapsed = run.kind === "running" ? now - run.started : 0;

  return (
    <div className="app">
      <header className="topbar">
        <h1 className="brand">
          <span aria-hidden="true" className="brand-mark">
            ⌁
          </span>
          pysandbox
        </h1>
        <div className="toolbar" role="toolbar" aria-label="Script actions">
          <div className="select-wrap">
            <label htmlFor="examples" className="visually-hidden">
              Examples
            </label>
            <select
              id="examples"
              value=""
              onChange={(e) => {
                loadExample(e.target.value);
                e.target.value = "";
              }}
            >
              <option value="" disabled>
                Examples…
              </option>
              {EXAMPLES.map((ex) => (
                <option key={ex.id} value={ex.id}>
                  {ex.title}
                </option>
              ))}
            </select>
            <ChevronDown aria-hidden="true" className="select-icon" size={16} />
          </div>
          <button type="button" className="primary" onClick={() => void startRun()} disabled={running}
            aria-keyshortcuts={IS_MAC ? "Meta+Enter" : "Control+Enter"}>
            {running ? <LoaderCircle aria-hidden="true" className="spin" size={18} /> : <Play aria-hidden="true" size={18} />}
            <span>Run</span>
            <kbd aria-hidden="true">{RUN_SHORTCUT}</kbd>
          </button>
          <button type="button" onClick={cancelRun} disabled={!running} aria-keyshortcuts="Escape">
            <Ban aria-hidden="true" size={18} />
            <span>Cancel</span>
          </button>
          <button type="button" onClick={() => void makeShareLink()}>
            <Link2 aria-hidden="true" size={18} />
            <span>Share</span>
          </button>
        </div>
      </header>

      {share && (
        <div className="share-bar">
          <label htmlFor="share-url">{share.note}</label>
          <input id="share-url" type="url" readOnly value={share.url} onFocus={(e) => e.target.select()} />
        </div>
      )}
      <p className="notice" role="status">
        {notice}
      </p>

      <main className="workspace">
        <section className="pane editor-pane" aria-labelledby="editor-label">
          <h2 id="editor-label" className="pane-title">
            Script
          </h2>
          <Editor
            ref={editor}
            initialDoc={initial.draft.script}
            label={`Python script. ${RUN_SHORTCUT} runs it; Escape then Tab leaves the editor.`}
            onChange={(script) => setDraft((d) => ({ ...d, script }))}
            onRun={() => void startRun()}
          />
          <p id="editor-help" className="hint">
            Define <code>main()</code>; its return value is the result. {RUN_SHORTCUT} runs. Tab indents; press
            Esc then Tab to leave the editor.
          </p>
          <fieldset className="settings">
            <legend>Limits and input</legend>
            <div className="field">
              <label htmlFor="timeout">Timeout (ms)</label>
              <input id="timeout" type="number" inputMode="numeric" min={1} max={limits.maxTimeoutMs} step={100}
                value={draft.timeout_ms} onChange={setNumber("timeout_ms")} aria-describedby="timeout-help" />
              <small id="timeout-help">max {limits.maxTimeoutMs}</small>
            </div>
            <div className="field">
              <label htmlFor="memory">Memory (MB)</label>
              <input id="memory" type="number" inputMode="numeric" min={limits.minMemoryMb} max={limits.maxMemoryMb}
                step={32} value={draft.memory_mb} onChange={setNumber("memory_mb")} aria-describedby="memory-help" />
              <small id="memory-help">
                {limits.minMemoryMb} to {limits.maxMemoryMb}
              </small>
            </div>
            <div className="field field-wide">
              <label htmlFor="stdin">Standard input</label>
              <textarea id="stdin" rows={2} spellCheck={false} value={draft.stdin}
                onChange={(e) => setDraft((d) => ({ ...d, stdin: e.target.value }))} />
            </div>
          </fieldset>
        </section>

        <section className="pane output-pane" aria-labelledby="output-label" ref={outputPane}>
          <h2 id="output-label" className="pane-title">
            Output
          </h2>
          <div className="run-status" role="status" aria-live="polite">
            {run.kind === "running" && (
              <span className="running">
                <LoaderCircle aria-hidden="true" className="spin" size={16} /> Running… {formatMs(elapsed)}
              </span>
            )}
            {run.kind === "cancelled" && <span>Cancelled after {formatMs(run.elapsedMs)}.</span>}
            {run.kind === "idle" && <span>Run the script to see its result here.</span>}
          </div>
          <Output run={run} />
        </section>
      </main>

      <StatusBar health={health} error={healthError} />
    </div>
  );
}
